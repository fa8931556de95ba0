#!/usr/bin/env python3
"""nibble -> PEFT: an adapter nibble trains loads in PeftModel.from_pretrained and gives
nibble's log-probabilities (opt-in, run by hand; the result goes in docs/INTEROP.md).

For each case the script
  1. exports stories260K (llama2.c, Meta's RoPE row order) to HF with `nibble export`;
  2. trains a LoRA adapter with `nibble finetune` on stories260K.bin itself (so the q/k
     lora_B rows go through the Meta -> HF permutation on save);
  3. runs `nibble perplexity -a ADAPTER --kl-divergence-base REF` on the TinyStories
     excerpt: REF holds the windows' tokens, each scored position's exact NLL and argmax,
     and every log-probability on a 3.7e-4-nat grid (docs/FORMATS.md);
  4. loads the HF export with transformers, the adapter with PeftModel.from_pretrained,
     runs the same windows and compares: NLL (exact in the file), top-1, and every
     log-probability (within the grid step).

    build/venv/bin/python scripts/interop/peft_loads_nibble_adapter.py [--nibble PATH]
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import peft
import torch
import transformers
from peft import PeftModel
from transformers import LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")
BIN = os.path.join(SHARED, "llama2c-stories260K", "stories260K.bin")
TRAIN = os.path.join(SHARED, "text-tinyshakespeare", "input.txt")
EVAL = os.path.join(ROOT, "assets", "tinystories-excerpt", "tinystories_val_excerpt.txt")


def read_kld(path):
    b = open(path, "rb").read()
    assert b[:8] == b"NIBKLD\0\0", "not a nibble KLD file"
    version, storage, top_k, _ = struct.unpack_from("<IIII", b, 8)
    assert version == 1 and storage == 0, "expected full storage"
    n_vocab, ctx, n_windows = struct.unpack_from("<qqq", b, 24)
    (bos_id, model_len) = struct.unpack_from("<iI", b, 48)
    off = 56 + model_len
    (n_tokens,) = struct.unpack_from("<q", b, off)
    off += 8
    tokens = np.frombuffer(b, dtype="<i4", count=n_tokens, offset=off)
    off += 4 * n_tokens
    per = ctx - 1 - ctx // 2
    recs = []
    for _ in range(n_windows * per):
        nll, top1, scalar = struct.unpack_from("<fif", b, off)
        off += 12
        codes = np.frombuffer(b, dtype="<u2", count=n_vocab, offset=off).astype(np.float64)
        off += 2 * n_vocab
        logp = np.where(codes > 0, scalar - 24 + (codes - 1) * 24 / 65534, -np.inf)
        recs.append((nll, top1, logp))
    assert off == len(b)
    return tokens, int(ctx), int(n_windows), recs, bos_id


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\n{r.stderr}")
    return r


def case(nibble, tmp, name, extra):
    hf = os.path.join(tmp, "hf")
    if not os.path.exists(hf):
        run([nibble, "export", "--format", "hf", "--dtype", "f32", "-m", BIN, hf])
    adapter = os.path.join(tmp, name)
    run([nibble, "finetune", "-m", BIN, "--text", TRAIN, "--method", "lora", "--target-modules", "all-linear",
         "--seq-len", "128", "--batch-size", "4", "--max-steps", "30", "--lr", "1e-2", "-o", adapter] + extra)
    ref = os.path.join(tmp, name + ".kld")
    run([nibble, "perplexity", "-m", BIN, "-a", adapter, "-f", EVAL, "-c", "128", "--chunks", "6",
         "--kl-divergence-base", ref])
    tokens, ctx, n_windows, recs, bos_id = read_kld(ref)
    base = LlamaForCausalLM.from_pretrained(hf, torch_dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, adapter)
    model.eval()
    per = ctx - 1 - ctx // 2
    d_nll = d_logp = moved = 0.0
    same_top1 = n = 0
    with torch.no_grad():
        for w in range(n_windows):
            window = tokens[w * ctx:(w + 1) * ctx].astype(np.int64)
            if bos_id >= 0:
                window[0] = bos_id  # llama-perplexity's protocol: each window starts with BOS
            ids = torch.tensor(window)[None]
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1).numpy()
            with model.disable_adapter():
                logp0 = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1).numpy()
            for j in range(per):
                i = ctx // 2 + j
                nll, top1, lp = recs[w * per + j]
                nxt = tokens[w * ctx + i + 1]
                d_nll = max(d_nll, abs(-logp[i, nxt] - nll))
                same_top1 += int(np.argmax(logp[i]) == top1)
                ok = np.isfinite(lp)
                d_logp = max(d_logp, float(np.max(np.abs(logp[i][ok] - lp[ok]))))
                moved = max(moved, float(np.max(np.abs(logp[i] - logp0[i]))))
                n += 1
    print(f"{name}: {n} positions | max |NLL_peft - NLL_nibble| {d_nll:.2e} | top-1 agree {same_top1}/{n} | "
          f"max |log p diff| {d_logp:.2e} (grid 3.7e-4) | adapter moves log p by up to {moved:.2f}")
    return d_nll < 1e-4 and same_top1 == n and d_logp < 3.7e-4 + 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", default=os.path.join(ROOT, "build", "release", "tools", "nibble", "nibble"))
    a = ap.parse_args()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        ok = case(a.nibble, tmp, "lora-r8", ["--r", "8", "--lora-alpha", "16"])
        ok &= case(a.nibble, tmp, "lora-rslora-r16", ["--r", "16", "--lora-alpha", "8", "--use-rslora"])
    print("OK" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
