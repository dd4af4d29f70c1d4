#!/usr/bin/env bash
# The main job: the shipped default model (default-model/, a small DeepSeek-V3 pretrained on
# the King James Bible and post-trained to answer questions about it by
# scripts/train_default_model.sh; figures in default-model/TRAINING.md). Summarise it, let it
# continue a verse, and ask it questions through the chat template: it answers in the forms
# it was taught (a verse, a book and chapter, a number, a name), though at 8 M parameters
# most of its facts are wrong. Pass another model folder to run the same steps on it.
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
for q in "Who begat Nahshon?" "How long did Adam live?" \
         'Which book and chapter says: "And God said, Let there be light: and there was light."?'; do
  echo "\$ dsv3 generate --chat --temperature 0 --prompt '$q'"
  build/dsv3 generate "${model_flag[@]}" --chat --prompt "$q" --max-tokens 48 --temperature 0
  echo
done
echo 'Chat with it in a browser: build/dsv3 serve, then open http://127.0.0.1:8080/'
