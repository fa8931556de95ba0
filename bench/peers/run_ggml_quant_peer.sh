#!/usr/bin/env bash
# ggml (llama.cpp's CPU backend) on nibble's 4-bit shapes: Q4_0 / IQ4_NL / Q8_0 GEMV on a cold
# 4096 x 14336 weight at 1 and 2 threads (plain and CPU_REPACK layouts), to_float and
# ggml_quantize_chunk throughput, and a same-run read-bandwidth probe (bench/peers/ggml_quant_bench.c).
# llama.cpp comes from the llama-cpp-python sdist (vendor/llama.cpp), fetched with pip; everything
# lands in build/peers/ (ignored by git) and is reused on the next run.
# PEER_CPU=avx2 (bench/peers/llamacpp_isa.sh): ggml built for AVX2 only, into its own folder.
# Env: LLAMA_CPP_PYTHON_VERSION (default 0.3.36; the newest sdist if that one is not on PyPI),
#      REPS (GEMV calls per case, default 100), COPIES (weight copies, default 6),
#      QUIET_WAIT_S (wait up to this long for the other cores to go idle first, default 300).
# Output: build/peers/ggml_quant_bench.json (stderr of the run in ggml_quant_bench.log).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="$root/build/peers"
want="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
mkdir -p "$peers/src"
# Keep git from walking up into nibble's own repository (ggml's CMake asks git for its commit).
export GIT_CEILING_DIRECTORIES="$peers"

if [[ -x "$root/build/venv/bin/python" ]]; then py="$root/build/venv/bin/python"; else py=python3; fi

# 1. Source: the sdist, downloaded once.
source "$root/bench/peers/llamacpp_source.sh"

# 2. ggml, static, through llama.cpp's top-level CMake (the ggml/ folder alone lacks ggml.pc.in).
source "$root/bench/peers/llamacpp_isa.sh"
build="$peers/ggml-build$isa_suffix"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  nice -n 10 cmake -S "$llama" -B "$build" -DCMAKE_BUILD_TYPE=Release "${ggml_isa_flags[@]}" -DBUILD_SHARED_LIBS=OFF \
    -DGGML_CCACHE=ON -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF >&2
fi
nice -n 10 cmake --build "$build" -j2 --target ggml ggml-base ggml-cpu >&2
libs=("$build/ggml/src/libggml.a" "$build/ggml/src/libggml-cpu.a" "$build/ggml/src/libggml-base.a")

# 3. The benchmark program.
bench_src="$root/bench/peers/ggml_quant_bench.c"
bench="$peers/ggml_quant_bench$isa_suffix"
if [[ ! -x "$bench" || "$bench_src" -nt "$bench" || "${libs[0]}" -nt "$bench" || "${libs[1]}" -nt "$bench" ||
      "${libs[2]}" -nt "$bench" ]]; then
  nice -n 10 gcc -O3 $cc_march -fopenmp -std=gnu11 -Wall -Wextra -I"$llama/ggml/include" "$bench_src" \
    -o "$bench" "${libs[@]}" -lstdc++ -lm -lpthread
fi

# 4. Wait (bounded) until other processes leave the cores idle: 2-thread figures on this
#    2-core machine are meaningless otherwise. The JSON reports what was left (foreign_cores).
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
deadline=$((SECONDS + ${QUIET_WAIT_S:-300}))
while :; do
  b0=$(busy); sleep 5; b1=$(busy)
  # jiffies at 100/s over 5 s: 50 = one core; under 0.2 cores is quiet enough
  if (( b1 - b0 < 10 )); then break; fi
  if (( SECONDS >= deadline )); then echo "other processes still busy ($((b1 - b0)) jiffies / 5 s); running anyway" >&2; break; fi
  echo "waiting for idle cores ($((b1 - b0)) jiffies / 5 s busy)" >&2
done

out="$peers/ggml_quant_bench$isa_suffix.json"
"$bench" --reps "${REPS:-100}" --copies "${COPIES:-6}" --llama-cpp-commit "$commit" \
  --source "llama-cpp-python==$version sdist (vendor/llama.cpp), ${ggml_isa_flags[*]} Release static, gcc $(gcc -dumpfullversion)" \
  >"$out.tmp" 2>"$peers/ggml_quant_bench$isa_suffix.log"
mv "$out.tmp" "$out"
cat "$out"
