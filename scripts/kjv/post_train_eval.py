#!/usr/bin/python3
"""Scores models of the post-training pipeline (scripts/kjv/post_train.sh) the same way:

- exact match on the held-out instruction questions (`dsv3 eval --generation`, greedy, the
  chat template written into each prompt), overall and per question kind;
- perplexity on the held-out books (`dsv3 eval --perplexity`, the 32 windows of 257 tokens
  default-model/TRAINING.md reports), which post-training must not worsen by more than 5%;
- MTP draft acceptance: `dsv3 generate --chat --draft 1 --temperature 0` on held-out
  questions, the share of drafted tokens the main model accepted.

    DSV3=build/dsv3 scripts/kjv/post_train_eval.py --out results.json NAME=DIR [NAME=DIR ...]

Prints a markdown table and writes the figures as JSON.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

DSV3 = os.environ.get("DSV3", "build/dsv3")
WORK = "build/kjv"


def kind_of(prompt):
    """The question kind of a held-out prompt (scripts/kjv/make_instructions.py's phrasings)."""
    q = prompt.split("<｜User｜>", 1)[-1]
    if q.startswith(("How many verses", "How many chapters", "Count the")):
        return "count"
    if "book and chapter" in q or q.startswith("Where is this verse"):
        return "locate"
    if q.startswith(("Continue", "Give the verse that comes after", "What is the next verse", "Which verse follows")):
        return "continue"
    if re.search(r"\d+:\d+", q):
        return "recite"
    return "fact"


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


def exact_match(model, tasks, tmp):
    """Overall and per-kind exact match (one dsv3 eval run per kind)."""
    items = [json.loads(l) for l in open(tasks)]
    by_kind = {}
    for it in items:
        by_kind.setdefault(kind_of(it["prompt"]), []).append(it)
    res = {}
    total_hits = 0
    for kind, its in sorted(by_kind.items()):
        path = os.path.join(tmp, f"{kind}.jsonl")
        with open(path, "w") as f:
            for it in its:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
        js = os.path.join(tmp, f"{kind}.json")
        run([DSV3, "eval", "--model", model, "--generation", path, "--max-tokens", "64", "--json", js])
        m = json.load(open(js))
        em = next(v for t in m["tasks"] for k, v in t["metrics"].items() if k == "exact_match")
        res[kind] = {"items": len(its), "exact_match": em}
        total_hits += em * len(its)
    res["all"] = {"items": len(items), "exact_match": total_hits / len(items)}
    return res


def perplexity(model, tmp):
    js = os.path.join(tmp, "ppl.json")
    run([DSV3, "eval", "--model", model, "--perplexity", f"{WORK}/eval.txt", "--window", "257", "--max-windows", "32",
         "--json", js])
    m = json.load(open(js))
    return next(v for t in m["tasks"] for k, v in t["metrics"].items() if k == "perplexity")


def mtp_acceptance(model, tasks, n=40):
    drafted = accepted = 0
    for line in list(open(tasks))[:n]:
        q = json.loads(line)["prompt"].split("<｜User｜>", 1)[-1].split("<｜Assistant｜>")[0]
        r = run([DSV3, "generate", "--model", model, "--chat", "--prompt", q, "--draft", "1", "--temperature", "0",
                 "--max-tokens", "40"])
        m = re.search(r"drafts accepted (\d+)% .*?over (\d+) verify steps", r.stderr)
        if m:
            steps = int(m.group(2))
            drafted += steps
            accepted += round(int(m.group(1)) * steps / 100)
    return accepted / drafted if drafted else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tasks", default=f"{WORK}/sft/heldout_tasks.jsonl")
    ap.add_argument("models", nargs="+", help="NAME=DIR")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.models:
            name, model = spec.split("=", 1)
            if not os.path.exists(os.path.join(model, "config.json")):
                print(f"{name}: {model} has no config.json, skipped", file=sys.stderr)
                continue
            results[name] = {"model": model, "exact_match": exact_match(model, a.tasks, tmp),
                             "perplexity": perplexity(model, tmp), "mtp_acceptance": mtp_acceptance(model, a.tasks)}
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)
    kinds = sorted({k for r in results.values() for k in r["exact_match"] if k != "all"})
    print("| model | exact match (all) | " + " | ".join(kinds) + " | held-out perplexity | MTP acceptance |")
    print("|---" * (len(kinds) + 4) + "|")
    for name, r in results.items():
        em = r["exact_match"]
        print(f"| {name} | {100 * em['all']['exact_match']:.1f}% of {em['all']['items']} | " +
              " | ".join(f"{100 * em[k]['exact_match']:.1f}%" if k in em else "-" for k in kinds) +
              f" | {r['perplexity']:.2f} | {100 * r['mtp_acceptance']:.0f}% |")


if __name__ == "__main__":
    main()
