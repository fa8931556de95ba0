#!/usr/bin/env python3
# Writes tests/golden/hf_llama/: logits of transformers' LlamaForCausalLM (f32, eager
# attention) on ../shared/data/hf-tiny-random-llama for a fixed list of token ids,
# read by src/api/hf_logits_test.cc. Run with the project venv (torch + transformers):
#   build/venv/bin/python scripts/goldens/make_hf_llama_goldens.py
"""Files (little-endian, no header; the full [T, V] = [12, 32000] logits would be
1.5 MB, so two slices of them are kept):
  tokens.i32        T token ids (int32)
  logits_head.f32   [T, 256] f32: the first 256 vocabulary columns of every position
  logits_last.f32   [V] f32: the whole last row
"""
import importlib.metadata
import platform
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT.parent / "shared" / "data" / "hf-tiny-random-llama"
OUT = ROOT / "tests" / "golden" / "hf_llama"
# Fixed ids (the model has no tokenizer files): BOS then a spread over the vocabulary.
TOKENS = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(str(MODEL), torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    ids = torch.tensor([TOKENS], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits[0].float().numpy()  # [T, V]
    np.asarray(TOKENS, dtype="<i4").tofile(OUT / "tokens.i32")
    np.ascontiguousarray(logits[:, :256], dtype="<f4").tofile(OUT / "logits_head.f32")
    np.ascontiguousarray(logits[-1], dtype="<f4").tofile(OUT / "logits_last.f32")
    versions = "\n".join(
        f"{p} {importlib.metadata.version(p)}" for p in ("torch", "transformers", "numpy", "safetensors"))
    (OUT / "VERSIONS.txt").write_text(
        f"{versions}\npython {platform.python_version()}\nmodel ../shared/data/hf-tiny-random-llama "
        f"(sha256 49c20f32c6c597480fcaec5df2f86c645eabea765cbea1e67886dbae45e5c992)\n"
        f"tokens {TOKENS}\nlogits shape {list(logits.shape)}, max |logit| {np.abs(logits).max():.6g}\n"
        "command: build/venv/bin/python scripts/goldens/make_hf_llama_goldens.py\n")
    print("wrote", OUT, logits.shape)


if __name__ == "__main__":
    main()
