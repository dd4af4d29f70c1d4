#!/usr/bin/env bash
# Post-training of the default model, as DeepSeek-V3's pipeline does it at its heart (report
# §5: supervised fine-tuning on instruction data, knowledge distilled from a stronger model):
#   1. instruction data about the KJV text, from the training books only, a tenth of the
#      questions held out (scripts/kjv/make_instructions.py);
#   2. a larger teacher (scripts/kjv/teacher_config.json: 6 layers, hidden 384) pretrained
#      on the same text for longer, then fine-tuned on the instructions;
#   3. the student (the base model, build/kjv/run/hf) fine-tuned on the instructions four ways,
#      the MTP objective kept in all: SFT alone; SFT with logit distillation from the teacher
#      (distill weight 0.5, T 2); both again with half of the windows replaying the
#      pretraining text (data.replay) for twice the steps. The last one is shipped;
#   4. every model scored the same way (scripts/kjv/post_train_eval.py): exact match on the
#      held-out questions, perplexity on the held-out books, MTP draft acceptance.
# Every run trains in bf16 (precision in the configs). Results and wall times go to
# build/kjv/post/ (results.json, wall.txt). About two hours on an idle 2-core machine (the
# teacher alone about 40 minutes). scripts/train_default_model.sh runs it, then ships the result.
#   scripts/kjv/post_train.sh [THREADS]     (DSV3=path/to/dsv3 to use another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
DSV3=${DSV3:-build/dsv3}
work=build/kjv
out=$work/post
[ -f "$work/train.txt" ] || { echo "$work/train.txt is missing: run scripts/train_default_model.sh (its first steps) first" >&2; exit 1; }
[ -f "$work/run/hf/config.json" ] || { echo "$work/run/hf (the base model) is missing: run scripts/train_default_model.sh" >&2; exit 1; }
for run in teacher teacher_sft student_sft student_kd student_sft_replay student_kd_replay; do
  [ -e "$work/$run/state" ] && { echo "$work/$run already holds a run; remove it to start over" >&2; exit 1; }
done
mkdir -p "$out"

python3 scripts/kjv/make_instructions.py --train "$work/train.txt" --out-dir "$work/sft" --self-check

timed() {  # timed NAME CONFIG: trains and records the wall time
  local t0; t0=$(date +%s)
  "$DSV3" train --config "$2" --threads "$threads"
  echo "$1 $(( $(date +%s) - t0 ))" >> "$out/wall.txt"
}
: > "$out/wall.txt"
timed teacher scripts/kjv/teacher_run.json
timed teacher_sft scripts/kjv/sft_teacher.json
timed student_sft scripts/kjv/sft_student.json
timed student_kd scripts/kjv/kd_student.json
timed student_sft_replay scripts/kjv/sft_student_replay.json
timed student_kd_replay scripts/kjv/kd_student_replay.json

DSV3="$DSV3" python3 scripts/kjv/post_train_eval.py --out "$out/results.json" \
  base=$work/run/hf teacher=$work/teacher/hf teacher_sft=$work/teacher_sft/hf \
  student_sft=$work/student_sft/hf student_kd=$work/student_kd/hf \
  student_sft_replay=$work/student_sft_replay/hf student_kd_replay=$work/student_kd_replay/hf
