#!/usr/bin/env bash
# The main job until a trained model ships: generate the default test checkpoint (random
# weights in the published FP8 layout) once, summarise it, and run it on a token sequence
# through prefill, decode and the MTP head, checking that the paths agree.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/small-fp8}
[ -f "$model/config.json" ] || build/dsv3 make-test-model --preset small --dtype fp8 --shards 2 --out "$model"
build/dsv3 inspect --model "$model"
tokens=0,2019,345,7,1234,42,4096,999,5,77,3141,2718
build/dsv3 logits --model "$model" --tokens "$tokens" --mtp --out /tmp/dsv3-demo-prefill.safetensors
build/dsv3 logits --model "$model" --tokens "$tokens" --mtp --decode --out /tmp/dsv3-demo-decode.safetensors
