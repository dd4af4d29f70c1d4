#!/usr/bin/env bash
# Ship the post-trained model into default-model/: its export, both loss curves, and a
# TRAINING.md with the post-training pipeline and its evaluation table, answers to held-out
# questions, and the base model's card (RUN/BASE.md from scripts/kjv/base_card.sh).
#   scripts/kjv/ship.sh BASE_RUN POST_RUN RESULTS.json WALL_SECONDS   (repository root; DSV3=binary)
# e.g. scripts/kjv/ship.sh build/kjv/run build/kjv/student_kd_replay build/kjv/post/results.json 2400
set -euo pipefail
base=$1
post=$2
results=$3
wall=$4
dsv3=${DSV3:-build/dsv3}
ship=default-model
heldout=build/kjv/sft/heldout_tasks.jsonl
for f in "$post/hf/config.json" "$base/BASE.md" "$base/loss.svg" "$results" "$heldout"; do
  [ -f "$f" ] || { echo "$f is missing (scripts/train_default_model.sh makes it)" >&2; exit 1; }
done

rm -rf "$ship.new"
mkdir -p "$ship.new"
cp "$post"/hf/* "$ship.new/"
cp "$post/loss.svg" "$ship.new/loss.svg"
cp "$base/loss.svg" "$ship.new/base_loss.svg"

# One held-out question of each kind, the first in the file: "question<TAB>answer" lines.
questions=$(python3 - "$heldout" <<'PY'
import json, sys
sys.path.insert(0, "scripts/kjv")
from post_train_eval import kind_of
seen = set()
for line in open(sys.argv[1]):
    it = json.loads(line)
    k = kind_of(it["prompt"])
    if k in seen:
        continue
    seen.add(k)
    q = it["prompt"].split("<｜User｜>", 1)[-1].split("<｜Assistant｜>")[0]
    print(f"{q}\t{it['targets'][0]}")
PY
)
{
  cat <<'MD'
# The default model: DeepSeek-V3, small, trained on the King James Bible and fine-tuned to answer questions about it

A DeepSeek-V3 architecture at toy scale (MLA with q-LoRA, one dense layer then DeepSeekMoE
layers with a shared expert and 16 routed experts under `noaux_tc` sigmoid routing with 4
groups, one MTP module, YaRN rope), built by `dsv3 train` the way DeepSeek-V3 was, at the
heart of it:
1. **pretrained** from scratch on the KJV text of the Debian package bible-kjv (all books but
   Philippians, Colossians, Titus, Philemon and Jude, the held-out set);
2. **post-trained**: supervised fine-tuning on 15,458 instruction conversations about the
   training books (`scripts/kjv/make_instructions.py`: recite a verse, continue a verse, find
   a verse's book and chapter, count verses or chapters, facts such as who begat whom), with
   logit distillation from a larger teacher (25.0 M parameters, pretrained and fine-tuned the
   same way) and half of the windows replaying the pretraining text, so the model keeps
   modelling text. The MTP objective stays on throughout, so speculative decoding works.

It answers in chat in the forms it was taught (a verse, a book and chapter, a number), but
with 8 M parameters it has learned few of the facts: see the exact-match column below. It
still continues KJV text as a base model does (`dsv3 generate`).

Reproduce: `scripts/train_default_model.sh` (pretraining about 25 minutes, post-training
`scripts/kjv/post_train.sh` about two hours on 2 cores). Loss curves: `loss.svg`
(post-training: train, held-out answers) and `base_loss.svg` (pretraining).

## Post-training

Every model of the pipeline, scored the same way by `scripts/kjv/post_train_eval.py`: greedy
exact match on 1,657 held-out questions (by kind), answer form (the share of the 619
"which book and chapter" and "how many" questions answered as "Book N" or a number, right or
wrong), perplexity on the held-out books (32 windows of 257 tokens, `dsv3 eval`, bf16
numerics; relative to the base model), and the share of MTP drafts accepted (`--draft 1`,
greedy, 40 held-out questions). The shipped model is `student_kd_replay`; the other rows are
the pipeline's base, teacher and whichever ablations were scored (docs/training.md, "The KJV
run").

MD
  python3 scripts/kjv/post_train_report.py "$results" "$post" "$wall"
  echo
  echo "## Answers"
  echo
  echo "Held-out questions, one of each kind (\`dsv3 generate --chat\`, greedy), with the answer the text gives:"
  echo
  while IFS=$'\t' read -r q a; do
    got=$("$dsv3" generate --model "$ship.new" --chat --prompt "$q" --max-tokens 60 --temperature 0 2>/dev/null)
    echo "- **Q:** $q"
    echo "  - **dsv3:** $got"
    echo "  - **text:** $a"
  done <<< "$questions"
  echo
  echo "Text, \`dsv3 generate --prompt \"And God said\" --max-tokens 60 --temperature 0\`:"
  echo; echo '```'; echo "And God said$("$dsv3" generate --model "$ship.new" --prompt "And God said" --max-tokens 60 --temperature 0 2>/dev/null)"; echo '```'
  echo
  cat "$base/BASE.md"
} > "$ship.new/TRAINING.md"
rm -rf "$ship"
mv "$ship.new" "$ship"
du -sh "$ship"
