#!/usr/bin/python3
"""Scores models of the post-training pipeline (scripts/kjv/post_train.sh) the same way:

- exact match on the held-out instruction questions (`dsv3 eval --generation`, greedy, the
  chat template written into each prompt), overall and per question kind;
- perplexity on the held-out books (`dsv3 eval --perplexity`, the 32 windows of 257 tokens
  default-model/TRAINING.md reports), which post-training must not worsen by more than 5%;
- answer form: the share of held-out "which book and chapter" and "how many" questions
  answered as "Book N" or a number, right or wrong (what post-training teaches first);
- MTP draft acceptance: `dsv3 generate --chat --draft 1 --temperature 0` on held-out
  questions, the share of drafted tokens the main model accepted.

    DSV3=build/dsv3 scripts/kjv/post_train_eval.py --out results.json NAME=DIR [NAME=DIR ...]
    scripts/kjv/post_train_eval.py --table results.json [more.json ...]

Prints a markdown table (perplexity also relative to the model named "base", when scored)
and writes the figures as JSON; --table prints the table of results already written.
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


THREADS = []  # ["--threads", "N"] when given


def run(args):
    return subprocess.run(args[:2] + THREADS + args[2:], check=True, capture_output=True, text=True)


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


FORMS = {"locate": r"^(?:[1-3] )?[A-Z][a-z]+(?: of [A-Z][a-z]+)? [0-9]+$", "count": r"^[0-9]+$"}


def answer_form(model, tasks, tmp):
    """Share of locate and count questions answered in their form (regex scoring)."""
    path = os.path.join(tmp, "forms.jsonl")
    n = 0
    with open(path, "w") as f:
        for line in open(tasks):
            it = json.loads(line)
            rx = FORMS.get(kind_of(it["prompt"]))
            if rx:
                f.write(json.dumps({"prompt": it["prompt"], "regex": rx, "stop": it.get("stop", ["\n"])},
                                   ensure_ascii=False) + "\n")
                n += 1
    js = os.path.join(tmp, "forms.json")
    run([DSV3, "eval", "--model", model, "--generation", path, "--max-tokens", "64", "--json", js])
    m = json.load(open(js))
    return {"items": n, "share": m["tasks"][0]["metrics"]["exact_match"]}


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


def table(results):
    kinds = sorted({k for r in results.values() for k in r["exact_match"] if k != "all"})
    base = results.get("base", {}).get("perplexity")
    lines = ["| model | exact match (all) | " + " | ".join(kinds) +
             " | answer form | held-out perplexity | MTP acceptance |",
             "|---" * (len(kinds) + 5) + "|"]
    for name, r in results.items():
        em = r["exact_match"]
        ppl = f"{r['perplexity']:.2f}"
        if base and name != "base":
            ppl += f" ({100 * (r['perplexity'] / base - 1):+.1f}%)"
        lines.append(f"| {name} | {100 * em['all']['exact_match']:.1f}% of {em['all']['items']} | " +
                     " | ".join(f"{100 * em[k]['exact_match']:.1f}%" if k in em else "-" for k in kinds) +
                     (f" | {100 * r['answer_form']['share']:.0f}%" if "answer_form" in r else " | -") +
                     f" | {ppl} | {100 * r['mtp_acceptance']:.0f}% |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--tasks", default=f"{WORK}/sft/heldout_tasks.jsonl")
    ap.add_argument("--table", action="store_true", help="print the table of the result files given")
    ap.add_argument("--threads", type=int, help="threads for dsv3 (default: its own)")
    ap.add_argument("models", nargs="+", help="NAME=DIR (or result files with --table)")
    a = ap.parse_args()
    if a.table:
        results = {}
        for path in a.models:
            results.update(json.load(open(path)))
        print(table(results))
        return
    if not a.out:
        ap.error("--out is required when scoring models")
    if a.threads:
        THREADS.extend(["--threads", str(a.threads)])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.models:
            name, model = spec.split("=", 1)
            if not os.path.exists(os.path.join(model, "config.json")):
                print(f"{name}: {model} has no config.json, skipped", file=sys.stderr)
                continue
            results[name] = {"model": model, "exact_match": exact_match(model, a.tasks, tmp),
                             "answer_form": answer_form(model, a.tasks, tmp),
                             "perplexity": perplexity(model, tmp), "mtp_acceptance": mtp_acceptance(model, a.tasks)}
            print(f"{name}: {json.dumps(results[name])}", file=sys.stderr)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)
    print(table(results))


if __name__ == "__main__":
    main()
