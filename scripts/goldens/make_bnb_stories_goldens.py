#!/usr/bin/env python3
"""stories260K quantized by transformers + bitsandbytes (NF4 and FP4, double quant, f32
compute), saved with save_pretrained, and its greedy decode -> tests/golden/bnb_stories260K/.

The checkpoint a user gets from transformers, and the tokens transformers generates from
it: nibble must decode the same ids from the same files under every CPU cap
(src/api/bnb_golden_test.cc, BnbGolden.Stories260KGreedyDecodeEveryCap).

Steps:
  1. stories260K.gguf (shared/data) -> LlamaForCausalLM f32 through transformers' GGUF
     loader (its pad id 0xFFFFFFFF is dropped from the config), save_pretrained to a
     temporary plain checkpoint.
  2. For nf4 and fp4: from_pretrained(plain, BitsAndBytesConfig(load_in_4bit, quant_type,
     double quant, compute dtype float32)), save_pretrained BEFORE any forward pass (bnb's
     CPU repacking would change what is saved) into <out>/stories260K_<qt>_dq/.
  3. Greedy generation of 48 new tokens from "Once upon a time" (ids from sentencepiece on
     tok512.model, with BOS), with bitsandbytes' portable dequantize+matmul path
     (support_avx512bf16_for_cpu off). bitsandbytes 0.50.2's CPU dequantize_4bit indexes
     blocks per row, which is wrong for ffn_down ([64, 172]: rows are not whole blocks;
     docs/INTEROP.md), so the reference run swaps in the spec's flat-order dequantization
     (scripts/interop/bnb_load_and_generate.py --spec-dequant); bnb's own run is recorded
     too (`greedy_ids_bnb_cpu_kernel`) to show where the bug takes it.
  Records prompt ids, greedy ids, per-step top-1 minus top-2 logit margins, and the f32
  logits at the last prompt position, in <qt>_expected.json + <qt>_logits.f32.

Usage:
  build/venv/bin/python scripts/goldens/make_bnb_stories_goldens.py
Needs torch, transformers, bitsandbytes, accelerate, gguf, sentencepiece in build/venv
(scripts/goldens/README.md).
"""
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts", "interop"))
import bnb_load_and_generate as interop  # noqa: E402  (spec_dequantize_4bit, install_spec_dequant)

OUT = os.path.join(REPO, "tests", "golden", "bnb_stories260K")
SHARED = os.environ.get("NIBBLE_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
STORIES = os.path.join(SHARED, "data", "llama2c-stories260K")
PROMPT = "Once upon a time"
NEW_TOKENS = 48


def disable_cpu_repack(model):
    import bitsandbytes as bnb
    n = 0
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit) and getattr(mod, "support_avx512bf16_for_cpu", False):
            mod.support_avx512bf16_for_cpu = False
            n += 1
    return n


def greedy(model, ids):
    with torch.no_grad():
        inp = torch.tensor([ids])
        logits = model(inp).logits[0, -1].float().numpy().copy()
        g = model.generate(inp, max_new_tokens=NEW_TOKENS, do_sample=False, output_scores=True,
                           return_dict_in_generate=True, pad_token_id=0)
    new = g.sequences[0, len(ids):].tolist()
    margins = [float(torch.topk(sc[0].float(), 2).values.diff().abs()) for sc in g.scores]
    return new, logits, margins


def main():
    import bitsandbytes
    import sentencepiece as spm
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    sp = spm.SentencePieceProcessor(model_file=os.path.join(STORIES, "tok512.model"))
    ids = [sp.bos_id()] + sp.encode(PROMPT)
    os.makedirs(OUT, exist_ok=True)
    plain = tempfile.mkdtemp(prefix="stories260K-hf-")
    cfg = AutoConfig.from_pretrained(STORIES, gguf_file="stories260K.gguf")
    cfg.pad_token_id = None  # the GGUF stores 0xFFFFFFFF ("none"), which transformers refuses
    gguf_model = AutoModelForCausalLM.from_pretrained(STORIES, gguf_file="stories260K.gguf", config=cfg,
                                                      dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: copy its weights into a plain one.
    plain_cfg = type(cfg).from_dict({k: v for k, v in cfg.to_dict().items() if k != "quantization_config"})
    base = AutoModelForCausalLM.from_config(plain_cfg, dtype=torch.float32)
    base.load_state_dict(gguf_model.state_dict())
    base.eval()
    base.save_pretrained(plain, safe_serialization=True)
    f32_new, _, _ = greedy(base, ids)
    summary = {}
    # The portable path; the spec's dequantization is installed after the bnb-kernel run.
    real_dequant, real_gemv, real_matmul = (bitsandbytes.functional.dequantize_4bit, bitsandbytes.functional.gemv_4bit,
                                            bitsandbytes.matmul_4bit)
    for qt in ("nf4", "fp4"):
        name = f"stories260K_{qt}_dq"
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        qcfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=qt, bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.float32)
        model = AutoModelForCausalLM.from_pretrained(plain, quantization_config=qcfg, device_map="cpu",
                                                     dtype=torch.float32)
        model.eval()
        model.save_pretrained(d, safe_serialization=True)  # before any forward pass
        for extra in os.listdir(d):
            if extra not in ("config.json", "model.safetensors"):
                os.remove(os.path.join(d, extra))
        os.chmod(os.path.join(d, "model.safetensors"), 0o644)
        nrep = disable_cpu_repack(model)
        bitsandbytes.functional.dequantize_4bit, bitsandbytes.functional.gemv_4bit = real_dequant, real_gemv
        bitsandbytes.matmul_4bit = real_matmul
        bnb_new, _, _ = greedy(model, ids)
        interop.install_spec_dequant()
        new, logits, margins = greedy(model, ids)
        logits.astype("<f4").tofile(os.path.join(OUT, f"{name}_logits.f32"))
        exp = {
            "prompt": PROMPT,
            "input_ids": ids,
            "greedy_ids": new,
            "greedy_ids_are": f"the {NEW_TOKENS} new tokens only (prompt excluded), spec dequantization",
            "top1_minus_top2_margin_per_step": margins,
            "logits_file": f"{name}_logits.f32",
            "logits_are": "float32 logits at the last prompt position (spec dequantization)",
            "greedy_ids_bnb_cpu_kernel": bnb_new,
            "greedy_ids_f32_unquantized": f32_new,
            "load": f"AutoModelForCausalLM.from_pretrained(stories260K f32, quantization_config="
                    f"{ {k: str(v) for k, v in qcfg.to_dict().items()} }, device_map='cpu', dtype=torch.float32)",
            "notes": f"support_avx512bf16_for_cpu forced False on {nrep} Linear4bit modules",
        }
        with open(os.path.join(OUT, f"{name}_expected.json"), "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
        first_diff = next((i for i, (a, b) in enumerate(zip(new, bnb_new)) if a != b), None)
        summary[qt] = {"greedy_text": sp.decode(ids + new), "min_margin": min(margins),
                       "bnb_kernel_first_differs_at": first_diff,
                       "size_bytes": os.path.getsize(os.path.join(d, "model.safetensors"))}
    shutil.rmtree(plain, ignore_errors=True)
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("stories260K quantized by transformers + bitsandbytes (tests/golden/bnb_stories260K/)\n\n")
        f.write(f"Versions: python {platform.python_version()}, torch {torch.__version__}, "
                f"transformers {transformers.__version__}, bitsandbytes {bitsandbytes.__version__}, "
                f"numpy {np.__version__}, sentencepiece {spm.__version__}\n")
        f.write(f"CPU: {platform.machine()}, torch cpu capability {torch.backends.cpu.get_cpu_capability()}\n")
        f.write("Command: build/venv/bin/python scripts/goldens/make_bnb_stories_goldens.py\n")
        f.write(f"Date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n")
        f.write(f"Source: {STORIES}/stories260K.gguf via transformers' GGUF loader (f32)\n\n")
        for qt, s in summary.items():
            f.write(f"{qt}: {json.dumps(s)}\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
