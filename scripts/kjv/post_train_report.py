#!/usr/bin/python3
"""The post-training section of default-model/TRAINING.md: the evaluation table of every model
of the pipeline (scripts/kjv/post_train_eval.py's results) and the shipped run's own figures
(its run.json and metrics.jsonl).

    scripts/kjv/post_train_report.py RESULTS.json RUN_DIR WALL_SECONDS
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from post_train_eval import table  # noqa: E402


def main():
    results_path, run_dir, wall = sys.argv[1], sys.argv[2], float(sys.argv[3])
    results = json.load(open(results_path))
    run = json.load(open(os.path.join(run_dir, "run.json")))
    lines = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    train = [l for l in lines if l["kind"] == "train"]
    evals = [l for l in lines if l["kind"] == "eval"]
    steps, batch, seq = train[-1]["step"], run["batch_size"], run["seq_len"]
    replay = run["data"].get("replay", {})
    distill = run.get("distill", {})
    print(table(results))
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| steps x batch | {steps} x {batch} windows of {seq + 1} tokens |")
    if replay:
        print(f"| text replay | {100 * replay['share']:.0f}% of the windows from the training books' text |")
    if distill.get("teacher"):
        print(f"| distillation | weight {distill['weight']}, temperature {distill['temperature']}, "
              f"teacher `{os.path.relpath(distill['teacher'], os.getcwd())}` |")
    print(f"| MTP loss weight | {run['mtp']['weight']} |")
    print(f"| learning rate | {run['optimizer']['lr']:g}, {run['schedule']['type']} |")
    print(f"| wall time | {wall / 60:.1f} min ({wall:.0f} s) |")
    last = evals[-1]
    print(f"| held-out answers: loss, accuracy (step {last['step']}) | {last['eval_loss']:.3f}, "
          f"{100 * last.get('eval_accuracy', float('nan')):.1f}% of {last['eval_tokens']} tokens |")
    if "eval_mtp_accuracy" in last:
        print(f"| MTP head on held-out answers (next-next token) | {100 * last['eval_mtp_accuracy']:.1f}% |")
    if "eval_text_loss" in last:
        print(f"| held-out books: loss, perplexity (fp32) | {last['eval_text_loss']:.3f}, "
              f"{last['eval_text_perplexity']:.2f} |")
    print()
    print("Evaluations during the run:")
    print()
    print("| step | answer loss | answer accuracy | held-out text perplexity |")
    print("|---|---|---|---|")
    for e in evals:
        text = f"{e['eval_text_perplexity']:.2f}" if "eval_text_perplexity" in e else "-"
        print(f"| {e['step']} | {e['eval_loss']:.3f} | {100 * e.get('eval_accuracy', float('nan')):.1f}% | {text} |")


if __name__ == "__main__":
    main()
