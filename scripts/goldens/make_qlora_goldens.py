#!/usr/bin/env python3
"""Goldens for src/api/qlora_golden_test.cc, written by transformers + bitsandbytes + PEFT on CPU.

Model: assets/stories260K/stories260K.bin exported to a Hugging Face f32 directory by
`nibble export` (HF row order; dim 64, hidden 172, GQA 8/4, 5 layers, tied embeddings),
loaded with transformers' BitsAndBytesConfig(load_in_4bit, nf4,
bnb_4bit_use_double_quant=True) so every Linear is a bitsandbytes Linear4bit; eager
attention. (Not hf-tiny-random-llama: its 16-wide Linears meet a bitsandbytes 0.50.2 CPU
bug. dequantize_4bit of a matrix with fewer than 64 columns disagrees with its own codes
times absmax, e.g. 0.02 on a [64, 16] weight, so its forward does not compute what its
checkpoint says.) LoRA r=4, alpha=8, all-linear, dropout 0; entry k of the t-th LoRA
tensor (PEFT's order, A then B per module) starts at 0.05*sin(1.3k + 0.7t), which nibble
computes too. Batches: 1 + 10 seeded batches of 2 x 32 tokens, labels = input_ids.

  bnb_nf4_dq/                the 4-bit base as transformers saves it (save_pretrained of the
                             loaded model, before any forward): bitsandbytes' own codes and
                             constants, which nibble reads (nibble's quantizer agrees with
                             bitsandbytes' CPU quantizer up to nested-absmax ties, spec §2.7).
  qlora.json                 the tokens; for bnb_4bit_compute_dtype float32 and bfloat16: the loss of
                             batch 0; a 10-step trajectory (torch AdamW, lr 1e-2, linear
                             schedule with 3 warmup steps, clip 1.0, batches 1..10) with
                             float32 compute; the same trajectory with bitsandbytes' AdamW8bit
                             (min_8bit_size=0, so every state takes the 8-bit path: bnb's CPU
                             algorithm, spec §4.2.3).
  grads_float32.safetensors  every lora_A / lora_B gradient of batch 0, float32 compute.
  grads_bfloat16.safetensors the same with bfloat16 compute.

Run from the repo root (nibble built in build/release):
    build/venv/bin/python scripts/goldens/make_qlora_goldens.py
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import bitsandbytes
import numpy as np
import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.numpy import save_file
from transformers import BitsAndBytesConfig, LlamaForCausalLM, get_scheduler

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "golden", "qlora")
B, T, STEPS, WARMUP = 2, 32, 10, 3
MODEL = None  # the exported HF directory


def qlora_model(compute, save=None):
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=compute)
    m = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32, quantization_config=bnb, device_map="cpu",
                                         attn_implementation="eager")
    if save:
        m.save_pretrained(save)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False,
                     task_type="CAUSAL_LM")
    pm = get_peft_model(m, cfg)
    lora = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
    assert len(lora) == 70, len(lora)  # A and B of 7 Linears x 5 layers
    with torch.no_grad():
        for t, (n, p) in enumerate(lora):
            k = np.arange(p.numel(), dtype=np.float64)
            p.copy_(torch.from_numpy((0.05 * np.sin(1.3 * k + 0.7 * t)).astype(np.float32).reshape(p.shape)))
    pm.train()
    kinds = {type(mod).__name__ for mod in pm.modules()}
    assert any("4bit" in k for k in kinds), kinds
    return pm, lora


def tokens():
    g = torch.Generator().manual_seed(4321)
    return torch.randint(0, 512, (1 + STEPS, B, T), generator=g)


def trajectory(pm, lora, toks, opt):
    sched = get_scheduler("linear", opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    losses, norms, lrs = [], [], []
    for k in range(STEPS):
        ids = toks[1 + k]
        opt.zero_grad()
        loss = pm(input_ids=ids, labels=ids).loss
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_([p for _, p in lora], 1.0)))
        lrs.append(float(opt.param_groups[0]["lr"]))
        opt.step()
        sched.step()
        losses.append(float(loss))
    return {"losses": losses, "grad_norms": norms, "lrs": lrs}


def main():
    global MODEL
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", default=os.path.join(ROOT, "build", "release", "tools", "nibble", "nibble"))
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.TemporaryDirectory()
    MODEL = os.path.join(tmp.name, "stories-hf")
    subprocess.run([a.nibble, "export", "--format", "hf", "-m",
                    os.path.join(ROOT, "assets", "stories260K", "stories260K.bin"), MODEL], check=True,
                   capture_output=True)
    toks = tokens()
    info = {"tokens": toks.reshape(-1).tolist(), "B": B, "T": T}
    for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        pm, lora = qlora_model(dt, os.path.join(OUT, "bnb_nf4_dq") if name == "float32" else None)
        ids = toks[0]
        loss = pm(input_ids=ids, labels=ids).loss
        loss.backward()
        info[f"loss_{name}"] = float(loss)
        save_file({n.replace(".default", ""): p.grad.detach().float().numpy().copy() for n, p in lora},
                  os.path.join(OUT, f"grads_{name}.safetensors"), metadata={"format": "pt"})
    pm, lora = qlora_model(torch.float32)
    info["adamw_torch"] = trajectory(
        pm, lora, toks, torch.optim.AdamW([p for _, p in lora], lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                                          weight_decay=0.0, foreach=False))
    pm, lora = qlora_model(torch.float32)
    info["adamw_8bit"] = trajectory(
        pm, lora, toks, bitsandbytes.optim.AdamW8bit([p for _, p in lora], lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                                                     weight_decay=0.0, min_8bit_size=0))
    with open(os.path.join(OUT, "qlora.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"python {sys.version.split()[0]} ({platform.machine()})\n")
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\npeft {peft.__version__}\n")
        f.write(f"bitsandbytes {bitsandbytes.__version__}\nsafetensors {safetensors.__version__}\n")
        f.write(f"numpy {np.__version__}\nmade by scripts/goldens/make_qlora_goldens.py\n")


if __name__ == "__main__":
    main()
