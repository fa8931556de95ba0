#!/usr/bin/env python3
"""GGUF goldens made and checked with the upstream `gguf` Python package (gguf-py).

Run from the repo root:  build/venv/bin/python scripts/goldens/make_gguf_goldens.py

1. Writes tests/golden/gguf/gguf_py_small.gguf with gguf.GGUFWriter: every scalar
   value type, arrays (i32, string, f32, bool, nested), custom alignment 64 and five
   small tensors (F32, F16, BF16 bits, Q8_0 raw bytes, I8). src/io/gguf_test.cc
   (GgufGolden.*) reads it with nibble and checks every value below, and checks that
   nibble's writer reproduces the file byte for byte.
2. Writes tests/golden/gguf/VERSIONS.txt (gguf and numpy versions).
3. Checks the other direction. The C++ test cannot call Python, so nibble writes
   tests/golden/gguf/nibble_written.gguf only when asked:
       NIBBLE_REGEN_GOLDENS=1 build/<dir>/src/io/io_test --gtest_filter='GgufGolden.*'
   This script then opens that file with gguf.GGUFReader, checks the contents that
   the C++ test wrote (MakeRoundTripContent in gguf_test.cc; the values are repeated
   below) and prints OK. Without the file it says so and checks only step 1.
4. Writes the libFuzzer seeds in tests/fuzz/corpus/gguf/ (copies of both goldens,
   stories260K's metadata with one tensor, a v2 file at alignment 8, a vocab-only file).
"""
import pathlib
import sys
from importlib.metadata import version

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "golden" / "gguf"
SEEDS = ROOT / "tests" / "fuzz" / "corpus" / "gguf"
STORIES = ROOT.parent / "shared" / "data" / "llama2c-stories260K" / "stories260K.gguf"


def write_gguf_py_small(path: pathlib.Path) -> None:
    w = gguf.GGUFWriter(str(path), arch="llama")  # adds general.architecture first
    w.add_custom_alignment(64)                     # adds general.alignment (u32)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)                 # stored as the f32 nearest 0.1
    w.add_bool("test.bool", True)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld \u2713")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62) - 7)
    w.add_float64("test.f64", 3.141592653589793)
    w.add_key_value("test.arr_i32", [1, -2, 3], VT.ARRAY, sub_type=VT.INT32)
    w.add_array("test.arr_str", ["a", "bc", "\u00df"])
    w.add_key_value("test.arr_f32", [0.5, -1.25], VT.ARRAY, sub_type=VT.FLOAT32)
    w.add_array("test.arr_bool", [True, False])
    w.add_array("test.nested", [[1, 2], [3]])       # array of arrays of i32
    # t.f32: (2, 3) f32 = arange(6) * 0.5 - 1
    w.add_tensor("t.f32", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
    # t.f16: (4,) f16
    w.add_tensor("t.f16", np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16))
    # t.bf16: (2, 2) bf16 given as raw bits (1, -2, 0.5, 0)
    w.add_tensor("t.bf16", np.array([[0x3F80, 0xC000], [0x3F00, 0x0000]], dtype=np.uint16), raw_dtype=QT.BF16)
    # t.q8_0: 2 rows of one Q8_0 block (34 bytes each), bytes = arange(68)
    w.add_tensor("t.q8_0", np.arange(68, dtype=np.uint8).reshape(2, 34), raw_dtype=QT.Q8_0)
    # t.i8: (5,) i8
    w.add_tensor("t.i8", np.array([-128, -1, 0, 1, 127], dtype=np.int8))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check(cond: bool, what: str) -> None:
    if not cond:
        sys.exit(f"FAIL: {what}")


def inner_lengths(field) -> list:
    """Counts of the inner arrays of a flattened array-of-scalar-arrays field. Its
    parts are key_len, key, type, outer elem_type, outer count, then per inner
    array: elem_type, count and one part per item."""
    parts = field.parts
    lens = []
    i = 5
    while i < len(parts):
        itype, alen = parts[i], parts[i + 1]
        check(itype.dtype == np.uint32 and alen.dtype == np.uint64, f"{field.name}: inner array header")
        n = int(alen[0])
        lens.append(n)
        i += 2 + n
    return lens


def verify_nibble_written(path: pathlib.Path) -> None:
    r = gguf.GGUFReader(str(path))
    f = r.fields

    def scalar(key, vtype, value):
        check(key in f, f"missing key {key}")
        check(f[key].types == [vtype], f"{key}: type {f[key].types}")
        got = f[key].contents()
        check(got == value, f"{key}: {got!r} != {value!r}")

    check(r.data[4:8].view(np.uint32)[0] == 3, "version 3")
    check(r.alignment == 64, f"alignment {r.alignment}")
    scalar("general.architecture", VT.STRING, "llama")
    scalar("general.alignment", VT.UINT32, 64)
    scalar("nb.u8", VT.UINT8, 7)
    scalar("nb.i8", VT.INT8, -7)
    scalar("nb.u16", VT.UINT16, 65535)
    scalar("nb.i16", VT.INT16, -32768)
    scalar("nb.u32", VT.UINT32, 4294967295)
    scalar("nb.i32", VT.INT32, -2147483648)
    scalar("nb.f32", VT.FLOAT32, 0.25)
    scalar("nb.bool", VT.BOOL, True)
    scalar("nb.string", VT.STRING, "nibble \u2713 \u00fcn\u00efc\u00f6d\u00e9")
    scalar("nb.u64", VT.UINT64, 18446744073709551615)
    scalar("nb.i64", VT.INT64, -9223372036854775808)
    scalar("nb.f64", VT.FLOAT64, -1e-300)
    check(f["nb.arr_u8"].types == [VT.ARRAY, VT.UINT8] and f["nb.arr_u8"].contents() == [1, 2, 3], "nb.arr_u8")
    check(f["nb.arr_str"].types == [VT.ARRAY, VT.STRING] and f["nb.arr_str"].contents() == ["x", "", "yz"],
          "nb.arr_str")
    check(f["nb.arr_f64"].types == [VT.ARRAY, VT.FLOAT64] and f["nb.arr_f64"].contents() == [1.5, -2.5],
          "nb.arr_f64")
    # gguf-py flattens nested arrays: leaf values in order, types from the first item.
    nested = f["nb.nested"]
    check(nested.types == [VT.ARRAY, VT.ARRAY, VT.INT16], f"nb.nested types {nested.types}")
    check(nested.contents() == [1, 2, 3, -4], f"nb.nested values {nested.contents()}")
    check(inner_lengths(nested) == [3, 0, 1], "nb.nested inner lengths")
    deep = f["nb.deep"]
    check(deep.types == [VT.ARRAY, VT.ARRAY, VT.ARRAY, VT.BOOL], f"nb.deep types {deep.types}")
    check(deep.contents() == [True], "nb.deep values")

    t = {x.name: x for x in r.tensors}
    check(list(t) == ["tok.f32", "tok.f16", "tok.bf16", "tok.q8_0", "tok.q4_0"], f"tensor names {list(t)}")

    def tensor(name, qtype, ne, raw):
        x = t[name]
        check(x.tensor_type == qtype, f"{name}: type {x.tensor_type}")
        check(list(x.shape) == ne, f"{name}: ne {list(x.shape)}")
        check(x.data_offset % 64 == 0, f"{name}: data offset {x.data_offset}")
        got = bytes(r.data[x.data_offset:x.data_offset + x.n_bytes])
        check(got == raw, f"{name}: data")

    tensor("tok.f32", QT.F32, [4, 3], (np.arange(12, dtype=np.float32) * 0.5 - 2).tobytes())
    tensor("tok.f16", QT.F16, [3, 2],
           np.array([0x0000, 0x3C00, 0xC000, 0x3800, 0x6400, 0xB400], dtype=np.uint16).tobytes())
    tensor("tok.bf16", QT.BF16, [4], np.array([0x3F80, 0xC000, 0x3F00, 0x0000], dtype=np.uint16).tobytes())
    tensor("tok.q8_0", QT.Q8_0, [32, 2], bytes((i * 7) & 0xFF for i in range(68)))
    tensor("tok.q4_0", QT.Q4_0, [64, 1], bytes((i * 13 + 5) & 0xFF for i in range(36)))


def write_fuzz_seeds() -> None:
    SEEDS.mkdir(parents=True, exist_ok=True)
    for name in ("gguf_py_small.gguf", "nibble_written.gguf"):
        if (OUT / name).exists():
            (SEEDS / name).write_bytes((OUT / name).read_bytes())

    # stories260K's 19 kv (string/u32/f32 scalars, 512-item string/f32/i32 arrays) + one tensor.
    src = gguf.GGUFReader(str(STORIES))
    w = gguf.GGUFWriter(str(SEEDS / "stories_meta.gguf"), arch="llama")
    for key, field in src.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        if vtype == VT.ARRAY:
            w.add_key_value(key, field.contents(), VT.ARRAY, sub_type=field.types[-1])
        else:
            w.add_key_value(key, field.contents(), vtype)
    norm = next(t for t in src.tensors if t.name == "output_norm.weight")
    w.add_tensor(norm.name, np.array(norm.data, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Version 2 (same layout as v3), alignment 8, one Q4_0 block and an f16 vector.
    p = SEEDS / "v2_align8.gguf"
    w = gguf.GGUFWriter(str(p), arch="llama")
    w.add_custom_alignment(8)
    w.add_array("test.nested", [[1, 2], [3]])
    w.add_tensor("q", np.arange(18, dtype=np.uint8).reshape(1, 18), raw_dtype=QT.Q4_0)
    w.add_tensor("h", np.array([1.0, 2.0, 3.0], dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    b = bytearray(p.read_bytes())
    b[4:8] = (2).to_bytes(4, "little")
    p.write_bytes(bytes(b))

    # Metadata only (no tensors).
    w = gguf.GGUFWriter(str(SEEDS / "vocab_only.gguf"), arch="llama")
    w.add_array("tokenizer.ggml.tokens", ["<unk>", "<s>", "</s>", "\u2581the"])
    w.add_key_value("tokenizer.ggml.scores", [0.0, 0.0, 0.0, -1.5], VT.ARRAY, sub_type=VT.FLOAT32)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    total = sum(f.stat().st_size for f in SEEDS.iterdir())
    print(f"wrote fuzz seeds in {SEEDS} ({total} bytes)")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    small = OUT / "gguf_py_small.gguf"
    write_gguf_py_small(small)
    (OUT / "VERSIONS.txt").write_text(
        f"gguf {version('gguf')}\n"
        f"numpy {np.__version__}\n"
        "gguf_py_small.gguf: written by scripts/goldens/make_gguf_goldens.py with gguf.GGUFWriter\n"
        "nibble_written.gguf: written by nibble (NIBBLE_REGEN_GOLDENS=1 io_test), checked by the same script\n")
    print(f"wrote {small} ({small.stat().st_size} bytes)")
    nib = OUT / "nibble_written.gguf"
    write_fuzz_seeds()
    if not nib.exists():
        print(f"{nib} not found: run NIBBLE_REGEN_GOLDENS=1 io_test --gtest_filter='GgufGolden.*' first")
        return
    verify_nibble_written(nib)
    print(f"OK: {nib} parses in gguf.GGUFReader with the expected contents")


if __name__ == "__main__":
    main()
