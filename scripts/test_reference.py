#!/usr/bin/env python3
"""Self-check of scripts/reference.py (run: /usr/bin/python3 scripts/test_reference.py).

Checks what a golden file cannot check by itself: the safetensors/FP8/BF16 decoding, the
interleaved RoPE and YaRN numbers, absorbed MLA == naive MLA, the routing rules on hand
examples (negative biases, masked groups, ties), and that the CLI runs a tiny random
checkpoint (FP8 with partial blocks, sharded, with MTP) into a well-formed, causal output.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

F64 = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def close(a, b, tol, msg):
    err = (torch.as_tensor(a, dtype=F64) - torch.as_tensor(b, dtype=F64)).abs().max().item()
    check(err <= tol, f"{msg}: max abs error {err:.3e} > {tol:.1e}")


# --------------------------------------------------------------------------------------
# dtype decoding and file round trip
# --------------------------------------------------------------------------------------

def test_dtypes(tmp):
    t = ref.E4M3_TABLE
    check(t[0x00] == 0.0 and t[0x01] == 2.0 ** -9 and t[0x07] == 7 / 8 * 2.0 ** -6, "e4m3 subnormals")
    check(t[0x08] == 2.0 ** -6 and t[0x38] == 1.0 and t[0xBC] == -1.5, "e4m3 normals")
    check(t[0x7E] == 448.0 and t[0xFE] == -448.0, "e4m3 max finite is 448 (no inf)")
    check(math.isnan(t[0x7F]) and math.isnan(t[0xFF]) and np.isnan(t).sum() == 2, "e4m3 NaN is only S.1111.111")
    bf = ref.decode("BF16", np.array([0x3F80, 0xC000, 0x3F81], dtype=np.uint16))
    check(list(bf) == [1.0, -2.0, 1.0078125], "bf16 decode")
    check(list(ref.encode_bf16(np.array([1.0, 1.00390625, 1.01171875]))) == [0x3F80, 0x3F80, 0x3F82], "bf16 round-to-even")

    path = os.path.join(tmp, "rt.safetensors")
    f8 = np.array([[0x38, 0x7E], [0x01, 0xBC]], dtype=np.uint8)
    ref.write_safetensors(path, {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": ("BF16", np.array([0x3F80], np.uint16)),
        "c": ("F8_E4M3", f8), "d": np.array([7, -1], dtype=np.int32), "e": np.array([2 ** 40], np.int64),
        "f": np.array([0.5], np.float16)})
    back = ref.read_safetensors(path)
    check(back["a"].shape == (2, 3) and back["a"][1, 2] == 5.0, "F32 round trip")
    check(back["b"][0] == 1.0 and back["d"].tolist() == [7, -1] and back["e"][0] == 2 ** 40, "BF16/I32/I64 round trip")
    check(back["c"].tolist() == [[1.0, 448.0], [2.0 ** -9, -1.5]] and back["f"][0] == 0.5, "F8/F16 round trip")


# --------------------------------------------------------------------------------------
# RoPE / YaRN / softmax scale
# --------------------------------------------------------------------------------------

def test_rope():
    # d = 4, theta = 100: f = [1, 0.1]. Pairs are (x0,x1) and (x2,x3), NOT (x0,x2),(x1,x3).
    freqs = torch.tensor([1.0, 0.1], dtype=F64)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)
    got = ref.apply_rope(x, torch.tensor([2]), freqs)[0]
    c0, s0, c1, s1 = math.cos(2), math.sin(2), math.cos(0.2), math.sin(0.2)
    want = [1 * c0 - 2 * s0, 1 * s0 + 2 * c0, 3 * c1 - 4 * s1, 3 * s1 + 4 * c1]
    close(got, want, 1e-15, "interleaved rope")
    close(ref.apply_rope(x, torch.tensor([0]), freqs), x, 0, "rope at position 0 is the identity")
    # Multi-head shape [T, H, d] with per-token positions.
    xh = torch.randn(3, 2, 4, dtype=F64)
    got = ref.apply_rope(xh, torch.tensor([0, 1, 5]), freqs)
    close(got[2, 1], ref.apply_rope(xh[2, 1].view(1, 4), torch.tensor([5]), freqs)[0], 1e-15, "rope per head")

    cfg = types.SimpleNamespace(rope=4, theta=100.0, yarn=False, nope=12)
    close(ref.rope_frequencies(cfg), [1.0, 0.1], 1e-15, "plain frequencies")
    check(ref.softmax_scale(cfg) == 16 ** -0.5, "plain softmax scale")

    # DeepSeek-V3's published YaRN settings: ramp from i=10 (low) to i=23 (high).
    v3 = types.SimpleNamespace(rope=64, theta=10000.0, yarn=True, factor=40.0, orig_max_pos=4096.0,
                               beta_fast=32.0, beta_slow=1.0, mscale_all_dim=1.0, nope=128)
    f = 10000.0 ** (-2.0 * torch.arange(32, dtype=F64) / 64)
    got = ref.rope_frequencies(v3)
    close(got[:11], f[:11], 0, "yarn keeps high-frequency dims (i <= low)")
    close(got[23:], f[23:] / 40, 1e-18, "yarn interpolates low-frequency dims (i >= high)")
    r = 6 / 13
    close(got[16], f[16] * (1 - r) + f[16] / 40 * r, 1e-18, "yarn ramp midpoint")
    check(abs(ref.softmax_scale(v3) - 0.135234) < 1e-6, f"V3 softmax scale {ref.softmax_scale(v3)}")


# --------------------------------------------------------------------------------------
# Absorbed MLA == naive MLA
# --------------------------------------------------------------------------------------

def test_absorbed():
    g = torch.Generator().manual_seed(1)
    t, h, n, r, lat, v = 7, 4, 16, 8, 32, 12
    args = (torch.randn(t, h, n, generator=g, dtype=F64), torch.randn(t, h, r, generator=g, dtype=F64),
            torch.randn(t, lat, generator=g, dtype=F64), torch.randn(t, r, generator=g, dtype=F64),
            torch.randn(h * (n + v), lat, generator=g, dtype=F64) * 0.3, v, 0.2)
    a, b = ref.attend_naive(*args), ref.attend_absorbed(*args)
    check(a.shape == (t, h, v), "attention output shape")
    close(a, b, 1e-10, "absorbed vs naive attention")
    # Causality: the first query sees only the first key, so its output is v of token 0.
    kv0 = ref.linear(args[2][:1], args[4]).view(h, n + v)[:, n:]
    close(a[0], kv0, 1e-12, "first query attends to itself only")


# --------------------------------------------------------------------------------------
# Routing on hand examples
# --------------------------------------------------------------------------------------

def route_cfg(**kw):
    base = dict(topk_method="noaux_tc", scoring_func="sigmoid", n_group=4, topk_group=2, top_k=3,
                norm_topk_prob=True, routed_scaling_factor=2.5)
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_routing():
    # 8 experts in 4 groups {0,1} {2,3} {4,5} {6,7}; dyadic values so the sums are exact.
    s = torch.tensor([[0.875, 0.125, 0.25, 0.375, 0.75, 0.625, 0.5, 0.5625]], dtype=F64)
    bias = torch.tensor([-1.0, -1.0, -0.5, -0.5, -1.0, -1.0, -0.25, -2.0], dtype=F64)
    # b = s + bias = [-.125, -.875, -.25, -.125, -.25, -.375, .25, -1.4375]
    # group scores (top-2 sums): g0 -1.0, g1 -0.375, g2 -0.625, g3 -1.1875 -> keep g1, g2.
    # Expert 6 has the best b but its group is dropped; every kept b is negative, so
    # masking with 0 instead of -inf would wrongly pick dropped experts.
    # Among {2,3,4,5}: 3 (-.125), then 2 and 4 (-.25), 5 last -> {2,3,4}.
    idx, w = ref.select_experts(s, bias, route_cfg())
    check(idx.tolist() == [[2, 3, 4]], f"noaux_tc indices {idx.tolist()}")
    # Weights are the UNBIASED sigmoid scores, normalized, times routed_scaling_factor.
    close(w, [[0.25 / 1.375 * 2.5, 0.375 / 1.375 * 2.5, 0.75 / 1.375 * 2.5]], 1e-15, "noaux_tc weights")
    # k = 2: 3 first, then the tie between 2 and 4 (both -0.25) goes to the lower index.
    idx, _ = ref.select_experts(s, bias, route_cfg(top_k=2))
    check(idx.tolist() == [[2, 3]], f"expert tie -> lower index, got {idx.tolist()}")
    # Without normalization the weights are the raw scores times the factor.
    _, w = ref.select_experts(s, bias, route_cfg(norm_topk_prob=False))
    close(w, [[0.625, 0.9375, 1.875]], 1e-15, "unnormalized weights")

    # All-equal scores: every group and expert ties -> lowest groups, lowest experts.
    # Logits 0 give sigmoid exactly 0.5, so this runs through route() itself.
    idx, w = ref.route(torch.zeros(2, 8, dtype=F64), torch.zeros(8, dtype=F64), route_cfg())
    check(idx.tolist() == [[0, 1, 2]] * 2, f"full tie -> [0,1,2], got {idx.tolist()}")
    close(w, torch.full((2, 3), 2.5 / 3, dtype=F64), 1e-15, "tie weights")
    idx, _ = ref.route(torch.zeros(1, 8, dtype=F64), None, route_cfg(topk_group=1, top_k=2))
    check(idx.tolist() == [[0, 1]], f"group tie -> lower group, got {idx.tolist()}")
    # A tie between experts 2 and 5 in different kept groups with identical logits and bias.
    logits = torch.tensor([[-3.0, -3.0, 1.0, 0.0, -3.0, 1.0, -3.0, -3.0]], dtype=F64)
    idx, _ = ref.route(logits, torch.zeros(8, dtype=F64), route_cfg(n_group=1, topk_group=1, top_k=1))
    check(idx.tolist() == [[2]], f"cross-group tie -> lower index, got {idx.tolist()}")

    # V2 softmax scoring. greedy: plain top-k of the probabilities.
    p = torch.tensor([[0.1, 0.3, 0.05, 0.2, 0.05, 0.3]], dtype=F64)
    v2 = dict(topk_method="greedy", scoring_func="softmax", norm_topk_prob=False, routed_scaling_factor=1.0, top_k=2)
    idx, w = ref.select_experts(p, None, route_cfg(**v2))
    check(idx.tolist() == [[1, 5]], f"greedy indices {idx.tolist()}")
    close(w, [[0.3, 0.3]], 0, "greedy weights")
    # group_limited_greedy, groups {0,1} {2,3} {4,5} scored by their max: 0.3, 0.2, 0.3 ->
    # topk_group 1 keeps group 0 (tie with group 2 -> lower) -> experts {0, 1}.
    idx, w = ref.select_experts(p, None, route_cfg(**dict(v2, topk_method="group_limited_greedy", n_group=3, topk_group=1)))
    check(idx.tolist() == [[0, 1]], f"group_limited_greedy indices {idx.tolist()}")
    close(w, [[0.1, 0.3]], 0, "group_limited_greedy weights")
    _, w = ref.select_experts(p, None, route_cfg(**dict(v2, norm_topk_prob=True, routed_scaling_factor=2.0)))
    close(w, [[1.0, 1.0]], 1e-15, "softmax renormalized weights")


# --------------------------------------------------------------------------------------
# A tiny random checkpoint through the CLI
# --------------------------------------------------------------------------------------

BLOCK = 16  # small FP8 blocks so that the tiny dims leave partial edge blocks

V3_CONFIG = dict(
    model_type="deepseek_v3", vocab_size=64, hidden_size=40, intermediate_size=48, moe_intermediate_size=24,
    num_hidden_layers=3, num_nextn_predict_layers=1, num_attention_heads=3, n_shared_experts=1,
    n_routed_experts=8, routed_scaling_factor=2.5, topk_method="noaux_tc", n_group=4, topk_group=2,
    num_experts_per_tok=3, moe_layer_freq=1, first_k_dense_replace=1, norm_topk_prob=True,
    scoring_func="sigmoid", q_lora_rank=24, kv_lora_rank=20, qk_nope_head_dim=8, qk_rope_head_dim=6,
    v_head_dim=10, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
    rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=32, beta_fast=32,
                      beta_slow=1, mscale=1.0, mscale_all_dim=1.0),
    quantization_config=dict(quant_method="fp8", fmt="e4m3", activation_scheme="dynamic",
                             weight_block_size=[BLOCK, BLOCK]))

V2_CONFIG = dict(
    model_type="deepseek_v2", vocab_size=50, hidden_size=32, intermediate_size=40, moe_intermediate_size=16,
    num_hidden_layers=2, num_attention_heads=2, n_shared_experts=None, n_routed_experts=6,
    routed_scaling_factor=1.0, topk_method="greedy", n_group=None, topk_group=None, num_experts_per_tok=2,
    first_k_dense_replace=1, norm_topk_prob=False, scoring_func="softmax", q_lora_rank=None,
    kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8, rope_scaling=None)


def tensor_shapes(c):
    """name -> (shape, kind) with kind 'linear' (FP8 when quantized), 'norm', 'plain', 'bias'."""
    d, h = c["hidden_size"], c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    out = {"model.embed_tokens.weight": ((c["vocab_size"], d), "plain"), "model.norm.weight": ((d,), "norm"),
           "lm_head.weight": ((c["vocab_size"], d), "plain")}

    def mlp(p, width):
        out[p + "gate_proj.weight"] = ((width, d), "linear")
        out[p + "up_proj.weight"] = ((width, d), "linear")
        out[p + "down_proj.weight"] = ((d, width), "linear")

    for i in range(c["num_hidden_layers"] + c.get("num_nextn_predict_layers", 0)):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = ((d,), "norm")
        out[p + "post_attention_layernorm.weight"] = ((d,), "norm")
        a = p + "self_attn."
        if c["q_lora_rank"]:
            out[a + "q_a_proj.weight"] = ((c["q_lora_rank"], d), "linear")
            out[a + "q_a_layernorm.weight"] = ((c["q_lora_rank"],), "norm")
            out[a + "q_b_proj.weight"] = ((h * qk, c["q_lora_rank"]), "linear")
        else:
            out[a + "q_proj.weight"] = ((h * qk, d), "linear")
        out[a + "kv_a_proj_with_mqa.weight"] = ((c["kv_lora_rank"] + c["qk_rope_head_dim"], d), "linear")
        out[a + "kv_a_layernorm.weight"] = ((c["kv_lora_rank"],), "norm")
        out[a + "kv_b_proj.weight"] = ((h * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]), "linear")
        out[a + "o_proj.weight"] = ((d, h * c["v_head_dim"]), "linear")
        if i < c["first_k_dense_replace"]:
            mlp(p + "mlp.", c["intermediate_size"])
        else:
            out[p + "mlp.gate.weight"] = ((c["n_routed_experts"], d), "plain")
            if c["scoring_func"] == "sigmoid":
                out[p + "mlp.gate.e_score_correction_bias"] = ((c["n_routed_experts"],), "bias")
            for e in range(c["n_routed_experts"]):
                mlp(f"{p}mlp.experts.{e}.", c["moe_intermediate_size"])
            if c["n_shared_experts"]:
                mlp(p + "mlp.shared_experts.", c["n_shared_experts"] * c["moe_intermediate_size"])
        if i == c["num_hidden_layers"]:  # the MTP layer's extras
            out[p + "enorm.weight"] = ((d,), "norm")
            out[p + "hnorm.weight"] = ((d,), "norm")
            out[p + "eh_proj.weight"] = ((d, 2 * d), "plain")
            out[p + "embed_tokens.weight"] = ((c["vocab_size"], d), "plain")
            out[p + "shared_head.norm.weight"] = ((d,), "norm")
            out[p + "shared_head.head.weight"] = ((c["vocab_size"], d), "plain")
    return out


def quantize_fp8(w):
    """Block-scaled E4M3 like DeepSeek's checkpoints: scale = amax / 448 per block."""
    rows, cols = -(-w.shape[0] // BLOCK), -(-w.shape[1] // BLOCK)
    scale = np.zeros((rows, cols), np.float32)
    codes = np.zeros(w.shape, np.uint8)
    for r in range(rows):
        for c in range(cols):
            blk = w[r * BLOCK:(r + 1) * BLOCK, c * BLOCK:(c + 1) * BLOCK]
            scale[r, c] = np.abs(blk).max() / 448.0
            codes[r * BLOCK:(r + 1) * BLOCK, c * BLOCK:(c + 1) * BLOCK] = ref.encode_e4m3(blk / np.float64(scale[r, c]))
    return codes, scale


def build_checkpoint(folder, c, fp8, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(c, f)
    tensors = {}
    for name, (shape, kind) in tensor_shapes(c).items():
        if kind == "norm":
            w = 1.0 + 0.2 * rng.standard_normal(shape)
        elif kind == "bias":
            w = -0.3 + 0.3 * rng.standard_normal(shape)  # mostly negative, as trained biases are
        else:
            w = rng.standard_normal(shape) / math.sqrt(shape[-1])
        if kind == "linear" and fp8:
            codes, scale = quantize_fp8(w)
            tensors[name] = ("F8_E4M3", codes)
            tensors[name + "_scale_inv"] = scale
        elif kind == "bias" or name.endswith("mlp.gate.weight"):
            tensors[name] = w.astype(np.float32)  # the router stays F32
        else:
            tensors[name] = ("BF16", ref.encode_bf16(w))
    # Two shards plus an index, as published checkpoints are laid out.
    names = list(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for shard, part in shards.items():
        ref.write_safetensors(os.path.join(folder, shard), {n: tensors[n] for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {n: s for s, part in shards.items() for n in part}}, f)
    return tensors


def test_checkpoint_dequant(folder, tensors):
    ck = ref.Checkpoint(folder)
    name = "model.layers.1.self_attn.q_b_proj.weight"  # [3*14=42, 24]: partial blocks both ways
    _, codes = tensors[name]
    scale = tensors[name + "_scale_inv"]
    got = ck.get(name).numpy()
    check(got.dtype == np.float64 and got.shape == codes.shape, "fp8 dequant shape")
    for r, c in [(0, 0), (17, 3), (41, 23), (40, 16), (15, 15), (16, 16)]:
        want = ref.E4M3_TABLE[codes[r, c]] * np.float64(scale[r // BLOCK, c // BLOCK])
        check(got[r, c] == want, f"fp8 dequant at [{r},{c}]: {got[r, c]} != {want}")
    bf = ck.get("model.norm.weight").numpy()
    check(np.array_equal(bf, ref.decode("BF16", tensors["model.norm.weight"][1])), "bf16 weight")


def run_cli(folder, tokens, out, *flags):
    cmd = [sys.executable, os.path.join(HERE, "reference.py"), "--model", folder,
           "--tokens", ",".join(map(str, tokens)), "--out", out, *flags]
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0, f"reference.py failed:\n{r.stderr}")
    f = ref.SafetensorsFile(out)
    return {n: (f.dtype(n), f.read(n)) for n in f.entries}


def test_v3_model(tmp):
    folder = os.path.join(tmp, "v3")
    tensors = build_checkpoint(folder, V3_CONFIG, fp8=True, seed=3)
    test_checkpoint_dequant(folder, tensors)
    c = V3_CONFIG
    tokens = [0, 17, 5, 63, 5, 42, 9]
    t, k = len(tokens), c["num_experts_per_tok"]
    out = run_cli(folder, tokens, os.path.join(tmp, "v3.safetensors"), "--mtp")
    moe_layers = [1, 2, 3]  # layer 0 dense, 3 = MTP
    want = {"logits": ("F32", (t, c["vocab_size"])), "mtp_logits": ("F32", (t - 1, c["vocab_size"]))}
    for layer in moe_layers:
        rows = t - 1 if layer == c["num_hidden_layers"] else t
        want[f"routing.{layer}.indices"] = ("I32", (rows, k))
        want[f"routing.{layer}.weights"] = ("F32", (rows, k))
    check(set(out) == set(want), f"output names {sorted(out)}")
    for name, (dtype, shape) in want.items():
        check(out[name][0] == dtype and out[name][1].shape == shape, f"{name}: {out[name][0]} {out[name][1].shape}")
        check(np.isfinite(out[name][1]).all(), f"{name} has non-finite values")
    for layer in moe_layers:
        idx, w = out[f"routing.{layer}.indices"][1], out[f"routing.{layer}.weights"][1]
        check((np.diff(idx, axis=1) > 0).all() and idx.min() >= 0 and idx.max() < c["n_routed_experts"], "indices ascending")
        check(np.allclose(w.sum(1), c["routed_scaling_factor"], atol=1e-5), "normalized weights sum to the factor")
        # Chosen experts lie in at most topk_group groups.
        groups = idx // (c["n_routed_experts"] // c["n_group"])
        check(all(len(set(g)) <= c["topk_group"] for g in groups.tolist()), "group limit respected")

    ck = ref.Checkpoint(folder)
    full = ref.forward(ck, tokens, mtp=True)
    absorbed = ref.forward(ck, tokens, mtp=True, absorbed=True)
    close(full["logits"], absorbed["logits"], 1e-10, "absorbed vs naive model logits")
    close(full["mtp_logits"], absorbed["mtp_logits"], 1e-10, "absorbed vs naive mtp logits")
    close(full["logits"].float(), torch.from_numpy(out["logits"][1]), 0, "CLI output is the float32 cast")
    # Causality: a prefix reproduces the first rows (main and MTP) and their routing.
    pre = ref.forward(ck, tokens[:4], mtp=True)
    close(pre["logits"], full["logits"][:4], 1e-12, "main logits are causal")
    close(pre["mtp_logits"], full["mtp_logits"][:3], 1e-12, "mtp logits are causal")
    check(torch.equal(pre["routing.3.indices"], full["routing.3.indices"][:3]), "mtp routing is causal")
    # The MTP input restated from the spec: [enorm(Emb(t_{i+1})) ; hnorm(h_i)] with h_i
    # taken AFTER model.norm, then the block at RoPE positions 0..T-2.
    g = ck.get
    tok = torch.tensor(tokens)
    h = g("model.embed_tokens.weight")[tok]
    for layer in range(c["num_hidden_layers"]):
        h = ref.decoder_layer(ck, layer, h, torch.arange(t), False, {})
    h = ref.rms_norm(h, g("model.norm.weight"), 1e-6)
    p = "model.layers.3."
    emb = ref.rms_norm(g(p + "embed_tokens.weight")[tok[1:]], g(p + "enorm.weight"), 1e-6)
    m = ref.linear(torch.cat([emb, ref.rms_norm(h[:-1], g(p + "hnorm.weight"), 1e-6)], -1), g(p + "eh_proj.weight"))
    m = ref.decoder_layer(ck, 3, m, torch.arange(t - 1), False, {})
    m = ref.linear(ref.rms_norm(m, g(p + "shared_head.norm.weight"), 1e-6), g(p + "shared_head.head.weight"))
    close(m, full["mtp_logits"], 1e-12, "mtp logits follow the spec's wiring")
    # MTP row i reads token i+1: changing the last token changes only the last MTP row.
    alt = ref.forward(ck, tokens[:-1] + [11], mtp=True)
    close(alt["mtp_logits"][:-1], full["mtp_logits"][:-1], 1e-12, "mtp rows before the change")
    check((alt["mtp_logits"][-1] - full["mtp_logits"][-1]).abs().max() > 1e-6, "mtp last row sees token i+1")


def test_v2_model(tmp):
    folder = os.path.join(tmp, "v2")
    build_checkpoint(folder, V2_CONFIG, fp8=False, seed=4)
    tokens = [1, 2, 3, 49, 0]
    out = run_cli(folder, tokens, os.path.join(tmp, "v2.safetensors"), "--mtp")  # no MTP layer: ignored
    check(set(out) == {"logits", "routing.1.indices", "routing.1.weights"}, f"v2 outputs {sorted(out)}")
    check(out["logits"][1].shape == (5, 50), "v2 logits shape")
    w = out["routing.1.weights"][1]
    check((w > 0).all() and (w.sum(1) < 1).all(), "v2 weights are raw softmax probabilities")
    ck = ref.Checkpoint(folder)
    close(ref.forward(ck, tokens)["logits"], ref.forward(ck, tokens, absorbed=True)["logits"], 1e-10,
          "v2 absorbed vs naive")


def main():
    tests = [("dtypes and safetensors", test_dtypes), ("rope and yarn", lambda _: test_rope()),
             ("absorbed MLA", lambda _: test_absorbed()), ("routing", lambda _: test_routing()),
             ("V3 tiny checkpoint (fp8, mtp)", test_v3_model), ("V2 tiny checkpoint", test_v2_model)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in tests:
            fn(tmp)
            print(f"ok  {name}")
    print("all reference checks passed")


if __name__ == "__main__":
    main()
