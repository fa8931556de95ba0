#!/usr/bin/env python3
"""Load a Hugging Face model directory with transformers (+ bitsandbytes) on CPU and run
greedy generation; prints ONE JSON line on stdout:

  {"greedy_ids": [...new tokens only, prompt excluded...], "logits_last": [first 8 logits]}

"logits_last" are the float32 logits at the last prompt position (one forward pass over
the prompt). Everything else (warnings, progress bars) goes to stderr.

Default mode: the directory's config.json must carry a bitsandbytes quantization_config
(e.g. written by `nibble export` or transformers' save_pretrained of a 4-bit/8-bit model);
transformers takes the quantization settings from it (pre-quantized load).
--plain: the directory must be a non-quantized checkpoint (e.g. `nibble export --format hf`);
it is loaded the same way, in its stored dtype unless --dtype says otherwise.

Usage:
  build/venv/bin/python scripts/interop/bnb_load_and_generate.py DIR --ids 1,2,3 --max-new-tokens 8 [--plain]
      [--dtype auto|float32|bfloat16|float16] [--logits-out FILE.f32]

Needs torch, transformers, bitsandbytes (>= 0.46, CPU backend), accelerate in the venv
(see scripts/goldens/README.md).
"""
import argparse
import json
import os
import sys


def spec_dequantize_4bit(A, quant_state=None, absmax=None, out=None, blocksize=None, quant_type=None):
    """bnb-compatible-quantization.md §2.6/§3.4: blocks over the flat element order."""
    import torch
    st = quant_state
    packed = A.reshape(-1).view(torch.uint8)
    n = 1
    for d in st.shape:
        n *= d
    codes = torch.empty(packed.numel() * 2, dtype=torch.long)
    codes[0::2] = (packed >> 4).long()
    codes[1::2] = (packed & 15).long()
    codes = codes[:n]
    if st.nested:
        s2 = st.state2
        a = (s2.code[st.absmax.long()] * s2.absmax.float().repeat_interleave(s2.blocksize)[: st.absmax.numel()])
        a = a.float() + st.offset.float()
    else:
        a = st.absmax.float()
    lut = st.code.float()
    if st.quant_type == "fp4":
        lut = lut.clone()
        lut[8] = -0.0
    w = lut[codes] * a.repeat_interleave(st.blocksize)[:n]
    return w.reshape(st.shape).to(st.dtype)


def install_spec_dequant():
    import torch
    import bitsandbytes
    import bitsandbytes.functional as F
    F.dequantize_4bit = spec_dequantize_4bit

    def gemv(A, B, out=None, transposed_A=False, transposed_B=False, state=None):
        return torch.nn.functional.linear(A, spec_dequantize_4bit(B, state).to(A.dtype))

    F.gemv_4bit = gemv

    def matmul_4bit(A, B, quant_state, out=None, bias=None):
        # Inference runs torch.ops.bitsandbytes.gemm_4bit; replace the whole product.
        w = spec_dequantize_4bit(B, quant_state).to(A.dtype)
        return torch.nn.functional.linear(A, w, bias)

    bitsandbytes.matmul_4bit = matmul_4bit


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--ids", required=True, help="comma-separated prompt token ids, e.g. 1,2,3")
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--plain", action="store_true", help="load a non-quantized HF directory")
    ap.add_argument("--spec-dequant", action="store_true",
                    help="replace bitsandbytes' 4-bit dequantize/gemv with the spec's flat-order arithmetic "
                         "(bitsandbytes 0.50.2's CPU kernel takes the wrong absmax when a row is not a "
                         "whole number of blocks, e.g. a [16, 16] weight; see docs/INTEROP.md)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                    help="dtype for the non-quantized tensors (default: as stored in config.json)")
    ap.add_argument("--logits-out", help="also write all last-position logits as raw little-endian float32")
    args = ap.parse_args()

    # keep stdout for the single JSON line
    real_stdout = sys.stdout
    sys.stdout = sys.stderr

    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    qc = cfg.get("quantization_config")
    if args.plain:
        if qc is not None:
            sys.exit(f"error: --plain but {args.model_dir}/config.json has a quantization_config ({qc.get('quant_method')})")
    else:
        if qc is None or qc.get("quant_method") != "bitsandbytes":
            sys.exit(f"error: {args.model_dir}/config.json has no bitsandbytes quantization_config (use --plain?)")
        import bitsandbytes  # noqa: F401  (fail early with a clear import error)

    ids = [int(t) for t in args.ids.split(",") if t.strip() != ""]
    if not ids:
        sys.exit("error: --ids is empty")
    vocab = cfg.get("vocab_size") or cfg.get("text_config", {}).get("vocab_size")
    if vocab is not None and max(ids) >= vocab:
        sys.exit(f"error: id {max(ids)} >= vocab_size {vocab}")

    dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, device_map="cpu", dtype=dtype)
    model.eval()
    if args.dtype != "auto":
        # transformers keeps a pre-quantized checkpoint's stored dtype for the non-quantized
        # modules whatever `dtype` says; cast those (embeddings, norms, lm_head) by hand.
        # Packed 4-bit (uint8) and int8 weights are not floating point and stay as they are.
        for param in model.parameters():
            if param.is_floating_point() and param.dtype != dtype:
                param.data = param.data.to(dtype)

    if not args.plain:
        # bnb >= 0.49 repacks Linear4bit weights for its AVX512-BF16 CPU kernel at the first eval forward;
        # that path asserts out_features % 32 == 0 and needs kernels from the hub. Use the portable
        # dequantize_4bit + matmul path everywhere so results do not depend on the host CPU.
        import bitsandbytes as bnb
        for mod in model.modules():
            if isinstance(mod, bnb.nn.Linear4bit) and hasattr(mod, "support_avx512bf16_for_cpu"):
                mod.support_avx512bf16_for_cpu = False

    if args.spec_dequant:
        install_spec_dequant()

    inp = torch.tensor([ids], dtype=torch.long)
    with torch.no_grad():
        logits = model(inp).logits[0, -1].float().numpy().copy()
        pad = model.generation_config.pad_token_id
        if pad is None:
            pad = cfg.get("pad_token_id") if cfg.get("pad_token_id") is not None else (cfg.get("eos_token_id") or 0)
            if isinstance(pad, list):
                pad = pad[0]
        out = model.generate(inp, max_new_tokens=args.max_new_tokens, min_new_tokens=args.max_new_tokens,
                             do_sample=False, num_beams=1, pad_token_id=pad)
    new = out[0, len(ids):].tolist()
    if args.logits_out:
        logits.astype("<f4").tofile(args.logits_out)

    sys.stdout = real_stdout
    print(json.dumps({"greedy_ids": new, "logits_last": [float(v) for v in logits[:8]]}))


if __name__ == "__main__":
    main()
