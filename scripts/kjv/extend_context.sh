#!/usr/bin/env bash
# Context extension of the base model (build/kjv/run, before post-training) as DeepSeek-V3's report does it (§4.3: two stages
# of YaRN training with the same YaRN settings, 4K -> 32K -> 128K), at this model's scale:
# 256 -> 2K -> 8K tokens, YaRN factor 32 over the original 256 positions, half of the
# training windows turned into passkey examples (data.passkey_fraction). The base model
# never saw the task, so a first stage teaches it at 512 tokens (cheap windows, the same
# YaRN settings) before the two extension stages. Then the passkey grid and held-out
# perplexity before and after, into build/kjv/extend/.
# About 35 minutes of training on 2 cores; the result is not the shipped default.
#   scripts/kjv/extend_context.sh [THREADS]     (DSV3=path/to/dsv3 to use another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
DSV3=${DSV3:-build/dsv3}
work=build/kjv
out=$work/extend
[ -f "$work/train.txt" ] || { echo "$work/train.txt is missing: run scripts/train_default_model.sh (its first steps) first" >&2; exit 1; }
[ -f "$work/run/hf/config.json" ] || { echo "$work/run/hf (the base model) is missing: run scripts/train_default_model.sh first" >&2; exit 1; }
for stage in passkey_512 extend_2k extend_8k; do
  [ -e "$work/$stage/state" ] && { echo "$work/$stage already holds a run; remove it to start over" >&2; exit 1; }
done
mkdir -p "$out"

t0=$(date +%s)
"$DSV3" train --config scripts/kjv/passkey_512.json --threads "$threads"
t1=$(date +%s)
"$DSV3" train --config scripts/kjv/extend_2k.json --threads "$threads"
t2=$(date +%s)
"$DSV3" train --config scripts/kjv/extend_8k.json --threads "$threads"
t3=$(date +%s)
echo "passkey at 512: $((t1 - t0)) s; stage 1 (2K): $((t2 - t1)) s; stage 2 (8K): $((t3 - t2)) s" | tee "$out/wall.txt"

# Evaluation: the same keys for every model (the grid's seed is fixed).
lengths=256,512,1024,2048,4096,8000
for m in "$work/run/hf" "$work/passkey_512/hf" "$work/extend_2k/hf" "$work/extend_8k/hf"; do
  name=$(basename "$(dirname "$m")")
  [ "$name" = run ] && name=base
  "$DSV3" eval --model "$m" --threads "$threads" --ctx-size 8192 \
    --passkey "$lengths" --passkey-svg "$out/passkey_$name.svg" \
    --perplexity "$work/eval.txt" --window 256 \
    --json "$out/eval_$name.json" | tee "$out/eval_$name.txt"
done
