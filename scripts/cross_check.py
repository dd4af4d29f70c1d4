#!/usr/bin/python3
"""Live cross-check of the engine against scripts/reference.py on checkpoints generated now
(seeds unlike the frozen goldens): logits, MTP logits and per-layer routing, prefill and
decode, fast and reference kernels. Exits non-zero on any mismatch.

usage: scripts/cross_check.py [--dsv3 build/dsv3]
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402

CASES = [  # preset, dtype, seed, shards, tokens, mtp
    ("tiny", "fp8", 101, 2, 40, True),
    ("tiny-noq", "bf16", 102, 1, 17, True),
    ("tiny-v2", "fp8", 103, 3, 23, False),
    ("tiny-v2-lite", "bf16", 104, 1, 9, False),
]
TOL = 5e-4


def compare(ref, got, label):
    bad = []
    for name, want in ref.items():
        have = got.get(name)
        if have is None or have.shape != want.shape:
            bad.append(f"{label}: {name} missing or wrong shape")
            continue
        if name.endswith(".indices"):
            if not np.array_equal(want, have):
                bad.append(f"{label}: {name}: {int((want != have).sum())} expert choices differ")
            continue
        diff = float(np.abs(want - have).max())
        tol = TOL if "logits" in name else 1e-5
        if diff > tol:
            bad.append(f"{label}: {name}: max diff {diff:.3g} > {tol}")
        if "logits" in name and not np.array_equal(want.argmax(-1), have.argmax(-1)):
            bad.append(f"{label}: {name}: argmax differs")
        if name in ("logits", "mtp_logits"):
            print(f"  {label:36s} {name:10s} max|diff| {diff:.2e}")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", default=os.path.join(os.path.dirname(HERE), "build", "dsv3"))
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, dtype, seed, shards, n, mtp in CASES:
            model = os.path.join(tmp, f"{preset}-{dtype}")
            subprocess.run([args.dsv3, "make-test-model", "--preset", preset, "--dtype", dtype, "--seed", str(seed),
                            "--shards", str(shards), "--out", model], check=True, stdout=subprocess.DEVNULL)
            rng = random.Random(seed)
            toks = ",".join(str(rng.randrange(1000)) for _ in range(n))
            extra = ["--mtp"] if mtp else []
            ref_out = os.path.join(tmp, "ref.safetensors")
            subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), "--model", model, "--tokens", toks,
                            "--out", ref_out] + extra, check=True)
            ref = reference.read_safetensors(ref_out)
            for flags in ([], ["--decode"], ["--reference-kernels"], ["--attention", "absorbed"]):
                out = os.path.join(tmp, "dsv3.safetensors")
                subprocess.run([args.dsv3, "logits", "--model", model, "--tokens", toks, "--out", out, "--routing"]
                               + extra + flags, check=True)
                failures += compare(ref, reference.read_safetensors(out), f"{preset}/{dtype} {' '.join(flags)}")
    for f in failures:
        print("FAIL", f)
    print(f"cross_check: {len(CASES)} checkpoints x 4 engine paths, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
