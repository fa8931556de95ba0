#!/usr/bin/env python3
"""Goldens for src/api/merge_test.cc (PeftGolden.*): LoRA adapters made and saved by PEFT,
with PEFT's logits, which nibble must reproduce by loading the adapter (`-a`).

Models:
  hf-tiny-random-llama   ../shared/data/hf-tiny-random-llama (f32, untied, MHA)
  stories260K            ../shared/data/llama2c-stories260K/stories260K.bin exported to HF
                         by `nibble export --format hf --dtype f32` (GQA 8/4, tied); nibble
                         applies the adapter both to that export and to the .bin itself
                         (held in Meta's RoPE row order: q/k lora_B rows permuted on read).
Adapters (init_lora_weights=False: A and B both drawn, so B is not zero):
  <model>-plain    r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.05
  <model>-rslora   r=8, lora_alpha=4, use_rslora=True, target_modules=q/k/v/o_proj, down_proj
Each directory holds PEFT's save_pretrained output (adapter_config.json,
adapter_model.safetensors) and reference.safetensors: input_ids (i32 [T]), logits (f32
[T, C]: all 512 columns for stories260K, the first 1024 of 32000 for hf-tiny), lse (f32
[T]: logsumexp over the whole vocabulary), base_logits (the same columns with the
adapter disabled).

Run from the repo root (nibble built in build/debug or build/release):
    build/venv/bin/python scripts/goldens/make_peft_goldens.py [--nibble PATH]
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile

import numpy as np
import peft
import safetensors
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.numpy import save_file
from transformers import LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "tests", "golden", "peft")


def make(model_dir, name, vocab_cols, n_tokens, vocab):
    for variant, cfg in (
        ("plain", dict(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.05)),
        ("rslora", dict(r=8, lora_alpha=4, use_rslora=True,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"])),
    ):
        torch.manual_seed(1234)
        base = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
        model = get_peft_model(base, LoraConfig(init_lora_weights=False, task_type="CAUSAL_LM", **cfg))
        model.eval()
        rng = np.random.default_rng(7)
        ids = rng.integers(3, vocab, size=n_tokens).astype(np.int64)
        ids[0] = 1  # BOS of both tokenizers
        with torch.no_grad():
            x = torch.tensor(ids)[None]
            logits = model(input_ids=x).logits[0].float()
            with model.disable_adapter():
                base_logits = model(input_ids=x).logits[0].float()
        d = os.path.join(OUT, f"{name}-{variant}")
        shutil.rmtree(d, ignore_errors=True)
        model.save_pretrained(d)
        for extra in ("README.md",):
            if os.path.exists(os.path.join(d, extra)):
                os.remove(os.path.join(d, extra))
        save_file({
            "input_ids": ids.astype(np.int32),
            "logits": np.ascontiguousarray(logits[:, :vocab_cols].numpy()),
            "lse": torch.logsumexp(logits, dim=-1).numpy(),
            "base_logits": np.ascontiguousarray(base_logits[:, :vocab_cols].numpy()),
        }, os.path.join(d, "reference.safetensors"))
        print(d, "max |logit - base| =", float((logits - base_logits).abs().max()))


def main():
    ap = argparse.ArgumentParser()
    default = os.path.join(ROOT, "build", "debug", "tools", "nibble", "nibble")
    ap.add_argument("--nibble", default=default)
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    make(os.path.join(SHARED, "hf-tiny-random-llama"), "hf-tiny-random-llama", 1024, 8, 32000)
    with tempfile.TemporaryDirectory() as tmp:
        hf = os.path.join(tmp, "stories260K-hf")
        subprocess.run([a.nibble, "export", "--format", "hf", "--dtype", "f32", "-m",
                        os.path.join(SHARED, "llama2c-stories260K", "stories260K.bin"), hf], check=True)
        make(hf, "stories260K", 512, 16, 512)
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"python {platform.python_version()} ({platform.machine()})\n")
        for m in (torch, transformers, peft, safetensors, np):
            f.write(f"{m.__name__} {m.__version__}\n")
        f.write("made by scripts/goldens/make_peft_goldens.py\n")


if __name__ == "__main__":
    main()
