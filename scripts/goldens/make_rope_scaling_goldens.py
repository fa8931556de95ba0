#!/usr/bin/env python3
# Writes tests/golden/hf_rope_scaling/<variant>/: tiny random Llamas made by
# transformers with rope_scaling "llama3" and "linear" (and none, as the control),
# saved as HF checkpoints, with their f32 logits on 48 fixed ids (positions well past
# original_max_position_embeddings = 16). Read by src/api/rope_scaling_test.cc.
#   build/venv/bin/python scripts/goldens/make_rope_scaling_goldens.py
"""Per variant: config.json, model.safetensors (f32, ~80 KB), tokens.i32 [T],
logits.f32 [T, V] (little-endian, no header), inv_freq.f32 [head_dim/2] (the model's
rotary_emb.inv_freq buffer)."""
import importlib.metadata
import json
import platform
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "hf_rope_scaling"
T = 48
VARIANTS = {
    "none": None,
    # head_dim 16, theta 10000: wavelengths 6.3 .. 1.9e4, so with original 16 positions,
    # low 1 and high 4 the table has smoothed (medium), divided (low) entries.
    "llama3": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16},
    "linear": {"rope_type": "linear", "factor": 2.0},
}


def main():
    torch.manual_seed(0)
    tokens = torch.randint(0, 64, (1, T), generator=torch.Generator().manual_seed(1))
    for name, scaling in VARIANTS.items():
        cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                          rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                          rope_scaling=scaling)
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).eval()
        with torch.no_grad():
            for p in model.parameters():  # larger weights than the init so RoPE matters in the logits
                p.normal_(0.0, 0.3)
            logits = model(tokens).logits[0].float().numpy()
        out = OUT / name
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out), safe_serialization=True)
        for extra in ("generation_config.json",):
            (out / extra).unlink(missing_ok=True)
        np.asarray(tokens[0].numpy(), dtype="<i4").tofile(out / "tokens.i32")
        np.ascontiguousarray(logits, dtype="<f4").tofile(out / "logits.f32")
        inv = model.model.rotary_emb.inv_freq.float().numpy()
        np.ascontiguousarray(inv, dtype="<f4").tofile(out / "inv_freq.f32")
        print(name, json.loads((out / "config.json").read_text()).get("rope_scaling"),
              json.loads((out / "config.json").read_text()).get("rope_parameters"), logits.shape,
              float(np.abs(logits).max()))
    versions = "\n".join(f"{p} {importlib.metadata.version(p)}" for p in ("torch", "transformers", "numpy",
                                                                          "safetensors"))
    (OUT / "VERSIONS.txt").write_text(
        f"{versions}\npython {platform.python_version()}\nvariants {list(VARIANTS)}; T={T}, vocab 64, "
        "hidden 32, 2 layers, 2 heads, 1 KV head, head_dim 16, weights N(0, 0.3) seed 0\n"
        "command: build/venv/bin/python scripts/goldens/make_rope_scaling_goldens.py\n")


if __name__ == "__main__":
    main()
