#!/usr/bin/env bash
# The base model's section of default-model/TRAINING.md, written into RUN_DIR/BASE.md once
# pretraining ends: the run's figures (scripts/kjv/training_report.py) and three greedy or
# sampled continuations; scripts/kjv/ship.sh puts it under the post-trained model's card.
#   scripts/kjv/base_card.sh RUN_DIR WALL_SECONDS [RUN_CONFIG]   (repository root; DSV3=binary)
# RUN_CONFIG (default scripts/kjv/run.json) is the config the card names.
set -euo pipefail
run=$1
wall=$2
config=${3:-scripts/kjv/run.json}
dsv3=${DSV3:-build/dsv3}
[ -f "$run/hf/config.json" ] || { echo "$run/hf holds no export" >&2; exit 1; }
gen() { "$dsv3" generate --model "$run/hf" "$@" 2>/dev/null; }
"$dsv3" inspect --model "$run/hf" > "$run/inspect.txt"
{
  cat <<MD
## The base model

Pretrained from scratch by \`dsv3 train --config $config\` (model
\`scripts/kjv/config.json\`, seed 1) on the training books: one verse per line under "Book N"
chapter headings, verse numbers dropped. Its loss curves (train and held-out) are
\`base_loss.svg\`.

MD
  python3 scripts/kjv/training_report.py "$run/metrics.jsonl" "$run/hf/config.json" "$wall" "$run/inspect.txt"
  echo
  echo "Greedy, \`dsv3 generate --prompt \"And God said\" --max-tokens 60 --temperature 0\`:"
  echo; echo '```'; echo "And God said$(gen --prompt "And God said" --max-tokens 60 --temperature 0)"; echo '```'; echo
  echo "Sampled, \`--prompt \"In the beginning\" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 1\`:"
  echo; echo '```'; echo "In the beginning$(gen --prompt "In the beginning" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 1)"; echo '```'; echo
  echo "Chat, asked \"Who made the heaven and the earth?\" (the base model never saw the template):"
  echo; echo '```'; printf 'Who made the heaven and the earth?\n' | "$dsv3" chat --model "$run/hf" --max-tokens 40 --temperature 0 2>/dev/null | tail -n +2; echo '```'
} > "$run/BASE.md"
rm "$run/inspect.txt"
