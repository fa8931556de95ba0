#!/usr/bin/env python3
"""safetensors goldens for src/io/safetensors_test.cc, written and checked by the real library.

Run from the repo root:
    build/venv/bin/python scripts/goldens/make_safetensors_goldens.py
It writes into tests/golden/safetensors/:
  numpy_dtypes.safetensors   safetensors.numpy.save_file: F64 F32 F16 I8 U8 I16 U16 I32 U32 I64 U64 BOOL,
                             a scalar (shape []) and a zero-size tensor (shape [0, 3]), with __metadata__
  torch_dtypes.safetensors   safetensors.torch.save_file: BF16 F8_E4M3 F8_E5M2 (numpy has none of them)
  <file>.json                the manifest the C++ test checks against: {"metadata": {...}, "tensors":
                             [{"name", "dtype", "shape", "values"}]}; values are the library's own
                             decoding (tensor -> float64 / int), floats as Python repr strings
                             ("nan", "-inf", "-0.0", "5e-324"), ints and bools as JSON numbers / booleans
  hf_tiny_random_llama.json  per tensor of /work/shared/data/hf-tiny-random-llama/model.safetensors
                             (read with safetensors.numpy.load_file): shape, first 4 values, float64 sum
  VERSIONS.txt               library versions
The other direction (nibble writes, upstream reads): the C++ test
SafetensorsGolden.NibbleWrittenFilesMatchCheckedIn, run with NIBBLE_REGEN_GOLDENS=1, writes
nibble_written_numpy.safetensors / nibble_written_torch.safetensors and their .json manifests here;
this script then loads them with safetensors.numpy.load_file / safetensors.torch.load_file and
checks every value (it exits non-zero on a mismatch). Without NIBBLE_REGEN_GOLDENS the C++ test
compares what the writer produces now with those checked-in bytes. Order after a writer change:
    NIBBLE_REGEN_GOLDENS=1 build/<dir>/src/io/io_test --gtest_filter='SafetensorsGolden.*'
    build/venv/bin/python scripts/goldens/make_safetensors_goldens.py
"""
import json
import math
import os
import platform
import sys

import numpy as np
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "golden", "safetensors")
HF_TINY = os.path.join(ROOT, "..", "shared", "data", "hf-tiny-random-llama", "model.safetensors")
METADATA = {"format": "np", "note": "golden ✓ ünïcode"}


def float_cases(finfo_max, tiny, smallest_subnormal, has_inf=True, odd=3.140625):
    """Exactly representable values: signed zeros, extremes, subnormals, NaN (and inf); `odd`
    uses the dtype's low mantissa bits."""
    v = [0.0, -0.0, 1.0, -2.5, odd, finfo_max, -finfo_max, tiny, smallest_subnormal, float("nan")]
    if has_inf:
        v += [float("inf"), float("-inf")]
    return v


def int_cases(dtype):
    info = np.iinfo(dtype)
    return [0, 1, int(info.max), int(info.min), 42 if info.min == 0 else -42, int(info.max) - 1]


def manifest_value(x, is_float):
    if isinstance(x, bool):
        return x
    return repr(float(x)) if is_float else int(x)


def tensor_manifest(name, dtype_str, arr_as_list, shape, is_float):
    flat = np.asarray(arr_as_list, dtype=object).reshape(-1).tolist() if shape else [arr_as_list]
    return {"name": name, "dtype": dtype_str, "shape": list(shape), "values": [manifest_value(x, is_float) for x in flat]}


def make_numpy():
    tensors = {}
    for dt, code in [(np.float64, "F64"), (np.float32, "F32"), (np.float16, "F16")]:
        fi = np.finfo(dt)
        vals = float_cases(float(fi.max), float(fi.tiny), float(fi.smallest_subnormal))
        tensors[f"float.{code}"] = np.array(vals, dtype=dt).reshape(3, 4)
    for dt, code in [(np.int8, "I8"), (np.uint8, "U8"), (np.int16, "I16"), (np.uint16, "U16"), (np.int32, "I32"),
                     (np.uint32, "U32"), (np.int64, "I64"), (np.uint64, "U64")]:
        tensors[f"int.{code}"] = np.array(int_cases(dt), dtype=dt).reshape(2, 3)
    tensors["bool.BOOL"] = np.array([True, False, True, True], dtype=bool).reshape(2, 2)
    tensors["scalar.F32"] = np.array(7.5, dtype=np.float32)
    tensors["empty.I32"] = np.zeros((0, 3), dtype=np.int32)
    path = os.path.join(OUT, "numpy_dtypes.safetensors")
    safetensors.numpy.save_file(tensors, path, metadata=METADATA)
    os.chmod(path, 0o644)  # upstream writes through a 0600 temporary
    back = safetensors.numpy.load_file(path)  # the manifest is the library's own decoding
    codes = {"float64": "F64", "float32": "F32", "float16": "F16", "int8": "I8", "uint8": "U8", "int16": "I16",
             "uint16": "U16", "int32": "I32", "uint32": "U32", "int64": "I64", "uint64": "U64", "bool": "BOOL"}
    entries = []
    for name in sorted(back):
        a = back[name]
        is_float = a.dtype.kind == "f"
        entries.append(tensor_manifest(name, codes[a.dtype.name], a.tolist(), a.shape, is_float))
    write_manifest("numpy_dtypes.json", entries)


def make_torch():
    e4 = torch.finfo(torch.float8_e4m3fn)
    e5 = torch.finfo(torch.float8_e5m2)
    bf = torch.finfo(torch.bfloat16)
    cases = {
        "float.BF16": (torch.bfloat16, float_cases(bf.max, bf.tiny, 2.0**-133)),
        # e4m3fn has no infinities: its NaN is the only special.
        "float.F8_E4M3": (torch.float8_e4m3fn, float_cases(e4.max, e4.tiny, 2.0**-9, has_inf=False, odd=3.25)),
        "float.F8_E5M2": (torch.float8_e5m2, float_cases(e5.max, e5.tiny, 2.0**-16, odd=-0.75)),
    }
    tensors = {}
    for name, (dt, vals) in cases.items():
        t = torch.tensor(vals, dtype=torch.float64)
        conv = t.to(dt)
        assert torch.equal(conv.to(torch.float64).isnan(), t.isnan())
        ok = conv.to(torch.float64)[~t.isnan()] == t[~t.isnan()]
        assert bool(ok.all()), f"{name}: case values must be exact in the dtype"
        tensors[name] = conv.reshape(2, -1)
    path = os.path.join(OUT, "torch_dtypes.safetensors")
    safetensors.torch.save_file(tensors, path, metadata=METADATA)
    os.chmod(path, 0o644)
    back = safetensors.torch.load_file(path)
    codes = {torch.bfloat16: "BF16", torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2"}
    entries = [tensor_manifest(n, codes[back[n].dtype], back[n].to(torch.float64).tolist(), tuple(back[n].shape),
                               True) for n in sorted(back)]
    write_manifest("torch_dtypes.json", entries)


def write_manifest(name, entries):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump({"metadata": METADATA, "tensors": entries}, f, indent=1, ensure_ascii=False)
        f.write("\n")


def make_hf_tiny():
    arrays = safetensors.numpy.load_file(HF_TINY)
    out = {n: {"shape": list(a.shape), "first": [repr(float(x)) for x in a.reshape(-1)[:4]],
               "sum": repr(float(a.astype(np.float64).sum()))} for n, a in sorted(arrays.items())}
    with open(os.path.join(OUT, "hf_tiny_random_llama.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


def same(expected, actual, is_float):
    if not is_float:
        return int(expected) == int(actual)
    e = float(expected)
    if math.isnan(e):
        return math.isnan(actual)
    return e == actual and math.copysign(1.0, e) == math.copysign(1.0, actual)


def check_nibble_written():
    """Loads the files the C++ writer produced with the upstream loaders; returns the number checked."""
    checked = 0
    for stem, loader in [("nibble_written_numpy", safetensors.numpy.load_file),
                         ("nibble_written_torch", safetensors.torch.load_file)]:
        path = os.path.join(OUT, stem + ".safetensors")
        if not os.path.exists(path):
            print(f"note: {path} missing; run the C++ test with NIBBLE_REGEN_GOLDENS=1 first")
            continue
        with open(os.path.join(OUT, stem + ".json"), encoding="utf-8") as f:
            manifest = json.load(f)
        loaded = loader(path)
        with safetensors.safe_open(path, framework="np" if "numpy" in stem else "pt") as f:
            assert f.metadata() == manifest["metadata"], f"{stem}: metadata {f.metadata()}"
        assert sorted(loaded) == sorted(t["name"] for t in manifest["tensors"]), f"{stem}: tensor names differ"
        for t in manifest["tensors"]:
            a = loaded[t["name"]]
            assert list(a.shape) == t["shape"], f"{stem}: {t['name']} shape {list(a.shape)} != {t['shape']}"
            is_float = t["dtype"].startswith(("F", "BF"))
            # The torch file holds only BF16 / F8 tensors, which Python sees through float64.
            flat = a.to(torch.float64).reshape(-1).tolist() if isinstance(a, torch.Tensor) else a.reshape(-1).tolist()
            assert len(flat) == len(t["values"]), f"{stem}: {t['name']} has {len(flat)} values"
            for i, (e, v) in enumerate(zip(t["values"], flat)):
                assert same(e, v, is_float), f"{stem}: {t['name']}[{i}]: expected {e}, upstream read {v}"
            checked += 1
    return checked


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    make_numpy()
    make_torch()
    make_hf_tiny()
    checked = check_nibble_written()
    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write("Written by scripts/goldens/make_safetensors_goldens.py; do not edit.\n")
        f.write("command: build/venv/bin/python scripts/goldens/make_safetensors_goldens.py\n")
        f.write(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
                f"safetensors {safetensors.__version__}\n")
        f.write(f"nibble-written tensors checked by upstream loaders: {checked}\n")
    print(f"wrote {OUT}; nibble-written tensors checked by upstream: {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
