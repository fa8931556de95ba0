#!/usr/bin/env python3
"""Golden tables for src/core/float_golden_test.cc, written by the real libraries.

numpy writes f16 (astype float16 / float32); torch writes bf16, float8_e4m3fn and
float8_e5m2 (.to(dtype) and .float()). Run from the repo root:
    build/venv/bin/python scripts/goldens/make_float_goldens.py
Every file is little-endian, no header (sizes in VERSIONS.txt):
  f32_inputs.bin      N x u32   f32 bit patterns: specials, exponent boundaries, ties, random
  f32_to_f16.bin      N x u16   numpy  x.astype(float16)
  f32_to_bf16.bin     N x u16   torch  x.to(bfloat16)
  f32_to_e4m3fn.bin   N x u8    torch  x.to(float8_e4m3fn)
  f32_to_e5m2.bin     N x u8    torch  x.to(float8_e5m2)
  f16_to_f32.bin      65536 x u32  numpy: every f16 pattern (index = bits) as f32 bits
  bf16_to_f32.bin     65536 x u32  torch: every bf16 pattern as f32 bits
  e4m3fn_to_f32.bin   256 x u32    torch: every e4m3fn code as f32 bits
  e5m2_to_f32.bin     256 x u32    torch: every e5m2 code as f32 bits
"""
import os
import platform
import sys

import numpy as np
import torch

kNumInputs = 40960  # keeps the whole folder under 1 MB (10 bytes per input + 514 KiB decodes)
kSeed = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "float")


def f32_bits(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def midpoint_set(values):
    """f32 bits of the midpoints between adjacent values and +-1 f32 ulp around them, both signs."""
    v = np.asarray(values, dtype=np.float64)
    mids = ((v[:-1] + v[1:]) / 2).astype(np.float32)  # exact: midpoints need <= 12 significant bits
    assert np.all(mids.astype(np.float64) == (v[:-1] + v[1:]) / 2)
    b = f32_bits(mids).astype(np.int64)
    out = np.concatenate([b, b - 1, b + 1])
    out = out[out >= 0]
    return np.concatenate([out, out | 0x80000000]).astype(np.uint32)


def positive_finite_values(decode, codes, extra_next):
    """Sorted exact values of the positive finite codes, plus the first value past the max."""
    vals = decode(codes)
    vals = vals[np.isfinite(vals)]
    return np.concatenate([np.sort(vals.astype(np.float64)), [extra_next]])


def main():
    rng = np.random.default_rng(kSeed)
    parts = []
    # Specials: zeros, infinities, quiet and signalling NaNs with payloads.
    parts.append(np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
                           0xFF800001, 0x7FA5A5A5, 0x7F802000, 0x7FBFFFFF, 0xFFFFFFFF, 0x7FFFE000,
                           0x7F810000, 0x7F800100, 0x7FC00001], dtype=np.uint32))
    # Every f32 exponent with mantissas at the edges and at the rounding-relevant middle.
    exps = np.arange(256, dtype=np.uint32)
    mants = np.array([0, 1, 2, 0x3FFFFF, 0x400000, 0x400001, 0x7FFFFE, 0x7FFFFF], dtype=np.uint32)
    grid = ((exps[:, None] << 23) | mants[None, :]).ravel()
    parts.append(np.concatenate([grid, grid | 0x80000000]))
    # fp8: every adjacent pair (overflow step included), ties and +-1 ulp.
    codes8 = np.arange(0x80, dtype=np.uint8)
    e4 = torch.from_numpy(codes8).view(torch.float8_e4m3fn).float().numpy()
    parts.append(midpoint_set(np.concatenate([np.sort(e4[np.isfinite(e4)].astype(np.float64)), [480.0]])))
    e5 = torch.from_numpy(codes8).view(torch.float8_e5m2).float().numpy()
    parts.append(midpoint_set(np.concatenate([np.sort(e5[np.isfinite(e5)].astype(np.float64)), [65536.0]])))
    # f16 and bf16: ties around every third subnormal, the edges of every binade, and random codes.
    codes16 = np.arange(0x7C00, dtype=np.uint16)
    f16 = codes16.view(np.float16).astype(np.float64)
    f16 = np.concatenate([f16, [65536.0]])
    pick = np.unique(np.concatenate([np.arange(0, 1030, 3), ((np.arange(31) * 1024)[:, None] + np.array([-2, -1, 0, 1])).ravel(),
                                     rng.integers(0, 0x7C00, 400)]))
    pick = pick[(pick >= 0) & (pick < 0x7C00)]
    parts.append(np.concatenate([midpoint_set(f16[[i, i + 1]]) for i in pick]))
    codesb = np.arange(0x7F80, dtype=np.uint32)
    bf = (codesb << 16).view(np.float32).astype(np.float64)
    bf = np.concatenate([bf, [2.0 ** 128]])
    pickb = np.unique(np.concatenate([np.arange(0, 260), ((np.arange(255) * 128)[:, None] + np.array([-1, 0])).ravel(),
                                      rng.integers(0, 0x7F80, 200)]))
    pickb = pickb[(pickb >= 0) & (pickb < 0x7F80)]
    # 2^128 is not an f32: the bf16 overflow tie is 0x7F7F8000, added by hand.
    parts.append(np.concatenate([midpoint_set(bf[[i, i + 1]]) for i in pickb if i + 1 < 0x7F80]))
    parts.append(np.array([0x7F7F8000, 0x7F7F7FFF, 0x7F7F8001, 0xFF7F8000], dtype=np.uint32))
    fixed = np.unique(np.concatenate(parts))
    assert fixed.size < kNumInputs * 3 // 4, fixed.size
    # Fill: half random bit patterns, half log-uniform magnitudes in [2^-26, 2^17] (the fp8/f16 range).
    rest = kNumInputs - fixed.size
    rbits = rng.integers(0, 2 ** 32, rest // 2, dtype=np.uint64).astype(np.uint32)
    mag = np.exp2(rng.uniform(-26, 17, rest - rest // 2)).astype(np.float32)
    sign = rng.integers(0, 2, mag.size).astype(np.uint32) << 31
    inputs = np.concatenate([fixed, rbits, f32_bits(mag) | sign]).astype("<u4")
    assert inputs.size == kNumInputs
    x = inputs.view(np.float32)
    t = torch.from_numpy(x.copy())

    os.makedirs(OUT, exist_ok=True)

    def write(name, arr):
        arr.tofile(os.path.join(OUT, name))

    write("f32_inputs.bin", inputs)
    with np.errstate(over="ignore", invalid="ignore"):
        write("f32_to_f16.bin", x.astype(np.float16).view("<u2"))
        write("f16_to_f32.bin", np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view("<u4"))
    write("f32_to_bf16.bin", t.to(torch.bfloat16).view(torch.int16).numpy().view("<u2"))
    write("f32_to_e4m3fn.bin", t.to(torch.float8_e4m3fn).view(torch.uint8).numpy())
    write("f32_to_e5m2.bin", t.to(torch.float8_e5m2).view(torch.uint8).numpy())
    all16 = torch.from_numpy(np.arange(65536, dtype=np.uint16).view(np.int16).copy())
    write("bf16_to_f32.bin", all16.view(torch.bfloat16).float().numpy().view("<u4"))
    all8 = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    write("e4m3fn_to_f32.bin", all8.view(torch.float8_e4m3fn).float().numpy().view("<u4"))
    write("e5m2_to_f32.bin", all8.view(torch.float8_e5m2).float().numpy().view("<u4"))

    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Written by scripts/goldens/make_float_goldens.py; do not edit.\n")
        f.write("command: build/venv/bin/python scripts/goldens/make_float_goldens.py\n")
        f.write(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}\n")
        f.write(f"seed {kSeed}, num_inputs {kNumInputs}\n")
        f.write("f16: numpy; bf16, float8_e4m3fn, float8_e5m2: torch (CPU)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
