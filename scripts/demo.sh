#!/usr/bin/env bash
# The main job: the shipped default model (default-model/, a small DeepSeek-V3 trained on the
# King James Bible by scripts/train_default_model.sh; figures in default-model/TRAINING.md).
# Summarise it, let it continue a verse, and ask it a question through the chat template.
# It is a base model trained on raw scripture: it continues text, it does not follow
# instructions. Pass another model folder to run the same steps on it.
#   scripts/demo.sh [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
# Without an argument generate runs without --model, which means the shipped model.
model_flag=()
[ $# -gt 0 ] && model_flag=(--model "$1")
build/dsv3 inspect --model "${1:-default-model}"
echo
echo '$ dsv3 generate --prompt "And God said" --max-tokens 60'
build/dsv3 generate "${model_flag[@]}" --prompt "And God said" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 1
echo
echo '$ dsv3 generate --chat --prompt "Who made the heaven and the earth?"'
build/dsv3 generate "${model_flag[@]}" --chat --prompt "Who made the heaven and the earth?" --max-tokens 48 --seed 1
echo
echo 'Chat with it in a browser: build/dsv3 serve, then open http://127.0.0.1:8080/'
