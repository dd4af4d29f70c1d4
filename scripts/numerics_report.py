#!/usr/bin/python3
"""How far `--numerics bf16` (the fast path) is from the exact fp32 path and from the
official BF16 numerics, on the golden checkpoints (tests/golden/cases.json).

For each case: the engine's logits in fp32 and bf16 numerics (prefill, and bf16 decoded
token by token), the float64 reference (the frozen golden) and scripts/reference.py
--official-bf16 / --official-fp8 (rounded where DeepSeek's own inference rounds; fp8: with
its FP8 GEMMs). On BF16 checkpoints fp8 numerics equal bf16 ones (only FP8 weights take FP8
activations). Prints max |logit diff|
and argmax agreement for each pair; --json writes them as one object. For the BF16 cases
also what `dsv3 quantize` (BF16 -> FP8 weights) changes in the fp32 logits.

usage: scripts/numerics_report.py [--dsv3 build/dsv3] [--json FILE]
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
from make_goldens import make_case_model  # noqa: E402


def compare(a, b):
    return {"max_abs_diff": float(np.abs(a - b).max()),
            "argmax_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsv3", default=os.path.join(ROOT, "build", "dsv3"))
    ap.add_argument("--json")
    args = ap.parse_args()
    with open(os.path.join(ROOT, "tests", "golden", "cases.json")) as f:
        cases = json.load(f)["cases"]
    report = {}
    pairs = [("bf16", "fp32"), ("bf16", "ref64"), ("bf16_decode", "bf16"), ("fp32", "ref_bf16"), ("bf16", "ref_bf16"),
             ("fp8", "fp32"), ("fp8", "ref_fp8")]
    print(f"{'case':18s} " + " ".join(f"{a + ' vs ' + b:>26s}" for a, b in pairs))
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            toks = ",".join(map(str, make_case_model(args.dsv3, case, model)))
            got = {"ref64": reference.read_safetensors(
                os.path.join(ROOT, "tests", "golden", case["name"] + ".safetensors"))["logits"]}
            out = os.path.join(tmp, "ref_bf16.safetensors")
            subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), "--model", model, "--tokens", toks,
                            "--out", out, "--official-bf16"], check=True)
            got["ref_bf16"] = reference.read_safetensors(out)["logits"]
            out = os.path.join(tmp, "ref_fp8.safetensors")
            subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), "--model", model, "--tokens", toks,
                            "--out", out, "--official-fp8"], check=True)
            got["ref_fp8"] = reference.read_safetensors(out)["logits"]
            for label, flags in (("fp32", ["--numerics", "fp32"]), ("bf16", ["--numerics", "bf16"]),
                                 ("fp8", ["--numerics", "fp8"]),
                                 ("bf16_decode", ["--numerics", "bf16", "--decode"])):
                out = os.path.join(tmp, label + ".safetensors")
                subprocess.run([args.dsv3, "logits", "--model", model, "--tokens", toks, "--out", out] + flags,
                               check=True, stdout=subprocess.DEVNULL)
                got[label] = reference.read_safetensors(out)["logits"]
            row = {f"{a}_vs_{b}": compare(got[a], got[b]) for a, b in pairs}
            if case["dtype"] == "bf16":
                q = os.path.join(tmp, "quantized")
                subprocess.run([args.dsv3, "quantize", "--in", model, "--out", q], check=True, stdout=subprocess.DEVNULL)
                out = os.path.join(tmp, "q.safetensors")
                subprocess.run([args.dsv3, "logits", "--model", q, "--tokens", toks, "--out", out, "--numerics", "fp32"],
                               check=True, stdout=subprocess.DEVNULL)
                row["quantized_fp8_vs_bf16_weights"] = compare(reference.read_safetensors(out)["logits"], got["fp32"])
            row["logit_scale"] = float(np.abs(got["ref64"]).max())
            report[case["name"]] = row
            print(f"{case['name']:18s} " + " ".join(
                f"{row[f'{a}_vs_{b}']['max_abs_diff']:>15.2e} {100 * row[f'{a}_vs_{b}']['argmax_agreement']:>8.1f}%"
                for a, b in pairs), flush=True)
            if "quantized_fp8_vs_bf16_weights" in row:
                qd = row["quantized_fp8_vs_bf16_weights"]
                print(f"{'':18s} dsv3 quantize (FP8 weights) vs the BF16 weights: max|diff| {qd['max_abs_diff']:.2e}, "
                      f"argmax agreement {100 * qd['argmax_agreement']:.1f}%", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
