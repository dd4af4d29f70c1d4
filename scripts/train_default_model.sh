#!/usr/bin/env bash
# Train the default model (default-model/): a small DeepSeek-V3 (MLA, MoE with noaux_tc
# routing, 1 MTP layer) pretrained on the King James Bible, from bible-kjv's text
# (scripts/setup.sh installs it), then post-trained to answer questions about it
# (scripts/kjv/post_train.sh). Deterministic: the text comes from the package, the tokenizer
# trainer has no randomness and the run configs fix their seeds (the thread count changes
# only the floating-point summation order). About 25 minutes of pretraining and two hours of
# post-training on 2 cores.
#   scripts/train_default_model.sh [THREADS]     (DSV3=path/to/dsv3 to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
export DSV3=${DSV3:-build/dsv3}
work=build/kjv
eval_books="Philippians,Colossians,Titus,Philemon,Jude"

command -v bible >/dev/null || { echo "bible (Debian package bible-kjv) is missing: run scripts/setup.sh" >&2; exit 1; }
[ -x "$DSV3" ] || { echo "$DSV3 is missing: build it (cmake -S . -B build -G Ninja && ninja -C build dsv3)" >&2; exit 1; }
if [ -e "$work/run/state" ]; then
  echo "$work/run already holds a training state; remove $work to start over" >&2; exit 1
fi
mkdir -p "$work"

# 1. Text: one verse per line under chapter headings; five short epistles held out for eval.
bible "Gen1:1-Rev22:21" > "$work/kjv_raw.txt"
python3 scripts/kjv/extract_kjv.py "$work/kjv_raw.txt" "$work/train.txt" "$work/eval.txt" \
  --eval-books "$eval_books"

# 2. Tokenizer: byte-level BPE learned from the training text only.
"$DSV3" train-tokenizer --vocab 4096 --out "$work/tokenizer" "$work/train.txt"

# 3. Pretraining (scripts/kjv/run.json: 1,500 steps in bf16; model scripts/kjv/config.json).
start=$(date +%s)
"$DSV3" train --config scripts/kjv/run.json --threads "$threads"
wall=$(( $(date +%s) - start ))

scripts/kjv/base_card.sh "$work/run" "$wall"

# 4. Post-training: SFT on instructions about the text, distilled from a larger teacher,
#    replaying the text (scripts/kjv/post_train.sh; its figures in build/kjv/post/).
scripts/kjv/post_train.sh "$threads"

# 5. Ship the post-trained model with its loss curves and TRAINING.md.
scripts/kjv/ship.sh "$work/run" "$work/student_kd_replay" "$work/post/results.json" \
  "$(awk '$1 == "student_kd_replay" {print $2}' "$work/post/wall.txt")"
