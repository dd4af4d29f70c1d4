#!/usr/bin/env bash
# The training ablations of docs/ablations.md, on the default model's config and data (the
# KJV text, scripts/train_default_model.sh), each run the same tokens, data and seed unless
# the ablation is the seed: fp32 with three seeds (the noise floor), bf16 and fp8 precision,
# classic auxiliary-loss balancing instead of aux-loss-free, and no MTP objective. Then the
# plots (dsv3 plot) and the tables (scripts/ablation_report.py) into docs/ablations/.
#   scripts/ablations.sh [STEPS] [THREADS]     (DSV3=path/to/dsv3 to use another binary)
# STEPS defaults to 120 (491,520 tokens per run; about 30 minutes for all seven on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-120}
threads=${2:-2}
export DSV3=${DSV3:-build/dsv3}
work=build/ablations
out=docs/ablations
[ -x "$DSV3" ] || { echo "$DSV3 is missing: build it first (README)" >&2; exit 1; }
data=build/kjv
if [ ! -s "$data/train.txt" ] || [ ! -s "$data/eval.txt" ]; then
  command -v bible >/dev/null || { echo "bible (Debian package bible-kjv) is missing: run scripts/setup.sh" >&2; exit 1; }
  mkdir -p "$data"
  bible "Gen1:1-Rev22:21" > "$data/kjv_raw.txt"
  python3 scripts/kjv/extract_kjv.py "$data/kjv_raw.txt" "$data/train.txt" "$data/eval.txt" \
    --eval-books "Philippians,Colossians,Titus,Philemon,Jude"
fi
rm -rf "$work"
mkdir -p "$work" "$out"

# run NAME JSON-OVERRIDES: the shared config with NAME's changes merged in.
run() {
  local name=$1 extra=$2
  python3 - "$work/$name.json" "$extra" "$steps" "$PWD" <<'PY'
import json, sys
path, extra, steps, root = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = {
  "model": {"type": "deepseek_v3", "config": f"{root}/scripts/kjv/config.json"},
  "data": {"tokenizer": f"{root}/default-model", "train_files": [f"{root}/build/kjv/train.txt"],
           "eval_files": [f"{root}/build/kjv/eval.txt"], "eval_sequences": 32},
  "seq_len": 256, "batch_size": 16, "steps": steps,
  "optimizer": {"lr": 0.002, "weight_decay": 0.1, "grad_clip": 1.0},
  "schedule": {"type": "cosine", "warmup_steps": max(1, steps // 10), "min_lr_ratio": 0.1},
  "init_std": 0.02, "seed": 1, "precision": "fp32",
  "mtp": {"weight": 0.3, "later_weight": 0.1, "switch_at": 0.676},
  "balance": {"mode": "aux_free", "alpha": 1e-4, "gamma": 0.01},
  "eval_interval": max(1, steps // 8), "log_interval": 1, "export_dtype": "none",
  "out_dir": f"{root}/build/ablations/" + path.rsplit("/", 1)[1][:-5],
}
def merge(a, b):
  for k, v in b.items():
    if isinstance(v, dict): merge(a.setdefault(k, {}), v)
    else: a[k] = v
merge(cfg, extra)
json.dump(cfg, open(path, "w"), indent=2)
PY
  echo "== $name" >&2
  "$DSV3" train --config "$work/$name.json" --threads "$threads" -q --profile 2> "$work/$name.profile.txt" | tee "$work/$name.summary.txt"
}

run fp32_seed1 '{}'
run fp32_seed2 '{"seed": 2}'
run fp32_seed3 '{"seed": 3}'
run bf16 '{"precision": "bf16"}'
run fp8 '{"precision": "fp8"}'
run classic '{"balance": {"mode": "classic", "classic_alpha": 0.01}}'
run no_mtp '{"mtp": {"weight": 0, "later_weight": 0}}'

m() { echo "$work/$1/metrics.jsonl=$2"; }
"$DSV3" plot --out "$out/precision_eval_loss.svg" --field eval_loss --title "held-out loss: fp32 (3 seeds), bf16, fp8" \
  "$(m fp32_seed1 'fp32 seed 1')" "$(m fp32_seed2 'fp32 seed 2')" "$(m fp32_seed3 'fp32 seed 3')" "$(m bf16 bf16)" "$(m fp8 fp8)"
"$DSV3" plot --out "$out/precision_train_loss.svg" --field loss --smooth 10 --title "training loss (mean of 10 steps)" \
  "$(m fp32_seed1 'fp32 seed 1')" "$(m fp32_seed2 'fp32 seed 2')" "$(m fp32_seed3 'fp32 seed 3')" "$(m bf16 bf16)" "$(m fp8 fp8)"
"$DSV3" plot --out "$out/balance_maxvio.svg" --field maxvio --smooth 5 --title "MaxVio (mean over MoE layers, 5 steps)" \
  "$(m fp32_seed1 'aux-loss-free')" "$(m classic 'auxiliary loss')"
"$DSV3" plot --out "$out/balance_eval_loss.svg" --field eval_loss --title "held-out loss: aux-loss-free vs auxiliary loss" \
  "$(m fp32_seed1 'aux-loss-free')" "$(m classic 'auxiliary loss')"
"$DSV3" plot --out "$out/mtp_eval_loss.svg" --field eval_loss --title "held-out main-head loss: MTP objective on / off" \
  "$(m fp32_seed1 'MTP on')" "$(m no_mtp 'MTP off')"
"$DSV3" plot --out "$out/mtp_accuracy.svg" --field eval_mtp_accuracy --title "held-out next-next-token accuracy of the MTP head" \
  "$(m fp32_seed1 'MTP on')" "$(m no_mtp 'MTP off (head untrained)')"
python3 scripts/ablation_report.py "$work" > "$out/results.md"
echo "plots and tables in $out" >&2
