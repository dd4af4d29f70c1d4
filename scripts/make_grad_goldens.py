#!/usr/bin/python3
"""Regenerates tests/golden/grad-*.safetensors: for each case in tests/golden/grad_cases.json,
writes the checkpoint with `dsv3 make-test-model`, runs scripts/grad_reference.py (float64
PyTorch autograd) on a fixed token sequence and stores a reduction of its gradients small
enough to commit (a full gradient of the tiny model is ~14 MB):

  tokens I32 [T]; loss, main_ce, mtp_ce, balance F32 [1];
  per trainable tensor N viewed as [rows, cols] (1-D tensors as one row):
    N.row_norms F32 [rows]   the L2 norm of every gradient row
    N.row_index I32 [k]      k <= 2 rows: the largest-norm row and the middle row
    N.rows      F32 [k, cols] those rows in full

tests/train_golden_test.cc rebuilds the checkpoint and compares the same reduction of the
C++ gradients (relative L2 error per tensor).

usage: scripts/make_grad_goldens.py [--dsv3 build/dsv3] [--only NAME]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import reference  # noqa: E402
from make_goldens import token_sequence  # noqa: E402

SCALARS = ("loss", "main_ce", "mtp_ce", "balance")


def reduce_gradients(grads):
    out = {}
    for name, g in grads.items():
        if name in SCALARS:
            out[name] = ("F32", g)
            continue
        g2 = g.reshape(1, -1) if g.ndim == 1 else g
        norms = np.sqrt((g2 * g2).sum(axis=1))
        rows = sorted({int(np.argmax(norms)), g2.shape[0] // 2})
        out[name + ".row_norms"] = ("F32", norms)
        out[name + ".row_index"] = ("I32", np.array(rows, dtype=np.int32))
        out[name + ".rows"] = ("F32", g2[rows])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", default=os.path.join(ROOT, "build", "dsv3"))
    ap.add_argument("--only")
    args = ap.parse_args()
    with open(os.path.join(ROOT, "tests", "golden", "grad_cases.json")) as f:
        cases = json.load(f)["cases"]
    for case in cases:
        if args.only and case["name"] != args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            subprocess.run([args.dsv3, "make-test-model", "--preset", case["preset"], "--dtype", case["dtype"],
                            "--seed", str(case["seed"]), "--out", model], check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(model, "config.json")) as f:
                vocab = json.load(f)["vocab_size"]
            toks = token_sequence(case["seed"], case["tokens"], vocab)
            out = os.path.join(tmp, "grad.safetensors")
            subprocess.run([sys.executable, os.path.join(HERE, "grad_reference.py"), "--model", model,
                            "--tokens", ",".join(map(str, toks)), "--out", out,
                            "--mtp-weight", str(case["mtp_weight"]), "--balance-alpha", str(case["balance_alpha"])],
                           check=True)
            golden = {"tokens": ("I32", np.array(toks, dtype=np.int32))}
            golden.update(reduce_gradients(reference.read_safetensors(out)))
            dst = os.path.join(ROOT, "tests", "golden", case["name"] + ".safetensors")
            reference.write_safetensors(dst, golden)
            print(f"{case['name']}: {len(toks)} tokens -> {os.path.relpath(dst, ROOT)} "
                  f"({os.path.getsize(dst) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
