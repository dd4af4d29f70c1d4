#!/usr/bin/env python3
"""Chat fine-tuning data and a held-out question set from the KJV training text (issue 15).

  scripts/kjv/make_instructions.py --train build/kjv/train.txt --out-dir build/kjv/sft [--self-check]

Reads only the training books (the text scripts/kjv/extract_kjv.py writes: a heading line such
as "Genesis 1", then one verse per line, verse numbers implicit by order, a blank line between
chapters) and writes, deterministically for a given --seed:

  train.jsonl          {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]} per line,
                       the chat data `dsv3 train` reads with data.format "chat";
  heldout.jsonl        the same format for about a tenth of the questions, none of them in train;
  heldout_tasks.jsonl  those questions as a `dsv3 eval --generation` task file (docs/eval.md):
                       the prompt rendered as the model's chat template renders a user turn,
                       right when the greedy answer is exactly the expected one.

Kinds of question (every answer is a short string the text fixes exactly):
  recite    "Recite Genesis 1:1." -> the verse (verses of at most --max-words words);
  continue  "Continue: <verse>" -> the next verse of the same chapter (both short, the prompt's
            words occurring once in the whole text, whatever the punctuation, so that "next"
            has one meaning);
  locate    'Which book and chapter says: "<verse>"?' -> "Genesis 1" (words occurring once);
  fact      who begat whom, whose son or daughter, life spans, ages, reigns, kings of what,
            mined with narrow patterns and kept only when every statement of the text agrees;
  count     verses in a chapter, chapters in a book.
Each kind has a main phrasing and a few others (--variant-share of the items) so that the model
learns the task rather than one template; each fact is also asked in --fact-phrasings wordings
in train.jsonl, as the text supports only a few hundred. Held out are whole items (a fact in
every wording; a verse's recite, locate and continue-to-it questions together), a tenth of
each of verse, fact and count questions.

--self-check re-derives every written answer from the text by a separate route and checks the
split and the task file; --check-only does that for files written earlier.
"""
import argparse
import collections
import json
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The books extract_kjv.py holds out for evaluation (scripts/train_default_model.sh). None may
# appear in the input: a wrong --train must not leak them into fine-tuning.
HELD_OUT_BOOKS = ("Philippians", "Colossians", "Titus", "Philemon", "Jude")

# DeepSeek-V3's chat template (tokenizer_config.json of the default model) renders a user turn
# waiting for an answer as BOS, "<｜User｜>", the content, "<｜Assistant｜>". `dsv3 eval` adds BOS
# itself (the tokenizer's add_bos_token) and recognises special tokens in the prompt, so the
# task prompt is the rest; it then matches what the trainer renders for these conversations.
USER, ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
EOS = "<｜end▁of▁sentence｜>"
# Generation ends at EOS anyway; the strings stop a model that writes past its answer instead
# (a newline: no answer has one; a new user turn; EOS as text, should a server spell it out).
STOP = ["\n", USER, EOS]

HEADING = re.compile(r"^((?:[1-3] )?[A-Z][A-Za-z ]*?) (\d+)$")
NAME = r"[A-Z][a-z]+"

# Number words as the KJV writes ages and spans ("an hundred and five", "threescore and ten",
# "two and twenty"); longest first so that "fourscore" is not read as "four".
_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                     "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCORES = {"score": 20, "threescore": 60, "fourscore": 80}
_NUM_WORDS = sorted([*_UNITS, *_TENS, *_SCORES, "hundred", "thousand", "an", "a", "and"], key=len, reverse=True)
_FIRST = [w for w in _NUM_WORDS if w not in ("and", "zero")]
NUM = rf"(?:{'|'.join(_FIRST)})\b(?: (?:{'|'.join(_NUM_WORDS)})\b)*"
NUM_CAP = rf"(?:{'|'.join(w.capitalize() for w in _FIRST)})\b(?: (?:{'|'.join(_NUM_WORDS)})\b)*"
DURATION = rf"{NUM} (?:years|months|days)(?: and {NUM} (?:years|months|days))*"


def number_value(words):
    """The value of a KJV number phrase, to tell "one and forty" and "forty and one" agree."""
    total = current = 0
    for w in words.lower().split():
        if w in ("a", "an"):
            current += 1
        elif w == "and":
            continue
        elif w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "score":  # "three score": multiplies what came before
            current = (current or 1) * 20
        elif w in _SCORES:
            current += _SCORES[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w == "thousand":
            total += (current or 1) * 1000
            current = 0
        else:
            raise ValueError(f"not a number word: {w!r} in {words!r}")
    return total + current


def duration_value(text):
    """(years, months, days) of "three months and ten days": spans agree when these do."""
    out = [0, 0, 0]
    for num, unit in re.findall(rf"({NUM}) (years|months|days)", text):
        out[("years", "months", "days").index(unit)] += number_value(num)
    return tuple(out)


# Phrasings per question type. The first is the main one; self-check reads every question
# back through these, so each question must match exactly one of them.
TEMPLATES = {
    "recite": ["Recite {ref}.", "Quote {ref}.", "What does {ref} say?", "Give the text of {ref}.",
               "Say {ref} word for word."],
    "continue": ["Continue: {v}", "What is the next verse after: {v}", 'Which verse follows "{v}"?',
                 "Give the verse that comes after this one: {v}"],
    "locate": ['Which book and chapter says: "{v}"?', 'In which book and chapter is it written: "{v}"?',
               "Where is this verse found? Answer with book and chapter: {v}",
               "Name the book and chapter of this verse: {v}"],
    "begat": ["Who begat {y}?", "According to the scriptures, who begat {y}?", "Name the man who begat {y}."],
    "son_of": ["Whose son was {x}?", "{x} was the son of whom?", "Of whom was {x} the son?"],
    "daughter_of": ["Whose daughter was {x}?", "{x} was the daughter of whom?", "Of whom was {x} the daughter?"],
    "lifespan": ["How many years did {x} live?", "How long did {x} live?", "How many were all the days of {x}?"],
    "age_at_begat": ["How old was {x} when he begat {y}?", "How many years had {x} lived when he begat {y}?",
                     "At what age did {x} beget {y}?"],
    "age_when": ["How old was {x} when {clause}?", "What age was {x} when {clause}?",
                 "{x} was how old when {clause}?"],
    "reign_length": ["How long did {x} reign in {p}?", "For how long did {x} reign in {p}?",
                     "How long was the reign of {x} in {p}?"],
    "king_of": ["Of what was {x} king?", "{x} was king of what?", "What was {x} the king of?"],
    "verse_count": ["How many verses are in {chap}?", "How many verses does {chap} have?",
                    "Count the verses of {chap}."],
    "chapter_count": ["How many chapters are in {book}?", "How many chapters does {book} have?",
                      "How many chapters make up the book of {book}?"],
}
KIND = {"recite": "recite", "continue": "continue", "locate": "locate", "verse_count": "count",
        "chapter_count": "count", **{t: "fact" for t in ("begat", "son_of", "daughter_of", "lifespan",
                                                          "age_at_begat", "age_when", "reign_length", "king_of")}}
_BOOK = r"(?:[1-3] )?[A-Z][a-z]+(?: of [A-Z][a-z]+)?"
FIELD_RE = {
    "ref": rf"(?P<book>{_BOOK}) (?P<ch>\d+):(?P<vn>\d+)",
    "chap": rf"(?P<book>{_BOOK}) (?P<ch>\d+)",
    "book": rf"(?P<book>{_BOOK})",
    "v": r"(?P<v>.+)",
    "x": rf"(?P<x>{NAME})",
    "y": rf"(?P<y>{NAME})",
    "p": rf"(?P<p>{NAME})",
    # "when he begat Enos" belongs to age_at_begat, whose template is otherwise the same.
    "clause": r"(?P<clause>(?!he begat\b)[^?]+)",
}
# A clause in "How old was X when <clause>?" must be about X: one with another person's pronoun
# ("when she bare them") would not say who is meant once lifted out of its verse.
FOREIGN_PRONOUNS = set("she her hers they them their it its we us our you ye your thou thee thy i me my".split())


def plain(text):
    """Lower-case words only: the text as a reader (or a quoting model) would tell it apart."""
    return " ".join(re.sub(r"[^a-z ]", "", text.lower()).split())


@dataclass
class Item:
    qtype: str     # a TEMPLATES key
    question: str
    answer: str
    group: tuple   # items sharing a group are held out together
    alts: tuple = ()  # other written forms of the answer the text gives ("one and forty")
    extra: bool = False  # a further wording of a fact question: trained on, never held out


@dataclass
class Chapter:
    book: str
    number: int
    verses: list


class Corpus:
    def __init__(self, path):
        self.chapters = []
        for block in Path(path).read_text(encoding="utf-8").strip("\n").split("\n\n"):
            lines = block.split("\n")
            m = HEADING.match(lines[0])
            if not m or len(lines) < 2 or any(not v.strip() for v in lines[1:]):
                sys.exit(f"{path}: a chapter must be a heading then verse lines, got {lines[0]!r}")
            self.chapters.append(Chapter(m.group(1), int(m.group(2)), lines[1:]))
        leaked = sorted({c.book for c in self.chapters} & set(HELD_OUT_BOOKS))
        if leaked:
            sys.exit(f"{path} holds the held-out books {leaked}: pass the training text only")
        # Flat verse list: (chapter index, verse number, text).
        self.verses = [(ci, vn, v) for ci, c in enumerate(self.chapters) for vn, v in enumerate(c.verses, 1)]
        self.text = "\n".join(v for _, _, v in self.verses)
        self.plain_text = "\n".join(plain(v) for _, _, v in self.verses)
        # A capitalised word is taken as a name only when the text never writes it in lower case:
        # that rules out sentence openers ("And", "Then", "Behold") and common nouns at once.
        self.lower_words = set(re.findall(r"\b[a-z]+\b", self.text))

    def ref(self, i):
        ci, vn, _ = self.verses[i]
        return f"{self.chapters[ci].book} {self.chapters[ci].number}:{vn}"

    def chapter_name(self, ci):
        return f"{self.chapters[ci].book} {self.chapters[ci].number}"

    def occurs_once(self, s):
        """True when s occurs exactly once in the whole text, also inside other verses, even
        with other punctuation: Psalms 107:1 and 136:1 differ by a comma and a semicolon."""
        s = plain(s)
        first = self.plain_text.find(s)
        return first >= 0 and self.plain_text.find(s, first + 1) < 0

    def is_name(self, w):
        return re.fullmatch(NAME, w) is not None and w.lower() not in self.lower_words


def phrasings(args, qtype, n, **fields):
    """n wordings of one question: first the item's own (the main template, or for
    --variant-share of the items another), then the other templates in a seeded order."""
    # Seeded by the question itself, so that an item keeps its wording whatever else is made.
    rng = random.Random(f"{args.seed}:{qtype}:{sorted(fields.items())}")
    templates = TEMPLATES[qtype]
    first = 0 if rng.random() >= args.variant_share else rng.randrange(1, len(templates))
    others = [t for k, t in enumerate(templates) if k != first]
    rng.shuffle(others)
    return [t.format(**fields) for t in [templates[first], *others][:n]]


def phrase(args, qtype, **fields):
    return phrasings(args, qtype, 1, **fields)[0]


# ---------------------------------------------------------------------------------------------
# Verse questions


def verse_items(corpus, args, unique):
    """Recite, continue and locate items, each kind sampled from its own pool."""
    short = [i for i, (_, _, v) in enumerate(corpus.verses) if len(v.split()) <= args.max_words]
    pools = {
        "recite": short,
        "continue": [i for i in short if unique[i] and i + 1 < len(corpus.verses)
                     and corpus.verses[i + 1][0] == corpus.verses[i][0]
                     and len(corpus.verses[i + 1][2].split()) <= args.max_words],
        "locate": [i for i in short if unique[i]],
    }
    items = []
    for qtype, n in (("recite", args.recite), ("continue", args.cont), ("locate", args.locate)):
        # One generator per kind: changing one kind's count leaves the others' samples as they were.
        rng = random.Random(f"{args.seed}:{qtype}")
        pool = pools[qtype]
        for i in sorted(rng.sample(pool, min(n, len(pool)))):
            v = corpus.verses[i][2]
            if qtype == "recite":
                items.append(Item(qtype, phrase(args, qtype, ref=corpus.ref(i)), v, ("verse", i)))
            elif qtype == "continue":
                # Grouped by the verse it answers with, so that reciting or locating that verse
                # is held out along with it.
                items.append(Item(qtype, phrase(args, qtype, v=v), corpus.verses[i + 1][2],
                                  ("verse", i + 1)))
            else:
                items.append(Item(qtype, phrase(args, qtype, v=v),
                                  corpus.chapter_name(corpus.verses[i][0]), ("verse", i)))
    return items, {k: len(p) for k, p in pools.items()}


# ---------------------------------------------------------------------------------------------
# Facts. Each miner collects every statement of a relation, then keeps a subject only when all
# of them agree; anything it cannot attribute (a "he begat") counts as disagreement.

# The begetter is the name right before "begat" when that name opens a clause; "Caleb the son
# of Hezron begat" must not make Hezron the father.
BEGAT_SUBJECT = re.compile(rf"(?:^|\bAnd |\band |, |; |: |\bNow )({NAME}) (?:also )?$")
# Genesis 5 and 11: "And Seth lived an hundred and five years, and begat Enos" and the
# "lived after he begat" that follows it; Genesis 5:22 says "walked with God after he begat".
BEGAT_LIVED = re.compile(rf"^And ({NAME}) (?:lived|walked with God) (?:after he|{NUM} years, and) $")
FIRST_CHILD = re.compile(rf"^ ({NAME})\b(?!')")
# Further children only when each is a bare name in a comma list ("Abram, Nahor, and Haran;"):
# ", and Shelah begat Eber" or "Ashbel the second" end the list.
NEXT_CHILD = re.compile(rf"^, (?:and )?({NAME})(?=[,.;:]|$)")
# The parent in a lookahead, so that in "Gedaliah the son of Ahikam the son of Shaphan" the next
# search starts at Ahikam. Any word counts: "Jezaniah the son of a Maachathite" makes "whose son
# was Jezaniah" ambiguous even though "a" is no name.
# "Simon, son of Jonas" (no "the") counts as a statement too, but questions come from the plain
# "X the son of Y" only.
CHILD_OF = re.compile(rf"\b({NAME})(,?) (the )?(son|daughter) of (?=(\w+)('?))")
POSSESSIVE_CHILD = re.compile(rf"\b({NAME}),? ({NAME})'s (son|daughter)\b")
# Further statements of parentage, used only to drop questions: a child the text gives two
# parents, or one it leaves unnamed, is ambiguous (most often two people of one name, as Nathan
# son of Attai and Nathan son of David), so these may be broad.
NAMES = rf"{NAME}(?:(?:, and |, | and ){NAME})*"
SONS_OF_LIST = re.compile(rf"\bthe (?:sons|daughters|children)(?: also)? of ({NAME})\b[^;:.]*?[;:,] ({NAMES})")
LIST_SONS_OF = re.compile(rf"({NAMES}),? the (?:sons|daughters|children) of ({NAME})\b")
BORN_UNTO_LIST = re.compile(rf"\bborn unto (\w+)[^;:.]*?[;:] ({NAMES})")
BARE_LIST = re.compile(rf"\b(?:bare|born)(?: (?:unto|to) \w+| him| her| them)? ({NAMES})")
WHICH_WAS = re.compile(rf"\b({NAME}), which was the son of (?=({NAME})\b)")
# "Rapha was his son, Eleasah his son": a parent the verse does not name.
HIS_CHILD = re.compile(rf"\b({NAME}),? his (?:son|daughter)\b|\bhis (?:son|daughter),? ({NAME})\b")
LIVED_BEGAT = re.compile(rf"^And ({NAME}) lived ({NUM}) years, and begat")
LIFESPAN = re.compile(rf"\bthe days (?:of ({NAME})|that ({NAME}) lived) were ({NUM}) years\b")
CLAUSE_START = r"(?:^|\bAnd |\band |; |: |\bNow |\bSo )"
AGE_WHEN = re.compile(rf"{CLAUSE_START}({NAME}) was ({NUM}) years old,? when ([^,.;:?!()]+)")
AGE_WHEN_INV = re.compile(rf"(?:^|[.;:] )({NUM_CAP}) years old was ({NAME}) when ([^,.;:?!()]+)")
# The place may also come first ("he reigned in Jerusalem three months"); both orders are
# statements to agree, answers keep the written words.
_REIGNED = rf"and he reigned (?:({DURATION}) in ({NAME})|in ({NAME}) ({DURATION}))\b"
REIGN = re.compile(rf"{CLAUSE_START}({NAME}) was {NUM} years old when he began to reign, {_REIGNED}")
REIGN_INV = re.compile(rf"(?:^|[.;:] ){NUM_CAP} years old was ({NAME}) when he began to reign, {_REIGNED}")
# Questions come from "X king of Y" and "X the king of Y" only: not after "of" ("Pekah the son
# of Remaliah king of Israel": the king is Pekah), nor with a comma ("Egypt, the king of
# Assyria" may be a list). Every form still counts as a statement that must agree (Joash is
# king of Israel and, in "Amaziah the son of Joash king of Judah", of Judah), as does any word
# after "king of" ("king of kings"); only names become answers.
KING_OF = re.compile(rf"(of )?\b({NAME})(,?) (?:the )?king of ((?:the )?(\w+))\b(?!')")


def children_named(after):
    """The children right after a "begat": "Abram, Nahor, and Haran; and Haran begat Lot" gives
    Abram, Nahor and Haran."""
    c = FIRST_CHILD.match(after)
    if not c:
        return []
    children, rest = [c.group(1)], after[c.end():]
    while (n := NEXT_CHILD.match(rest)):
        children.append(n.group(1))
        rest = rest[n.end():]
    return children


def begat_records(corpus):
    """[(verse index, begetter or None, child)] for every child a "begat" names, and
    [(begetter or None, name)] for every name after a "begat" up to the next one: "Jesse begat
    his firstborn Eliab, and Abinadab the second" gives no question, but makes "who begat
    Abinadab" (Saul, in 1 Chronicles 8) ambiguous."""
    out, mentioned = [], []
    for i, (_, _, v) in enumerate(corpus.verses):
        found = list(re.finditer(r"\bbegat\b", v))
        for k, m in enumerate(found):
            before, after = v[:m.start()], v[m.end():]
            s = BEGAT_SUBJECT.search(before) or BEGAT_LIVED.match(before)
            subject = s.group(1) if s and corpus.is_name(s.group(1)) else None
            upto = found[k + 1].start() - m.end() if k + 1 < len(found) else len(after)
            mentioned += [(subject, w) for w in re.findall(NAME, after[:upto]) if corpus.is_name(w)]
            out += [(i, subject, ch) for ch in children_named(after) if corpus.is_name(ch)]
    return out, mentioned


def fact_items(corpus, args):
    items = []

    def add(qtype, answer, group, alts=(), **fields):
        # The text supports few facts; asking each in several wordings gives the kind more weight
        # and teaches the question rather than the template.
        for k, q in enumerate(phrasings(args, qtype, args.fact_phrasings, **fields)):
            items.append(Item(qtype, q, answer, group, tuple(alts), extra=k > 0))

    # Parents, from every way the text names one: "X begat Y", "Y the son of X", "Y, X's son",
    # lists of sons; None stands for a parent the text does not name.
    parents = collections.defaultdict(set)
    genders = collections.defaultdict(set)
    begotten, named_child, surnamed = set(), {}, set()

    def said(children, parent, gender=None):
        for child in re.split(r", and |, | and ", children):
            if corpus.is_name(child):
                parents[child].add(parent if parent and corpus.is_name(parent) else None)
                if gender:
                    genders[child].add(gender)

    records, mentioned = begat_records(corpus)
    for _, subject, child in records:
        begotten.add(child)
    for subject, name in mentioned:
        parents[name].add(subject)
    for _, _, v in corpus.verses:
        for m in CHILD_OF.finditer(v):
            child, comma, the, rel, parent, possessive = m.groups()
            said(child, None if possessive else parent, rel)
            # "Judas Iscariot the son of Simon" is about Judas as well, and asking "whose son
            # was Iscariot" would be odd.
            before = re.search(rf"\b({NAME}) $", v[:m.start()])
            if before and corpus.is_name(before.group(1)):
                said(before.group(1), None if possessive else parent, rel)
                surnamed.add(child)
            elif the and not comma:
                named_child[child] = rel
        for m in POSSESSIVE_CHILD.finditer(v):
            said(m.group(1), m.group(2), m.group(3))
        for m in WHICH_WAS.finditer(v):
            said(m.group(1), m.group(2), "son")
        for m in SONS_OF_LIST.finditer(v):
            said(m.group(2), m.group(1))
        for m in LIST_SONS_OF.finditer(v):
            said(m.group(1), m.group(2))
        for m in BORN_UNTO_LIST.finditer(v):
            said(m.group(2), m.group(1))
        for m in BARE_LIST.finditer(v):
            said(m.group(1), None)
        for m in HIS_CHILD.finditer(v):
            said(m.group(1) or m.group(2), None)
    for child in sorted(parents):
        ps = parents[child]
        if len(ps) != 1 or None in ps:
            continue
        (parent,) = ps
        if child in begotten:
            add("begat", parent, ("parent", child), y=child)
        if child in named_child and child not in surnamed and len(genders[child]) == 1:
            qtype = "son_of" if named_child[child] == "son" else "daughter_of"
            add(qtype, parent, ("parent", child), x=child)

    # Numbers: (question type, key) -> {value: [written forms]}; kept when one value.
    stated = collections.defaultdict(lambda: collections.defaultdict(list))
    plain_kings = set()
    for _, _, v in corpus.verses:
        m = LIVED_BEGAT.match(v)
        if m and corpus.is_name(m.group(1)):
            for ch in children_named(v[m.end():]):
                if corpus.is_name(ch):
                    stated[("age_at_begat", m.group(1), ch)][number_value(m.group(2))].append(m.group(2) + " years")
        for m in LIFESPAN.finditer(v):
            x = m.group(1) or m.group(2)
            if corpus.is_name(x):
                stated[("lifespan", x)][number_value(m.group(3))].append(m.group(3) + " years")
        for rx, x_at, n_at in ((AGE_WHEN, 1, 2), (AGE_WHEN_INV, 2, 1)):
            for m in rx.finditer(v):
                x, n, clause = m.group(x_at), m.group(n_at), m.group(3).strip()
                if not corpus.is_name(x) or clause.startswith("he begat") or \
                        FOREIGN_PRONOUNS & set(clause.lower().split()):
                    continue
                n = n[0].lower() + n[1:]
                stated[("age_when", x, clause)][number_value(n)].append(n + " years old")
        for rx in (REIGN, REIGN_INV):
            for m in rx.finditer(v):
                x, span, place, place2, span2 = m.groups()
                span, place = span or span2, place or place2
                if corpus.is_name(x) and corpus.is_name(place):
                    stated[("reign_length", x, place)][duration_value(span)].append(span)
        for m in KING_OF.finditer(v):
            after_of, x, comma, y, bare = m.groups()
            if corpus.is_name(x):
                stated[("king_of", x)][y].append(y)
                if not after_of and not comma and corpus.is_name(bare):
                    plain_kings.add(x)
    for key in sorted(stated):
        values = stated[key]
        if len(values) != 1 or (key[0] == "king_of" and key[1] not in plain_kings):
            continue
        forms = list(dict.fromkeys(next(iter(values.values()))))  # distinct, first written first
        qtype, x = key[0], key[1]
        answer, alts = forms[0], forms[1:]
        if qtype == "age_at_begat":
            add(qtype, answer, ("parent", key[2]), alts, x=x, y=key[2])
        elif qtype == "lifespan":
            add(qtype, answer, ("life", x), alts, x=x)
        elif qtype == "age_when":
            add(qtype, answer, ("age", x), alts, x=x, clause=key[2])
        elif qtype == "reign_length":  # with the age: the same verse
            add(qtype, answer, ("age", x), alts, x=x, p=key[2])
        else:
            add(qtype, answer, ("king", x), alts, x=x)
    return items


def count_items(corpus, args):
    items = []
    for ci, c in enumerate(corpus.chapters):
        items.append(Item("verse_count", phrase(args, "verse_count", chap=corpus.chapter_name(ci)),
                          str(len(c.verses)), ("chapter", ci)))
    per_book = collections.Counter(c.book for c in corpus.chapters)
    for book in per_book:  # in the text's order
        items.append(Item("chapter_count", phrase(args, "chapter_count", book=book),
                          str(per_book[book]), ("book", book)))
    return items


# ---------------------------------------------------------------------------------------------
# Split and output


def split(items, args):
    """Whole groups to held-out, in a seeded order, until they hold --heldout-frac of the items;
    verse, fact and count questions each on their own, so that the few facts get their share."""
    strata = collections.defaultdict(lambda: collections.defaultdict(list))
    for it in items:
        strata["verse" if it.group[0] == "verse" else KIND[it.qtype]][it.group].append(it)
    train, held = [], []
    for name in sorted(strata):
        groups = strata[name]
        keys = sorted(groups, key=repr)
        random.Random(f"{args.seed}:split:{name}").shuffle(keys)
        want = math.ceil(args.heldout_frac * sum(not it.extra for g in groups.values() for it in g))
        got = 0
        for k in keys:
            if got < want:
                held += [it for it in groups[k] if not it.extra]
                got += sum(not it.extra for it in groups[k])
            else:
                train += groups[k]
    rng = random.Random(f"{args.seed}:order")
    rng.shuffle(train)
    rng.shuffle(held)
    return train, held


def conversation(it):
    return {"messages": [{"role": "user", "content": it.question}, {"role": "assistant", "content": it.answer}]}


def task(it):
    return {"prompt": USER + it.question + ASSISTANT, "targets": [it.answer, *it.alts], "stop": STOP}


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# Self-check: reads the written files back and re-derives each answer from the raw lines of the
# training text with separate code (its own parse, plain searches over the whole file), so that
# a slip in the miners above shows up as a disagreement rather than being repeated.


def self_check(train_path, out_dir, args):
    failures = []

    def expect(ok, what):
        if not ok:
            failures.append(what)

    # Number words, by hand.
    for words, value in (("an hundred and twenty and three", 123), ("threescore and fifteen", 75),
                         ("nine hundred sixty and nine", 969), ("one and forty", 41), ("forty and one", 41),
                         ("an hundred forty and seven", 147), ("three score and ten", 70), ("a thousand", 1000)):
        expect(number_value(words) == value, f"number_value({words!r}) = {number_value(words)}, want {value}")

    raw = Path(train_path).read_text(encoding="utf-8")
    lines = raw.split("\n")
    chapter_of_line, verse_at, chapters, prev_blank, current = {}, {}, {}, True, None
    for n, line in enumerate(lines):
        if prev_blank and line:
            book, _, number = line.rpartition(" ")
            current = (book, int(number))
            chapters[current] = 0
        elif line:
            chapters[current] += 1
            verse_at[(current[0], current[1], chapters[current])] = line
            chapter_of_line[n] = current
        prev_blank = not line
    for book in HELD_OUT_BOOKS:
        expect(not re.search(rf"^{book} \d+$", raw, re.M), f"held-out book {book} in {train_path}")

    line_at = collections.defaultdict(list)
    word_lines = collections.defaultdict(list)
    for n, line in enumerate(lines):
        line_at[line].append(n)
        for w in set(re.findall(r"\w+", line)):
            word_lines[w].append(n)

    def about(word):
        """The lines holding word: every pattern below names it whole, so searching these is
        searching the file, only faster."""
        return "\n".join(lines[n] for n in word_lines.get(word, ()))

    # Line by line, so that line numbers stay those of the file.
    plain_raw = "\n".join(" ".join(re.findall(r"[a-z]+", line.lower().replace("'", ""))) for line in lines)

    def occurrences(s):
        s = " ".join(re.findall(r"[a-z]+", s.lower().replace("'", "")))
        n, at = 0, plain_raw.find(s)
        while at >= 0:
            n, at = n + 1, plain_raw.find(s, at + 1)
        return n

    def same_numbers(pattern, text, answer_value):
        found = re.findall(pattern, text, re.M)
        return bool(found) and all(number_value(n) == answer_value for n in found)

    # The word before "begat", except the "he" of Genesis 5's "X lived after he begat Y".
    # ("X lived ... years, and begat Y" is read by its own pattern.)
    BEGETTER = r"(?<!lived after )(?<!God after )(?<!years, )\b(\w+),? (?:also )?begat "

    def derive(qtype, f):
        """The answer the text gives to the question with fields f, or None."""
        if qtype == "recite":
            return verse_at.get((f["book"], int(f["ch"]), int(f["vn"])))
        if qtype == "continue":
            at = line_at.get(f["v"], [])
            if occurrences(f["v"]) != 1 or len(at) != 1 or at[0] + 1 not in chapter_of_line:
                return None
            return lines[at[0] + 1]
        if qtype == "locate":
            if occurrences(f["v"]) != 1 or len(line_at.get(f["v"], [])) != 1:
                return None
            n = line_at[f["v"]][0]
            return "%s %d" % chapter_of_line[n] if n in chapter_of_line else None
        if qtype == "verse_count":
            return str(chapters.get((f["book"], int(f["ch"])), "none"))
        if qtype == "chapter_count":
            return str(sum(1 for b, _ in chapters if b == f["book"]))
        if qtype == "begat":
            y = f["y"]
            text = about(y)
            fathers = set(re.findall(BEGETTER + rf"(?:\w+, (?:and )?)*{y}\b", text))
            fathers |= set(re.findall(rf"^And (\w+) lived [a-z ]+ years, and begat (?:\w+, (?:and )?)*{y}\b",
                                      text, re.M))
            fathers |= set(re.findall(rf"^And (\w+) (?:lived|walked with God) after he begat {y}\b", text, re.M))
            fathers |= set(re.findall(rf"\b{y},? the (?:son|daughter) of (\w+)", text))
            fathers |= set(re.findall(rf"\b{y},? (\w+)'s (?:son|daughter)\b", text))
            return fathers.pop() if len(fathers) == 1 else None
        if qtype in ("son_of", "daughter_of"):
            x, rel = f["x"], qtype.split("_")[0]
            text = about(x)
            said = set(re.findall(rf"\b{x},? the (son|daughter) of (\w+)", text))
            fathers = {p for _, p in said} | set(re.findall(BEGETTER + rf"(?:\w+, (?:and )?)*{x}\b", text))
            ok = len(fathers) == 1 and {r for r, _ in said} == {rel} and f"{x} the {rel} of " in text
            return fathers.pop() if ok else None
        raise AssertionError(qtype)

    kinds = collections.Counter()
    compiled = {q: [re.compile("^" + "".join(FIELD_RE[p] if k % 2 else re.escape(p)
                                             for k, p in enumerate(re.split(r"\{(\w+)\}", t))) + "$")
                    for t in ts] for q, ts in TEMPLATES.items()}

    def check(question, answer, alts, held):
        """(what is wrong or None, the item: question type and fields, whatever the wording)."""
        hits = [(q, m) for q, rxs in compiled.items() for rx in rxs if (m := rx.match(question))]
        if len(hits) != 1:
            return f"matches {len(hits)} templates", question
        qtype, m = hits[0]
        f = {k: v for k, v in m.groupdict().items() if v is not None}
        kinds[qtype] += 1
        if "\n" in answer or not answer:
            return "empty or multi-line answer", question
        return answer_error(qtype, f, answer, alts, held), (qtype, tuple(sorted(f.items())))

    def written_forms(found, answer, alts, held):
        # Held-out tasks must accept every form the text writes; train items carry one of them.
        return set(found) == {answer, *alts} if held else answer in found

    def answer_error(qtype, f, answer, alts, held):
        num = lambda a: number_value(a.rsplit(" ", 2 if a.endswith(" old") else 1)[0])
        if qtype == "lifespan":
            x = f["x"]
            text, days = about(x), rf"\bthe days (?:of {x}|that {x} lived) were"
            return None if same_numbers(rf"{days} ({NUM}) years\b", text, num(answer)) \
                and re.search(rf"{days} {re.escape(answer)}\b", text) else "lifespan"
        if qtype == "age_at_begat":
            x, y = f["x"], f["y"]
            pat = rf"^And {x} lived ({NUM}) years, and begat (?:{NAME}, (?:and )?)*{y}\b"
            text = about(x)
            return None if same_numbers(pat, text, num(answer)) and \
                re.search(rf"^And {x} lived {re.escape(answer)}, and begat", text, re.M) else "age_at_begat"
        if qtype == "age_when":
            x, clause = f["x"], re.escape(f["clause"])
            pats = [rf"\b{x} was ({NUM}) years old,? when {clause}(?=[,.;:?!()])",
                    rf"\b({NUM_CAP}) years old was {x} when {clause}(?=[,.;:?!()])"]
            found = [n for p in pats for n in re.findall(p, about(x))]
            forms = [n[0].lower() + n[1:] + " years old" for n in found]
            ok = found and all(number_value(n) == num(answer) for n in found) and \
                written_forms(forms, answer, alts, held)
            return None if ok else f"age_when: the text gives {forms}"
        if qtype == "reign_length":
            x, p = f["x"], f["p"]
            began = rf"(?:\b{x} was [a-z ]+ years old|years old was {x}) when he began to reign, and he reigned"
            found = re.findall(rf"{began} ({DURATION}) in {p}\b", about(x))
            found += re.findall(rf"{began} in {p} ({DURATION})\b", about(x))
            ok = found and all(duration_value(n) == duration_value(answer) for n in found) and \
                written_forms(found, answer, alts, held)
            return None if ok else f"reign_length: the text gives {found}"
        if qtype == "king_of":
            x = f["x"]
            found = set(re.findall(rf"\b{x},? (?:the )?king of ((?:the )?\w+)", about(x)))
            return None if found == {answer} else f"king_of: the text gives {sorted(found)}"
        got = derive(qtype, f)
        return None if got == answer else f"{qtype}: the text gives {got!r}"

    def read(path):
        return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]

    sets, keys = {}, {}
    tasks = read(out_dir / "heldout_tasks.jsonl")
    for name in ("train", "heldout"):
        rows = read(out_dir / f"{name}.jsonl")
        sets[name], keys[name] = rows, set()
        for n, r in enumerate(rows, 1):
            msgs = r.get("messages", [])
            if len(r) != 1 or [m.get("role") for m in msgs] != ["user", "assistant"] or \
                    any(set(m) != {"role", "content"} for m in msgs):
                failures.append(f"{name}.jsonl:{n}: not a user/assistant conversation")
                continue
            held = name == "heldout"
            alts = tasks[n - 1]["targets"][1:] if held and n <= len(tasks) else []
            err, key = check(msgs[0]["content"], msgs[1]["content"], alts, held)
            keys[name].add(key)
            if err:
                failures.append(f"{name}.jsonl:{n}: {msgs[0]['content']!r} -> {msgs[1]['content']!r}: {err}")
    qs = {name: [r["messages"][0]["content"] for r in rows] for name, rows in sets.items()}
    expect(len(set(qs["train"] + qs["heldout"])) == len(qs["train"]) + len(qs["heldout"]), "a question repeats")
    expect(not set(qs["train"]) & set(qs["heldout"]), "a held-out question is also in train")
    # Items, not wordings: a held-out fact must not be trained on in another wording either.
    both = keys["train"] & keys["heldout"]
    expect(not both, f"held-out items also in train: {sorted(both)[:3]}")
    expect(len(keys["heldout"]) == len(qs["heldout"]), "a held-out item is asked twice")
    # Whole groups go out, up to a few items past the target in each of three strata.
    total = len(keys["train"]) + len(keys["heldout"])
    expect(abs(len(keys["heldout"]) - args.heldout_frac * total) <= max(0.01 * total, 10),
           f"{len(keys['heldout'])} of {total} items held out, asked {args.heldout_frac}")
    expect(len(tasks) == len(sets["heldout"]), "heldout_tasks.jsonl and heldout.jsonl differ in length")
    for n, (t, r) in enumerate(zip(tasks, sets["heldout"]), 1):
        user, answer = r["messages"][0]["content"], r["messages"][1]["content"]
        expect(t == {"prompt": USER + user + ASSISTANT, "targets": t["targets"], "stop": STOP}
               and t["targets"][0] == answer and all(isinstance(s, str) and s for s in t["targets"]),
               f"heldout_tasks.jsonl:{n} does not match heldout.jsonl:{n}")
    checked = sum(kinds.values())
    if failures:
        print(f"self-check FAILED ({len(failures)} of {checked} items or checks):", file=sys.stderr)
        for f in failures[:30]:
            print("  " + f, file=sys.stderr)
        sys.exit(1)
    print(f"self-check: all {checked} questions ({len(keys['train'])} + {len(keys['heldout'])} items) re-derived "
          f"from {train_path}; split and task file consistent")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="build/kjv/train.txt", help="the training text (extract_kjv.py)")
    ap.add_argument("--out-dir", default="build/kjv/sft")
    ap.add_argument("--seed", type=int, default=20261215)
    ap.add_argument("--recite", type=int, default=5000, help="recite items (from the short verses)")
    ap.add_argument("--continue", dest="cont", type=int, default=5000, help="continue items")
    ap.add_argument("--locate", type=int, default=5000, help="locate items")
    ap.add_argument("--no-facts", action="store_true", help="leave out the mined fact questions")
    ap.add_argument("--fact-phrasings", type=int, default=3,
                    help="wordings of each fact question in train.jsonl (held-out ones are asked once)")
    ap.add_argument("--no-counts", action="store_true", help="leave out verse and chapter counts")
    ap.add_argument("--max-words", type=int, default=20, help="longest verse (words) asked for or quoted")
    ap.add_argument("--heldout-frac", type=float, default=0.1)
    ap.add_argument("--variant-share", type=float, default=0.3, help="share of items in a non-main phrasing")
    ap.add_argument("--self-check", action="store_true", help="re-derive every written answer and check the files")
    ap.add_argument("--check-only", action="store_true", help="only check the files in --out-dir (as --self-check)")
    args = ap.parse_args()
    t0 = time.time()
    if args.check_only:
        self_check(args.train, Path(args.out_dir), args)
        print(f"{time.time() - t0:.1f} s")
        return

    corpus = Corpus(args.train)
    short = [len(v.split()) <= args.max_words for _, _, v in corpus.verses]
    unique = [s and corpus.occurs_once(v) for s, (_, _, v) in zip(short, corpus.verses)]
    items, pools = verse_items(corpus, args, unique)
    if not args.no_facts:
        items += fact_items(corpus, args)
    if not args.no_counts:
        items += count_items(corpus, args)

    # A question must have one answer: the same text twice is a bug in a miner.
    by_q = {}
    for it in items:
        if by_q.setdefault(it.question, it.answer) != it.answer:
            sys.exit(f"question {it.question!r} with two answers: {by_q[it.question]!r} and {it.answer!r}")
    if len(by_q) != len(items):
        sys.exit("a question was generated twice")

    train, held = split(items, args)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", map(conversation, train))
    write_jsonl(out / "heldout.jsonl", map(conversation, held))
    write_jsonl(out / "heldout_tasks.jsonl", map(task, held))

    print(f"{len(corpus.chapters)} chapters, {len(corpus.verses)} verses; {sum(short)} of at most "
          f"{args.max_words} words, {sum(unique)} of them occurring once "
          f"(pools: {', '.join(f'{k} {n}' for k, n in pools.items())})")
    counts = {name: collections.Counter(it.qtype for it in part) for name, part in (("train", train), ("held", held))}
    print(f"{'kind':<8} {'question':<14} {'train':>6} {'held':>5}")
    for kind in ("recite", "continue", "locate", "fact", "count"):
        for q in (q for q in TEMPLATES if KIND[q] == kind):
            if counts["train"][q] or counts["held"][q]:
                print(f"{kind:<8} {q:<14} {counts['train'][q]:>6} {counts['held'][q]:>5}")
    print(f"{'total':<23} {len(train):>6} {len(held):>5}")
    facts = [it for it in items if KIND[it.qtype] == "fact" and not it.extra]
    if facts:
        print(f"(fact rows count wordings: {len(facts)} facts, each in up to {args.fact_phrasings} in train.jsonl)")
    for name in ("train.jsonl", "heldout.jsonl", "heldout_tasks.jsonl"):
        print(f"wrote {out / name}")
    if args.self_check:
        self_check(args.train, out, args)
    print(f"{time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
