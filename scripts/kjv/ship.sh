#!/usr/bin/env bash
# Copy a finished run's export into default-model/ and write its TRAINING.md (figures from the
# metrics, three sample generations and a chat answer).
#   scripts/kjv/ship.sh RUN_DIR WALL_SECONDS      (from the repository root; DSV3=binary)
set -euo pipefail
run=$1
wall=$2
dsv3=${DSV3:-build/dsv3}
ship=default-model
[ -f "$run/hf/config.json" ] || { echo "$run/hf holds no export" >&2; exit 1; }

rm -rf "$ship.new"
mkdir -p "$ship.new"
cp "$run"/hf/* "$run/loss.svg" "$ship.new/"
"$dsv3" inspect --model "$ship.new" > "$ship.new/inspect.txt"

gen() { "$dsv3" generate --model "$ship.new" "$@" 2>/dev/null; }
{
  cat <<'MD'
# The default model: DeepSeek-V3, small, trained on the King James Bible

A DeepSeek-V3 architecture at toy scale (MLA with q-LoRA, one dense layer then DeepSeekMoE
layers with a shared expert and 16 routed experts under `noaux_tc` sigmoid routing with 4
groups, one MTP module, YaRN rope), trained from scratch by `dsv3 train` on the KJV text of
the Debian package bible-kjv. It is a base model: it continues text in the style of the
King James Bible and knows nothing else; `dsv3 chat` wraps a question in the chat template,
which it never saw in training, and it answers with scripture-like text, not an answer.

Reproduce: `scripts/train_default_model.sh` (text extraction `scripts/kjv/extract_kjv.py`,
a 4096-token BPE from `dsv3 train-tokenizer`, model `scripts/kjv/config.json`, run
`scripts/kjv/run.json`, seed 1). Training text: all books but Philippians, Colossians, Titus,
Philemon and Jude, which are the held-out set; one verse per line under "Book N" chapter
headings, verse numbers dropped. Loss curves: `loss.svg` (train and held-out).

## Figures

MD
  python3 scripts/kjv/training_report.py "$run/metrics.jsonl" "$ship.new/config.json" "$wall" "$ship.new/inspect.txt"
  echo
  echo "## Samples"
  echo
  echo "Greedy, \`dsv3 generate --prompt \"And God said\" --max-tokens 60 --temperature 0\`:"
  echo; echo '```'; echo "And God said$(gen --prompt "And God said" --max-tokens 60 --temperature 0)"; echo '```'; echo
  echo "Sampled, \`--prompt \"In the beginning\" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 1\`:"
  echo; echo '```'; echo "In the beginning$(gen --prompt "In the beginning" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 1)"; echo '```'; echo
  echo "Sampled, \`--prompt \"The LORD is my shepherd\" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 2\`:"
  echo; echo '```'; echo "The LORD is my shepherd$(gen --prompt "The LORD is my shepherd" --max-tokens 60 --temperature 0.8 --top-p 0.95 --seed 2)"; echo '```'; echo
  echo "Chat (\`dsv3 chat\`, greedy), asked \"Who made the heaven and the earth?\":"
  echo; echo '```'; printf 'Who made the heaven and the earth?\n' | "$dsv3" chat --model "$ship.new" --max-tokens 40 --temperature 0 2>/dev/null | tail -n +2; echo '```'
} > "$ship.new/TRAINING.md"
rm "$ship.new/inspect.txt"
rm -rf "$ship"
mv "$ship.new" "$ship"
du -sh "$ship"
