#!/usr/bin/env python3
"""Evaluation tasks for the KJV model from the books it never saw in training (docs/eval.md).

  scripts/kjv/make_eval_tasks.py build/kjv/eval.txt build/kjv/tasks

writes, deterministically:
  cloze.jsonl         multiple choice: a verse cut before one of its words (4+ letters, in the
                      second half), the true word and three others from the held-out text;
  continuation.jsonl  generation: the first half of a verse; right when the answer goes on with
                      the verse's next word (a regex), or is exactly the rest of it.
"""
import json
import random
import re
import sys
from pathlib import Path

HEADING = re.compile(r"^([1-3] )?[A-Z][a-z]+ [0-9]+$")


def verses(path):
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not HEADING.match(line):
            yield line


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    vs = list(verses(src))
    if not vs:
        sys.exit(f"{src} holds no verses")
    rng = random.Random(20261206)
    vocab = sorted({w for v in vs for w in re.findall(r"[A-Za-z]{4,}", v)})
    cloze, cont = [], []
    for i, v in enumerate(vs):
        words = v.split(" ")
        if len(words) < 8:
            continue
        if i % 3 == 0:
            spots = [k for k in range(len(words) // 2, len(words)) if re.fullmatch(r"[A-Za-z]{4,}", words[k])]
            if spots:
                k = rng.choice(spots)
                right = words[k]
                others = rng.sample([w for w in vocab if w.lower() != right.lower()], 3)
                choices = others[:]
                answer = rng.randrange(4)
                choices.insert(answer, right)
                cloze.append({"context": " ".join(words[:k]), "choices": [" " + c for c in choices], "answer": answer})
        elif i % 3 == 1:
            half = len(words) // 2
            start = r"^\s*" + r"\s+".join(re.escape(w) for w in words[half:half + 1]) + r"\b"
            cont.append({"prompt": " ".join(words[:half]), "target": " " + " ".join(words[half:]), "regex": start,
                         "stop": ["\n"]})
    for name, items in (("cloze.jsonl", cloze), ("continuation.jsonl", cont)):
        with open(out / name, "w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
        print(f"{out / name}: {len(items)} items")


if __name__ == "__main__":
    main()
