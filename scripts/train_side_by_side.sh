#!/usr/bin/env bash
# dsv3 train against a PyTorch fp32 training step of the same model (scripts/torch_train_bench.py),
# one after the other on the same machine: default-model config, batch 16 x 256, 2 threads.
# PyTorch runs twice: with the BLAS Debian's python3-torch uses by default (the reference
# libblas3), and with OpenBLAS (libopenblas0-pthread, fetched with apt-get download into
# build/openblas and put first on LD_LIBRARY_PATH for that run only; nothing is installed).
#   scripts/train_side_by_side.sh [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-6}
threads=${2:-2}
DSV3=${DSV3:-build/dsv3}
work=build/side_by_side
mkdir -p "$work"
[ -s build/kjv/train.txt ] || { echo "build/kjv/train.txt is missing: run scripts/ablations.sh or scripts/train_default_model.sh once" >&2; exit 1; }

for precision in fp32 bf16 fp8; do
  cat > "$work/run_$precision.json" <<JSON
{"model": {"type": "deepseek_v3", "config": "$PWD/scripts/kjv/config.json"},
 "data": {"tokenizer": "$PWD/default-model", "train_files": ["$PWD/build/kjv/train.txt"], "eval_sequences": 0},
 "seq_len": 256, "batch_size": 16, "steps": $steps, "optimizer": {"lr": 0.002}, "init_std": 0.02,
 "precision": "$precision", "export_dtype": "none", "out_dir": "$PWD/$work/out_$precision"}
JSON
  rm -rf "$work/out_$precision"
  echo "dsv3 $precision: $("$DSV3" train --config "$work/run_$precision.json" --threads "$threads" -q)"
done

blas=build/openblas
if [ ! -e "$blas/lib/libblas.so.3" ]; then
  mkdir -p "$blas"
  (cd "$blas" && apt-get download libopenblas0-pthread >/dev/null 2>&1 && dpkg -x libopenblas0-pthread_*.deb root) || true
  lib=$(find "$blas/root" -path "*openblas-pthread/libblas.so.3" 2>/dev/null | head -1)
  [ -n "$lib" ] && mkdir -p "$blas/lib" && cp -L "$(dirname "$lib")"/*.so* "$blas/lib/"
fi
echo "pytorch, Debian default BLAS: $(/usr/bin/python3 scripts/torch_train_bench.py --config scripts/kjv/config.json --steps 3 --threads "$threads")"
if [ -e "$blas/lib/libblas.so.3" ]; then
  echo "pytorch, OpenBLAS: $(OPENBLAS_NUM_THREADS=$threads LD_LIBRARY_PATH=$PWD/$blas/lib /usr/bin/python3 scripts/torch_train_bench.py --config scripts/kjv/config.json --steps "$steps" --threads "$threads")"
else
  echo "pytorch, OpenBLAS: skipped (apt-get download libopenblas0-pthread failed)"
fi
