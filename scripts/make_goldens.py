#!/usr/bin/python3
"""Regenerates tests/golden/*.safetensors: for each case in tests/golden/cases.json, writes
the checkpoint with `dsv3 make-test-model`, runs scripts/reference.py (float64 PyTorch) on
a fixed token sequence and stores its outputs plus the tokens. The C++ golden test rebuilds
the same checkpoint and compares.

usage: scripts/make_goldens.py [--dsv3 build/dsv3] [--only NAME]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import reference  # noqa: E402


def token_sequence(seed, n, vocab):
    # BOS first, then ids spread over the whole vocabulary (including its last id).
    rng = random.Random(seed)
    toks = [0] + [rng.randrange(vocab) for _ in range(n - 2)] + [vocab - 1]
    return toks[:n]


def make_case_model(dsv3, case, model):
    """Writes the case's checkpoint to `model` with `dsv3 make-test-model`; returns its token
    sequence (a list of ids)."""
    subprocess.run([dsv3, "make-test-model", "--preset", case["preset"], "--dtype", case["dtype"],
                    "--seed", str(case["seed"]), "--shards", str(case["shards"]), "--out", model],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(model, "config.json")) as f:
        vocab = json.load(f)["vocab_size"]
    return token_sequence(case["seed"], case["tokens"], vocab)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", default=os.path.join(ROOT, "build", "dsv3"))
    ap.add_argument("--only")
    args = ap.parse_args()
    with open(os.path.join(ROOT, "tests", "golden", "cases.json")) as f:
        cases = json.load(f)["cases"]
    for case in cases:
        if args.only and case["name"] != args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            toks = make_case_model(args.dsv3, case, model)
            out = os.path.join(tmp, "ref.safetensors")
            cmd = [sys.executable, os.path.join(HERE, "reference.py"), "--model", model,
                   "--tokens", ",".join(map(str, toks)), "--out", out]
            if case["mtp"]:
                cmd.append("--mtp")
            subprocess.run(cmd, check=True)
            tensors = reference.read_safetensors(out)
            golden = {"tokens": ("I32", np.array(toks, dtype=np.int32))}
            for name, arr in tensors.items():
                golden[name] = ("I32" if "indices" in name else "F32", arr)
            dst = os.path.join(ROOT, "tests", "golden", case["name"] + ".safetensors")
            reference.write_safetensors(dst, golden)
            print(f"{case['name']}: {len(toks)} tokens -> {os.path.relpath(dst, ROOT)} "
                  f"({os.path.getsize(dst) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
