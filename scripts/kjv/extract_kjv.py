#!/usr/bin/env python3
"""Turn `bible "Gen1:1-Rev22:21"` output (bible-kjv) into training text.

The bible program wraps verses at 80 columns and prefixes them with "  N "; a model trained
on that would spend capacity on line breaks and verse numbers. Output: per chapter a heading
line ("Genesis 1"), then one verse per line without its number, a blank line between
chapters. Books named in --eval-books go to the eval file, the rest to the train file.

usage: extract_kjv.py RAW TRAIN_OUT EVAL_OUT --eval-books "Philippians,Colossians"
"""
import argparse
import re
import sys

HEADING = re.compile(r"^((?:[1-3] )?[A-Z][A-Za-z ]*?) (\d+)$")
VERSE = re.compile(r"^  (\d+) (.*)$")


def parse(lines):
    """Yield (book, chapter, [verses]) in order."""
    book = chapter = None
    verses = []
    prev_blank = True
    for i, line in enumerate(lines):
        line = line.rstrip("\n")
        nxt_blank = i + 1 >= len(lines) or lines[i + 1].strip() == ""
        m = HEADING.match(line)
        if m and prev_blank and nxt_blank:
            if book is not None:
                yield book, chapter, verses
            book, chapter, verses = m.group(1), int(m.group(2)), []
        elif (v := VERSE.match(line)):
            if book is None:
                sys.exit(f"verse before any chapter heading: {line!r}")
            if int(v.group(1)) != len(verses) + 1:
                sys.exit(f"{book} {chapter}: verse {v.group(1)} out of order")
            verses.append(v.group(2).strip())
        elif line.strip():
            if not verses:
                sys.exit(f"continuation line before any verse: {line!r}")
            verses[-1] += " " + line.strip()
        prev_blank = line.strip() == ""
    if book is not None:
        yield book, chapter, verses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("train_out")
    ap.add_argument("eval_out")
    ap.add_argument("--eval-books", default="")
    a = ap.parse_args()
    held = {b.strip() for b in a.eval_books.split(",") if b.strip()}
    with open(a.raw, encoding="utf-8") as f:
        lines = f.readlines()
    out = {True: [], False: []}
    seen_books, chapters, verse_count = set(), 0, 0
    for book, chapter, verses in parse(lines):
        seen_books.add(book)
        chapters += 1
        verse_count += len(verses)
        out[book in held].append(f"{book} {chapter}\n" + "".join(v + "\n" for v in verses))
    missing = held - seen_books
    if missing:
        sys.exit(f"eval books not found: {sorted(missing)}")
    for path, chunks in ((a.train_out, out[False]), (a.eval_out, out[True])):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(chunks))
    print(f"{len(seen_books)} books, {chapters} chapters, {verse_count} verses; "
          f"{len(out[True])} chapters held out", file=sys.stderr)


if __name__ == "__main__":
    main()
