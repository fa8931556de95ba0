#!/usr/bin/env bash
# The README's first command: set up, build the release CLI, and run the main job
# on the embedded demo model (no download): `nibble demo` (inspection, a streamed
# story, perplexity on a shipped TinyStories excerpt), then inspect and convert it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target nibble_cli
NIBBLE=build/release/tools/nibble/nibble
OUT=${TMPDIR:-/tmp}/nibble-demo
mkdir -p "$OUT"

echo; echo "== nibble demo"
"$NIBBLE" demo
echo; echo "== nibble inspect assets/stories260K/stories260K.gguf"
"$NIBBLE" inspect assets/stories260K/stories260K.gguf
echo; echo "== nibble inspect assets/stories260K/stories260K.bin --no-tensors"
"$NIBBLE" inspect --no-tensors assets/stories260K/stories260K.bin
echo; echo "== nibble convert --dtype bf16 stories260K.gguf -> $OUT/stories260K-bf16.gguf"
"$NIBBLE" convert --dtype bf16 --keep-norms-f32 assets/stories260K/stories260K.gguf "$OUT/stories260K-bf16.gguf"
echo; echo "== nibble convert --dtype f8_e4m3fn stories260K.bin -> $OUT/stories260K-fp8.safetensors"
"$NIBBLE" convert --dtype f8_e4m3fn assets/stories260K/stories260K.bin "$OUT/stories260K-fp8.safetensors"
