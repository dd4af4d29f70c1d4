#!/usr/bin/python3
"""Freezes tests/golden/fp8-gemm.safetensors: the official `gemm_impl = "fp8"` recipe
(scripts/reference.py: act_quant, then fp8_linear's block products) on random inputs, the
reference `--numerics fp8` kernels are tested against (tests/matmul_bf16_test.cc).

Tensors: x [T, K] (BF16-valued F32), w [R, K] (F8_E4M3), w_scale_inv [ceil(R/128), ceil(K/128)],
y [T, R] (F32, before the official BF16 output rounding) and y_ue8m0 (activation scales
rounded up to powers of two, V3.1's scale_fmt).

usage: scripts/make_fp8_gemm_golden.py
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402


def main():
    rng = np.random.default_rng(2026)
    T, R, K = 5, 200, 300  # partial 128-blocks in both dimensions
    x = rng.standard_normal((T, K)).astype(np.float32) * np.exp2(rng.integers(-6, 6, (T, 1))).astype(np.float32)
    x[1, :128] = 0.0  # an all-zero block: the 1e-4 amax floor
    x = reference.decode("BF16", reference.encode_bf16(x)).astype(np.float32)
    codes = rng.integers(0, 256, (R, K)).astype(np.uint8)
    codes[(codes & 0x7F) == 0x7F] = 0  # no NaN codes
    w = reference.decode("F8_E4M3", codes)
    s_w = (np.exp2(rng.uniform(-10, -6, ((R + 127) // 128, (K + 127) // 128)))).astype(np.float32)
    wt = torch.from_numpy(w)
    wt.fp8 = (torch.from_numpy(w), torch.from_numpy(s_w))
    reference.CFG_BLOCK = (128, 128)
    out = {"x": x, "w": ("F8_E4M3", codes), "w_scale_inv": s_w}
    saved = reference.bf
    reference.bf = lambda t: t  # the block products before the official BF16 output rounding
    try:
        for name, ue8m0 in (("y", False), ("y_ue8m0", True)):
            reference.UE8M0 = ue8m0
            out[name] = reference.fp8_linear(torch.from_numpy(x.astype(np.float64)), wt).numpy().astype(np.float32)
    finally:
        reference.bf = saved
    dst = os.path.join(os.path.dirname(HERE), "tests", "golden", "fp8-gemm.safetensors")
    reference.write_safetensors(dst, out)
    print(f"wrote {os.path.relpath(dst)}")


if __name__ == "__main__":
    main()
