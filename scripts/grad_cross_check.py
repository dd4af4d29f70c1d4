#!/usr/bin/python3
"""Live cross-check of `dsv3 grad` (fp32, hand-written backward) against
scripts/grad_reference.py (float64 PyTorch autograd) on checkpoints generated now, with
seeds unlike the frozen gradient goldens: the loss to 1e-5 and every full gradient tensor to
1e-4 relative L2 error. Exits non-zero on any mismatch.

usage: scripts/grad_cross_check.py [--dsv3 build/dsv3]
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

CASES = [  # preset, dtype, seed, tokens, mtp weight, balance alpha, extras
    ("tiny", "fp8", 201, 24, 0.3, 0.001, {}),
    ("tiny-noq", "f32", 202, 11, 0.1, 0.01, {}),
    ("tiny", "bf16", 203, 6, 0.0, 0.0, {}),
    # A loss mask (answer-only SFT loss), on the main and MTP heads.
    ("tiny", "fp8", 204, 20, 0.3, 0.0, {"mask": True}),
    # Logit distillation from a second checkpoint, masked too.
    ("tiny", "bf16", 205, 16, 0.3, 0.001, {"mask": True, "teacher": True, "kd_weight": 0.7, "kd_temperature": 1.5}),
    ("tiny-noq", "f32", 206, 9, 0.0, 0.0, {"teacher": True, "kd_weight": 1.0, "kd_temperature": 3.0}),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", default=os.path.join(os.path.dirname(HERE), "build", "dsv3"))
    args = ap.parse_args()
    failures = 0
    for preset, dtype, seed, n, lam, alpha, extras in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "m")
            subprocess.run([args.dsv3, "make-test-model", "--preset", preset, "--dtype", dtype, "--seed", str(seed),
                            "--out", model], check=True, stdout=subprocess.DEVNULL)
            rng = random.Random(seed)
            toks = ",".join(str(rng.randrange(1000)) for _ in range(n))
            flags = ["--tokens", toks, "--mtp-weight", str(lam), "--balance-alpha", str(alpha)]
            if extras.get("mask"):
                mask = [rng.randrange(2) for _ in range(n - 1)]
                mask[rng.randrange(n - 1)] = 1
                flags += ["--mask", ",".join(map(str, mask))]
            if extras.get("teacher"):
                teacher = os.path.join(tmp, "teacher")
                subprocess.run([args.dsv3, "make-test-model", "--preset", preset, "--dtype", dtype, "--seed",
                                str(seed + 1000), "--out", teacher], check=True, stdout=subprocess.DEVNULL)
                flags += ["--teacher", teacher, "--kd-weight", str(extras["kd_weight"]),
                          "--kd-temperature", str(extras["kd_temperature"])]
            got_path, ref_path = os.path.join(tmp, "got.safetensors"), os.path.join(tmp, "ref.safetensors")
            subprocess.run([args.dsv3, "grad", "--model", model, "--out", got_path] + flags, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([sys.executable, os.path.join(HERE, "grad_reference.py"), "--model", model,
                            "--out", ref_path] + flags, check=True)
            got, ref = reference.read_safetensors(got_path), reference.read_safetensors(ref_path)
            label = f"{preset}/{dtype}/seed {seed}" + "".join(f" +{k}" for k in ("mask", "teacher") if extras.get(k))
            loss_err = abs(got["loss"][0] - ref["loss"][0]) / abs(ref["loss"][0])
            worst, worst_name = 0.0, ""
            names = [k for k in ref if k not in ("loss", "main_ce", "mtp_ce", "balance")]
            if sorted(names) != sorted(k for k in got if k != "loss"):
                print(f"{label}: the gradient files hold different tensors")
                failures += 1
                continue
            for name in names:
                den = np.linalg.norm(ref[name])
                err = np.linalg.norm(got[name] - ref[name]) / den if den > 0 else np.linalg.norm(got[name])
                if err > worst:
                    worst, worst_name = err, name
            ok = loss_err <= 1e-5 and worst <= 1e-4
            failures += not ok
            print(f"{label}: loss rel err {loss_err:.2e}, max gradient rel err {worst:.2e} ({worst_name}) "
                  f"over {len(names)} tensors {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
