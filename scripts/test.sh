#!/usr/bin/env bash
# The README's second command: set up, build and run every test.
#   1. include scan (layer rule)
#   2. asan-ubsan build: all unit, golden, corrupt-file and CLI tests under ctest
#   3. release build: the CLI, the benchmarks (compiled, not run) and the demo
#   4. fuzz build (clang-14 + libFuzzer): each parser fuzzed for a short budget
# Environment: NIBBLE_FUZZ_SECONDS (default 15 per target), NIBBLE_SKIP_FUZZ=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NIBBLE_WERROR=ON
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}

python3 scripts/check_includes.py

cmake --preset asan-ubsan >/dev/null
cmake --build --preset asan-ubsan
ASAN_OPTIONS=detect_leaks=1 ctest --preset asan-ubsan

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
