#!/usr/bin/env python3
"""Goldens for src/optim/optim_test.cc, written by torch and transformers.

A 10-step AdamW trajectory (torch.optim.AdamW, foreach=False: the single-tensor CPU path)
over three parameter tensors, two with weight decay and one without (as the HF Trainer
groups biases and norm weights), with transformers' linear schedule (warmup 3 of 10) and
torch.nn.utils.clip_grad_norm_(max_norm=1.0) before each step; the gradients are stored
(torch's RNG cannot be reproduced). Also the multipliers of every schedule nibble names.
Run from the repo root:
    build/venv/bin/python scripts/goldens/make_optim_goldens.py
Writes tests/golden/optim/adamw.json and VERSIONS.txt.
"""
import json
import os
import platform
import sys

import torch
import transformers
from transformers import get_scheduler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "optim")
kSeed = 1234
kSteps = 10
kWarmup = 3
kLr = 1e-2
kBetas = (0.9, 0.95)
kEps = 1e-8
kWeightDecay = 0.1
kMaxNorm = 1.0


def f32_list(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    torch.manual_seed(kSeed)
    # w1: a tail only; w2 and big: torch's vectorized loop (blocks of 2 vectors) and its
    # scalar tail; tiny: gradients near 1e-9, where eps decides the update.
    shapes = {"w1": (7,), "w2": (5, 3), "big": (71,), "tiny": (40,), "norm": (4,)}
    params = {k: torch.randn(*s, dtype=torch.float32, requires_grad=True) for k, s in shapes.items()}
    initial = {k: f32_list(p) for k, p in params.items()}
    opt = torch.optim.AdamW(
        [{"params": [params["w1"], params["w2"], params["big"], params["tiny"]], "weight_decay": kWeightDecay},
         {"params": [params["norm"]], "weight_decay": 0.0}],
        lr=kLr, betas=kBetas, eps=kEps, foreach=False)
    sched = get_scheduler("linear", opt, num_warmup_steps=kWarmup, num_training_steps=kSteps)
    steps = []
    for step in range(kSteps):
        # Gradients of alternating size: some steps are clipped, some not.
        scale = 3.0 if step % 2 == 0 else 0.05
        grads = {k: (torch.randn(*shapes[k]) * (1e-9 if k == "tiny" else scale)).float() for k in shapes}
        for k, p in params.items():
            p.grad = grads[k].clone()
        lr = opt.param_groups[0]["lr"]
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), kMaxNorm)
        opt.step()
        sched.step()
        steps.append({
            "lr": lr,
            "grads": {k: f32_list(g) for k, g in grads.items()},
            "grad_norm": float(norm),
            "params": {k: f32_list(p) for k, p in params.items()},
        })
    schedules = {}
    for name in ["constant", "constant_with_warmup", "linear", "cosine"]:
        p = torch.nn.Parameter(torch.zeros(1))
        o = torch.optim.SGD([p], lr=1.0)
        s = get_scheduler(name, o, num_warmup_steps=kWarmup, num_training_steps=kSteps)
        mult = []
        for _ in range(kSteps + 2):
            mult.append(o.param_groups[0]["lr"])
            o.step()
            s.step()
        schedules[name] = mult
    doc = {
        "config": {"lr": kLr, "beta1": kBetas[0], "beta2": kBetas[1], "eps": kEps, "weight_decay": kWeightDecay,
                   "no_decay": ["norm"], "max_grad_norm": kMaxNorm, "schedule": "linear", "warmup_steps": kWarmup,
                   "total_steps": kSteps},
        "order": list(shapes.keys()),
        "initial": initial,
        "steps": steps,
        "schedules": {"warmup_steps": kWarmup, "total_steps": kSteps, "multipliers": schedules},
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "adamw.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")
        f.write(f"python {platform.python_version()} on {platform.machine()}\nseed {kSeed}\n")
        f.write("command: build/venv/bin/python scripts/goldens/make_optim_goldens.py\n")
        f.write("torch.optim.AdamW(foreach=False), get_scheduler('linear', warmup 3, total 10), "
                "clip_grad_norm_(max_norm=1.0) before each step\n")


if __name__ == "__main__":
    sys.exit(main())
