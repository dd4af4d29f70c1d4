#!/bin/bash
# Speculative decoding on a KJV model (MODEL, default the shipped default-model; docs/
# speculation.md measured the base model, MODEL=build/kjv/run/hf), over prompts from the books
# it never saw in training: the first 8 words of every 8th verse of the held-out books, 64
# greedy tokens each, without drafts, with --draft N and with --draft auto.
#   [MODEL=DIR] scripts/draft_prompts.sh [N] [extra dsv3 bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
DSV3=${DSV3:-build/dsv3}
n=${1:-1}
shift || true
work=build/kjv
if [ ! -f "$work/eval.txt" ]; then
  command -v bible >/dev/null || { echo "bible (Debian package bible-kjv) is missing: run scripts/setup.sh" >&2; exit 1; }
  mkdir -p "$work"
  bible "Gen1:1-Rev22:21" > "$work/kjv_raw.txt"
  python3 scripts/kjv/extract_kjv.py "$work/kjv_raw.txt" "$work/train.txt" "$work/eval.txt" \
    --eval-books "Philippians,Colossians,Titus,Philemon,Jude"
fi
# Chapter headings ("Philippians 1") are not verses.
grep -v -E '^([1-3] )?[A-Z][a-z]+ [0-9]+$' "$work/eval.txt" |
  awk 'NR % 8 == 1 { n = NF < 8 ? NF : 8; s = $1; for (i = 2; i <= n; i++) s = s " " $i; print s }' > "$work/draft_prompts.txt"
echo "$(wc -l < "$work/draft_prompts.txt") held-out prompts in $work/draft_prompts.txt" >&2
"$DSV3" bench --model "${MODEL:-default-model}" --prompt-tokens 32 --gen-tokens 64 --draft "$n" \
  --draft-prompts "$work/draft_prompts.txt" "$@"
