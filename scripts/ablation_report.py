#!/usr/bin/env python3
"""Tables for docs/ablations.md from the runs scripts/ablations.sh made: reads each run's
metrics.jsonl and summary line under the given folder and prints Markdown.
  python3 scripts/ablation_report.py build/ablations > docs/ablations/results.md"""
import json
import os
import re
import statistics
import sys


def load(folder, name):
    train, evals = [], []
    with open(os.path.join(folder, name, "metrics.jsonl")) as f:
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            (train if j.get("kind") == "train" else evals if j.get("kind") == "eval" else []).append(j)
    summary = open(os.path.join(folder, name + ".summary.txt")).read().strip()
    m = re.search(r"\(([0-9.]+) tokens/s\)", summary)
    mfu = re.search(r"MFU ([0-9.]+) of the ([0-9.]+) GFLOP/s ([^;]+) peak", summary)
    return {
        "train": train, "eval": evals, "tokens_per_s": float(m.group(1)) if m else float("nan"),
        "mfu": float(mfu.group(1)) if mfu else float("nan"),
        "peak": f"{float(mfu.group(2)):.0f} GFLOP/s {mfu.group(3)}" if mfu else "?",
    }


def smoothed(losses, n=10):
    out = []
    for i in range(len(losses)):
        w = losses[max(0, i - n + 1): i + 1]
        out.append(sum(w) / len(w))
    return out


def main():
    folder = sys.argv[1]
    runs = {n: load(folder, n) for n in
            ["fp32_seed1", "fp32_seed2", "fp32_seed3", "bf16", "fp8", "classic", "no_mtp"]
            if os.path.exists(os.path.join(folder, n, "metrics.jsonl"))}
    final = {n: r["eval"][-1]["eval_loss"] for n, r in runs.items() if r["eval"]}
    steps = runs["fp32_seed1"]["train"][-1]["step"]
    tokens = runs["fp32_seed1"]["train"][-1]["tokens"]
    print(f"Each run: {steps} steps, {tokens:,} training tokens, held-out loss over "
          f"{runs['fp32_seed1']['eval'][-1]['eval_tokens']:,} tokens of the five held-out books.\n")

    print("## FP8 and BF16 against FP32\n")
    seeds = [final[n] for n in ("fp32_seed1", "fp32_seed2", "fp32_seed3") if n in final]
    mean = statistics.mean(seeds)
    spread = (max(seeds) - min(seeds)) / mean
    print("| run | final held-out loss | vs fp32 seed 1 | vs fp32 3-seed mean |")
    print("|---|---|---|---|")
    base = final["fp32_seed1"]
    for n in ("fp32_seed1", "fp32_seed2", "fp32_seed3", "bf16", "fp8"):
        if n not in final:
            continue
        print(f"| {n} | {final[n]:.4f} | {100 * (final[n] - base) / base:+.3f}% | "
              f"{100 * (final[n] - mean) / mean:+.3f}% |")
    print(f"\nFP32 seed-to-seed spread (max - min over the mean): {100 * spread:.3f}%; "
          f"standard deviation {100 * statistics.stdev(seeds) / mean:.3f}% of the mean.")
    print()
    # Relative training-loss error over training, on 10-step means (the report's Figure 10 view).
    ref = smoothed([t["loss"] for t in runs["fp32_seed1"]["train"]])
    print("| run | mean relative train-loss error vs fp32 seed 1 (10-step means, 2nd half) | same vs bf16 |")
    print("|---|---|---|")
    b16 = smoothed([t["loss"] for t in runs["bf16"]["train"]]) if "bf16" in runs else None
    for n in ("fp32_seed2", "fp32_seed3", "bf16", "fp8"):
        if n not in runs:
            continue
        cur = smoothed([t["loss"] for t in runs[n]["train"]])
        half = len(cur) // 2
        rel = [abs(a - b) / b for a, b in zip(cur[half:], ref[half:])]
        vs_b = [abs(a - b) / b for a, b in zip(cur[half:], b16[half:])] if b16 and n != "bf16" else None
        print(f"| {n} | {100 * statistics.mean(rel):.3f}% | "
              f"{'' if vs_b is None else f'{100 * statistics.mean(vs_b):.3f}%'} |")

    if "classic" in runs:
        print("\n## Aux-loss-free balancing against the auxiliary loss\n")
        layers = len(runs["fp32_seed1"]["train"][-1]["maxvio"])
        # The MoE layers in order: the main model's, then the MTP block's.
        head = " | ".join(f"MoE layer {i + 1}" for i in range(layers - 1)) + " | MTP block"
        print(f"| balancing | final held-out loss | MaxVio, mean of the last 10 steps: {head} | mean over training |")
        print("|---|---|" + "---|" * layers + "---|")
        for n, label in (("fp32_seed1", "aux-loss-free (bias, gamma 0.01, alpha 1e-4)"),
                         ("classic", "auxiliary loss (alpha 0.01, no bias)")):
            tr = runs[n]["train"]
            last = [statistics.mean(t["maxvio"][i] for t in tr[-10:]) for i in range(layers)]
            over = statistics.mean(statistics.mean(t["maxvio"]) for t in tr)
            print(f"| {label} | {final[n]:.4f} | " + " | ".join(f"{v:.3f}" for v in last) + f" | {over:.3f} |")

    if "no_mtp" in runs:
        print("\n## The MTP objective on and off\n")
        print("| run | final held-out main-head loss | main-head accuracy | MTP head next-next-token accuracy |")
        print("|---|---|---|---|")
        for n, label in (("fp32_seed1", "MTP on (lambda 0.3, then 0.1)"), ("no_mtp", "MTP off (head untrained)")):
            e = runs[n]["eval"][-1]
            print(f"| {label} | {e['eval_loss']:.4f} | {100 * e.get('eval_accuracy', float('nan')):.2f}% | "
                  f"{100 * e.get('eval_mtp_accuracy', float('nan')):.2f}% |")


if __name__ == "__main__":
    main()
