#!/usr/bin/env python3
"""Independent float64 PyTorch reference of the DeepSeek-V3 / V2 forward pass.

It freezes the golden outputs the C++ engine is tested against, so it is written from the
model's definition alone (the DeepSeek-V3 technical report, arXiv 2412.19437, and the
published config and checkpoint layout), shares no code with the engine, and computes
everything in float64 (weights dequantized
to float64): any disagreement with the fp32 engine is then the engine's rounding or a bug,
never this script's rounding.

    python3 scripts/reference.py --model DIR --tokens 0,17,345 --out FILE.safetensors [--mtp] [--absorbed]
                                 [--official-bf16]

--official-bf16 instead rounds every tensor to BF16 where DeepSeek's own inference code
(default dtype bfloat16, gemm_impl "bf16") materializes one: dequantized weights, GEMM and
norm outputs, the residual stream, RoPE outputs, the latent cache, attention scores and
probabilities, router scores. Sums still run in float64 (the official GEMMs accumulate in
fp32) and the final logits are left unrounded. It is the reference for `--numerics bf16`.

Output tensors: `logits` F32 [T, vocab]; with --mtp (and an MTP layer) `mtp_logits`
F32 [T-1, vocab]; per MoE layer L `routing.L.indices` I32 [T', k] and `routing.L.weights`
F32 [T', k], experts sorted ascending with the final (scaled) weights aligned.

Needs only torch (1.13 is enough) and numpy: the safetensors reader/writer is our own.
"""

import argparse
import glob
import json
import math
import os
import struct
import sys

import numpy as np
import torch

F64 = torch.float64
OFFICIAL_BF16 = False  # --official-bf16 (and --official-fp8)
OFFICIAL_FP8 = False   # --official-fp8
UE8M0 = False          # quantization_config.scale_fmt "ue8m0"
CFG_BLOCK = (128, 128)


def bf(x):
    """x rounded to BF16 (round to nearest even) in official-BF16 mode, else x."""
    return x.to(torch.bfloat16).to(F64) if OFFICIAL_BF16 else x

# --------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, raw data section
# --------------------------------------------------------------------------------------

# Storage type of each safetensors dtype. BF16 and the FP8 formats are kept as raw bits
# and decoded by hand because numpy has no such types.
STORAGE = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "F8_E4M3": np.uint8, "F8_E8M0": np.uint8, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_NATIVE = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
           np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
           np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}


def _build_e4m3_table():
    # E4M3 "fn" (the OCP format DeepSeek uses): bias 7, no infinities, only S.1111.111 is
    # NaN, so the largest finite value is 448 (S.1111.110).
    table = np.empty(256, dtype=np.float64)
    for b in range(256):
        sign = -1.0 if b & 0x80 else 1.0
        exp, man = (b >> 3) & 0xF, b & 0x7
        if exp == 0xF and man == 0x7:
            table[b] = math.nan
        elif exp == 0:
            table[b] = sign * (man / 8.0) * 2.0 ** -6
        else:
            table[b] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return table


E4M3_TABLE = _build_e4m3_table()


def decode(dtype, raw):
    """Raw storage array -> numpy float64 (floats) or int64 (integers)."""
    if dtype == "BF16":  # bf16 is the top half of an fp32
        return (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "F8_E4M3":
        return E4M3_TABLE[raw]
    if dtype == "F8_E8M0":  # power-of-two scales (V3.1 "ue8m0"); 0xFF is NaN
        out = np.ldexp(1.0, raw.astype(np.int64) - 127)
        return np.where(raw == 0xFF, math.nan, out)
    if dtype in ("F64", "F32", "F16"):
        return raw.astype(np.float64)
    return raw.astype(np.int64)


def encode_bf16(x):
    """float -> BF16 bits, round to nearest even (used to build test checkpoints)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def encode_e4m3(x):
    """float -> nearest finite E4M3 code (used to build test checkpoints)."""
    finite = np.flatnonzero(~np.isnan(E4M3_TABLE))
    x = np.asarray(x, dtype=np.float64)
    nearest = np.abs(x.reshape(-1, 1) - E4M3_TABLE[finite].reshape(1, -1)).argmin(axis=1)
    return finite[nearest].astype(np.uint8).reshape(x.shape)


class SafetensorsFile:
    """Lazy reader: the data section is memory-mapped and a tensor is read on request."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        self.entries = header
        self.data_start = 8 + n
        self.map = np.memmap(path, dtype=np.uint8, mode="r")

    def dtype(self, name):
        return self.entries[name]["dtype"]

    def raw(self, name):
        e = self.entries[name]
        begin, end = e["data_offsets"]
        st = np.dtype(STORAGE[e["dtype"]])
        count = (end - begin) // st.itemsize
        arr = np.frombuffer(self.map, dtype=st, count=count, offset=self.data_start + begin)
        return arr.reshape(e["shape"])

    def read(self, name):
        return decode(self.dtype(name), self.raw(name))


def read_safetensors(path):
    """Whole file -> {name: float64 / int64 numpy array}."""
    f = SafetensorsFile(path)
    return {name: f.read(name) for name in f.entries}


def write_safetensors(path, tensors):
    """tensors: {name: numpy array} (dtype inferred) or {name: (dtype_name, raw_array)}."""
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        if isinstance(value, tuple):
            dtype, arr = value
            arr = np.ascontiguousarray(arr, dtype=STORAGE[dtype])
        else:
            arr = np.ascontiguousarray(value)
            dtype = _NATIVE[arr.dtype]
        blob = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data section 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# --------------------------------------------------------------------------------------
# Config and checkpoint
# --------------------------------------------------------------------------------------

class Config:
    """The config.json keys the forward pass needs; nulls become the neutral value."""

    def __init__(self, j):
        g = lambda key, default=None: default if j.get(key) is None else j[key]
        v3 = g("model_type", "deepseek_v3") != "deepseek_v2"
        self.vocab_size = g("vocab_size")
        self.hidden_size = g("hidden_size")
        self.num_hidden_layers = g("num_hidden_layers")
        self.num_nextn_predict_layers = g("num_nextn_predict_layers", 0)
        self.num_heads = g("num_attention_heads")
        self.n_routed_experts = g("n_routed_experts", 0)
        self.n_shared_experts = g("n_shared_experts", 0)
        self.routed_scaling_factor = float(g("routed_scaling_factor", 1.0))
        # V2 checkpoints predate noaux_tc; their defaults are softmax/greedy, unnormalized.
        self.topk_method = g("topk_method", "noaux_tc" if v3 else "greedy")
        self.scoring_func = g("scoring_func", "sigmoid" if v3 else "softmax")
        self.norm_topk_prob = bool(g("norm_topk_prob", v3))
        self.n_group = g("n_group", 1)
        self.topk_group = g("topk_group", 1)
        self.top_k = g("num_experts_per_tok", 0)
        self.moe_layer_freq = g("moe_layer_freq", 1)
        self.first_k_dense_replace = g("first_k_dense_replace", 0)
        self.q_lora_rank = g("q_lora_rank", 0)
        self.kv_lora_rank = g("kv_lora_rank")
        self.nope = g("qk_nope_head_dim")
        self.rope = g("qk_rope_head_dim")
        self.v_dim = g("v_head_dim")
        self.eps = float(g("rms_norm_eps", 1e-6))
        self.theta = float(g("rope_theta", 10000.0))
        self.tie_word_embeddings = bool(g("tie_word_embeddings", False))
        rs = g("rope_scaling", {}) or {}
        self.yarn = (rs.get("type") or rs.get("rope_type")) == "yarn"
        if self.yarn:
            self.factor = float(rs["factor"])
            self.orig_max_pos = float(rs["original_max_position_embeddings"])
            self.beta_fast = float(rs.get("beta_fast") or 32.0)
            self.beta_slow = float(rs.get("beta_slow") or 1.0)
            self.mscale_all_dim = float(rs.get("mscale_all_dim") or 0.0)
        q = g("quantization_config", {}) or {}
        self.block = tuple(q.get("weight_block_size") or (128, 128))
        self.scale_fmt = q.get("scale_fmt") or ""

    def is_moe_layer(self, i):
        return bool(self.n_routed_experts) and i >= self.first_k_dense_replace and i % self.moe_layer_freq == 0


class Checkpoint:
    """Tensor lookup across shards; every float tensor comes back as float64 torch."""

    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = Config(json.load(f))
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            paths = [os.path.join(model_dir, s) for s in shards]
        else:
            paths = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
        if not paths:
            raise SystemExit(f"{model_dir}: no safetensors files")
        self.where = {}
        for p in paths:
            f = SafetensorsFile(p)
            for name in f.entries:
                self.where[name] = f

    def has(self, name):
        return name in self.where

    def get(self, name):
        if name not in self.where:
            raise KeyError(f"tensor {name} is missing from the checkpoint")
        f = self.where[name]
        w = f.read(name)
        codes = None
        if f.dtype(name) == "F8_E4M3":
            # Block scaling: one scale per [br, bc] tile; edge tiles are partial, so
            # expand the scale grid and crop it to the weight's shape.
            s = self.get(name + "_scale_inv")
            codes = (torch.from_numpy(np.ascontiguousarray(w)), s)
            br, bc = self.cfg.block
            s = np.repeat(np.repeat(s.numpy(), br, axis=0), bc, axis=1)
            w = w * s[: w.shape[0], : w.shape[1]]
        t = torch.from_numpy(np.ascontiguousarray(w))
        if codes is not None and OFFICIAL_FP8:
            t = bf(t)
            t.fp8 = codes  # e4m3 values and scale_inv blocks, for the FP8 GEMM
            return t
        # The bias of the aux-loss-free balancing is fp32 in the official model.
        return t if name.endswith("e_score_correction_bias") else bf(t)


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return bf(w * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def round_e4m3(v):
    """Nearest e4m3 value (ties to even, saturating at 448) of float32 v, as float64."""
    v = np.asarray(v, dtype=np.float32)
    a = np.abs(v)
    u = a.view(np.uint32).astype(np.uint64)
    q = ((u + 0x7FFFF + ((u >> 20) & 1)) & 0xFFF00000).astype(np.uint32).view(np.float32)
    normal = np.minimum(q, np.float32(448.0))
    sub = (np.rint(a.astype(np.float64) * 512.0) / 512.0).astype(np.float32)
    r = np.where(a >= np.float32(2.0 ** -6), normal, sub)
    return (np.sign(v) * r).astype(np.float64)


def act_quant(x, bc):
    """The official act_quant: per row and bc-channel block, scale = max(amax, 1e-4) / 448
    (fp32; a power of two with ue8m0) and x / scale rounded to e4m3. Returns (q, s)."""
    t, k = x.shape
    nb = -(-k // bc)
    xp = np.zeros((t, nb * bc), dtype=np.float32)
    xp[:, :k] = x.numpy().astype(np.float32)
    xb = xp.reshape(t, nb, bc)
    amax = np.maximum(np.abs(xb).max(-1), np.float32(1e-4)).astype(np.float32)
    s = (amax / np.float32(448.0)).astype(np.float32)
    if UE8M0:
        s = np.exp2(np.ceil(np.log2(s.astype(np.float64)))).astype(np.float32)
    q = round_e4m3(xb / s[..., None])
    return q, s.astype(np.float64)


def fp8_linear(x, w):
    """The official fp8_gemm: per 128-block products of e4m3 activations and weights, each
    block's sum times both scales, summed over blocks; output BF16."""
    codes, s_w = w.fp8
    br, bc = CFG_BLOCK
    q, s_x = act_quant(bf(x), bc)  # [T, nb, bc], [T, nb]
    rows, k = codes.shape
    nb = q.shape[1]
    wq = np.zeros((rows, nb * bc))
    wq[:, :k] = codes.numpy()
    wq = wq.reshape(rows, nb, bc)
    sw = np.repeat(s_w.numpy(), br, axis=0)[:rows]  # [rows, nb]
    part = np.einsum("tbc,rbc->trb", q, wq)  # exact products, float64 sums
    y = (part * s_x[:, None, :] * sw[None, :, :]).sum(-1)
    return bf(torch.from_numpy(y))


def linear(x, w):  # weights are [out, in]
    if OFFICIAL_FP8 and hasattr(w, "fp8"):
        return fp8_linear(x, w)
    return bf(bf(x) @ w.t())


def swiglu(ck, prefix, x):
    gate = linear(x, ck.get(prefix + "gate_proj.weight"))
    up = linear(x, ck.get(prefix + "up_proj.weight"))
    return linear(bf(bf(torch.nn.functional.silu(gate)) * up), ck.get(prefix + "down_proj.weight"))


def rope_frequencies(cfg):
    d = cfg.rope
    i = torch.arange(d // 2, dtype=F64)
    f = cfg.theta ** (-2.0 * i / d)
    if not cfg.yarn:
        return f
    # YaRN: dims that rotate fast within the original context keep f_i (r=0); slow ones
    # are interpolated to f_i/factor (r=1); a linear ramp in between.
    corr = lambda beta: d * math.log(cfg.orig_max_pos / (beta * 2 * math.pi)) / (2 * math.log(cfg.theta))
    low = max(math.floor(corr(cfg.beta_fast)), 0)
    high = min(math.ceil(corr(cfg.beta_slow)), d - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    r = ((i - low) / (high - low)).clamp(0.0, 1.0)
    return f * (1 - r) + (f / cfg.factor) * r


def softmax_scale(cfg):
    scale = (cfg.nope + cfg.rope) ** -0.5
    if cfg.yarn and cfg.factor > 1:
        # Compensates YaRN's attention-entropy change; applied to the logits, not cos/sin.
        m = 0.1 * cfg.mscale_all_dim * math.log(cfg.factor) + 1.0
        scale *= m * m
    return scale


def apply_rope(x, positions, freqs):
    """Interleaved RoPE: pair (x[2i], x[2i+1]) rotates by pos*f_i. x: [T, ..., d]."""
    angle = positions.to(F64).view(-1, 1) * freqs.view(1, -1)  # [T, d/2]
    shape = [x.shape[0]] + [1] * (x.dim() - 2) + [freqs.numel()]
    cos, sin = angle.cos().view(shape), angle.sin().view(shape)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return bf(torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2))


def _causal_softmax(scores):
    """scores [H, T, S] with query t at key position t (queries and keys coincide)."""
    t, s = scores.shape[-2:]
    future = torch.ones(t, s, dtype=torch.bool).triu(1)
    return bf(torch.softmax(scores.masked_fill(future, -math.inf), dim=-1))


def attend_naive(q_nope, q_pe, c, k_pe, w_kvb, v_dim, scale):
    """Materialize per-head K and V from the latent c.
    q_nope [T,H,n], q_pe [T,H,r] (rotated), c [T,L] (normed), k_pe [T,r] (rotated),
    w_kvb [H*(n+v), L]. Returns [T, H, v]."""
    t, h, n = q_nope.shape
    kv = linear(c, w_kvb).view(t, h, n + v_dim)
    k_nope, v = kv[..., :n], kv[..., n:]
    scores = bf(bf(torch.einsum("thd,shd->hts", q_nope, k_nope)) + bf(torch.einsum("thd,sd->hts", q_pe, k_pe)))
    p = _causal_softmax(bf(scores * scale))
    return bf(torch.einsum("hts,shd->thd", p, v))


def attend_absorbed(q_nope, q_pe, c, k_pe, w_kvb, v_dim, scale):
    """Same math as attend_naive, but attention runs over the cached latent (c, k_pe):
    kv_b's key half is folded into q and its value half applied after the weighted sum."""
    t, h, n = q_nope.shape
    w = w_kvb.view(h, n + v_dim, -1)
    w_k, w_v = w[:, :n], w[:, n:]  # [H, n, L], [H, v, L]
    q_lat = bf(torch.einsum("thd,hdl->thl", q_nope, w_k))
    scores = bf(bf(torch.einsum("thl,sl->hts", q_lat, c)) + bf(torch.einsum("thd,sd->hts", q_pe, k_pe)))
    p = _causal_softmax(bf(scores * scale))
    o_lat = bf(torch.einsum("hts,sl->thl", p, c))
    return bf(torch.einsum("thl,hvl->thv", o_lat, w_v))


def mla(ck, prefix, x, positions, absorbed):
    cfg = ck.cfg
    t, h = x.shape[0], cfg.num_heads
    if cfg.q_lora_rank:
        q_a = rms_norm(linear(x, ck.get(prefix + "q_a_proj.weight")), ck.get(prefix + "q_a_layernorm.weight"), cfg.eps)
        q = linear(q_a, ck.get(prefix + "q_b_proj.weight"))
    else:
        q = linear(x, ck.get(prefix + "q_proj.weight"))
    q = q.view(t, h, cfg.nope + cfg.rope)
    kv_a = linear(x, ck.get(prefix + "kv_a_proj_with_mqa.weight"))
    c = rms_norm(kv_a[:, : cfg.kv_lora_rank], ck.get(prefix + "kv_a_layernorm.weight"), cfg.eps)
    freqs = rope_frequencies(cfg)
    q_pe = apply_rope(q[..., cfg.nope:], positions, freqs)
    k_pe = apply_rope(kv_a[:, cfg.kv_lora_rank:], positions, freqs)  # one key for all heads
    attend = attend_absorbed if absorbed else attend_naive
    out = attend(q[..., : cfg.nope], q_pe, c, k_pe, ck.get(prefix + "kv_b_proj.weight"), cfg.v_dim, softmax_scale(cfg))
    return linear(out.reshape(t, h * cfg.v_dim), ck.get(prefix + "o_proj.weight"))


# --------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------

def _top(x, k):
    """Indices of the k largest entries per row; ties go to the lower index (a stable
    descending sort keeps equal values in index order, torch.topk promises nothing)."""
    return torch.sort(x, dim=-1, descending=True, stable=True).indices[..., :k]


def select_experts(s, bias, cfg):
    """s: activated scores [T, E]; bias: e_score_correction_bias [E] or None.
    Returns (indices [T,k] ascending, weights [T,k] including routed_scaling_factor)."""
    t, e = s.shape
    # The bias only steers the choice (aux-loss-free balancing); weights use s itself.
    b = s + bias if bias is not None else s.clone()
    if cfg.topk_method in ("noaux_tc", "group_limited_greedy") and cfg.n_group > 1:
        grouped = b.view(t, cfg.n_group, e // cfg.n_group)
        if cfg.topk_method == "noaux_tc":
            group_score = torch.sort(grouped, dim=-1, descending=True).values[..., :2].sum(-1)
        else:
            group_score = grouped.max(dim=-1).values
        keep = torch.zeros(t, cfg.n_group, dtype=torch.bool)
        keep.scatter_(1, _top(group_score, cfg.topk_group), True)
        # -inf, not 0: biased scores can be negative, and a 0 would beat them.
        b = grouped.masked_fill(~keep.unsqueeze(-1), -math.inf).view(t, e)
    elif cfg.topk_method not in ("noaux_tc", "greedy", "group_limited_greedy"):
        raise SystemExit(f"unsupported topk_method {cfg.topk_method}")
    idx = torch.sort(_top(b, cfg.top_k), dim=-1).values
    w = s.gather(1, idx)
    if cfg.norm_topk_prob:
        w = w / w.sum(-1, keepdim=True)
    return idx, w * cfg.routed_scaling_factor


def route(logits, bias, cfg):
    if cfg.scoring_func == "sigmoid":
        s = bf(torch.sigmoid(logits))
    elif cfg.scoring_func == "softmax":
        s = torch.softmax(logits, dim=-1)
    else:
        raise SystemExit(f"unsupported scoring_func {cfg.scoring_func}")
    return select_experts(s, bias, cfg)


def moe(ck, prefix, x, layer, routing):
    cfg = ck.cfg
    bias_name = prefix + "gate.e_score_correction_bias"
    bias = ck.get(bias_name) if ck.has(bias_name) else None
    idx, w = route(linear(x, ck.get(prefix + "gate.weight")), bias, cfg)
    routing[layer] = (idx, w)
    out = torch.zeros_like(x)
    # Each expert runs once on the tokens that chose it (loads its weights once).
    for e in torch.unique(idx).tolist():
        rows, slot = (idx == e).nonzero(as_tuple=True)
        y = swiglu(ck, f"{prefix}experts.{e}.", x[rows])
        out.index_add_(0, rows, bf(y * bf(w[rows, slot]).unsqueeze(-1)))
        out = bf(out)
    if cfg.n_shared_experts and ck.has(prefix + "shared_experts.gate_proj.weight"):
        out = bf(out + swiglu(ck, prefix + "shared_experts.", x))  # unscaled
    return out


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------

def decoder_layer(ck, layer, h, positions, absorbed, routing):
    cfg = ck.cfg
    p = f"model.layers.{layer}."
    h = bf(h + mla(ck, p + "self_attn.", rms_norm(h, ck.get(p + "input_layernorm.weight"), cfg.eps), positions,
                   absorbed))
    x = rms_norm(h, ck.get(p + "post_attention_layernorm.weight"), cfg.eps)
    if cfg.is_moe_layer(layer):
        return bf(h + moe(ck, p + "mlp.", x, layer, routing))
    return bf(h + swiglu(ck, p + "mlp.", x))


def _first(ck, *names):
    for n in names:
        if ck.has(n):
            return ck.get(n)
    raise KeyError(f"none of {names} is in the checkpoint")


def forward(ck, tokens, mtp=False, absorbed=False):
    """Returns {name: torch tensor (float64 / int64)} in the output file's layout."""
    cfg = ck.cfg
    tok = torch.tensor(tokens, dtype=torch.long)
    if tok.numel() == 0 or tok.min() < 0 or tok.max() >= cfg.vocab_size:
        raise SystemExit(f"tokens must be non-empty ids in [0, {cfg.vocab_size})")
    embed = ck.get("model.embed_tokens.weight")
    head_name = "model.embed_tokens.weight" if cfg.tie_word_embeddings and not ck.has("lm_head.weight") else "lm_head.weight"
    routing = {}

    h = embed[tok]
    positions = torch.arange(len(tokens))
    for layer in range(cfg.num_hidden_layers):
        h = decoder_layer(ck, layer, h, positions, absorbed, routing)
    h_final = rms_norm(h, ck.get("model.norm.weight"), cfg.eps)
    out = {"logits": bf(h_final) @ ck.get(head_name).t()}  # unrounded: fp32 logits

    if mtp and cfg.num_nextn_predict_layers >= 1:
        if len(tokens) < 2:
            raise SystemExit("--mtp needs at least 2 tokens")
        n = cfg.num_hidden_layers
        p = f"model.layers.{n}."
        # Row i combines the main model's normed hidden state at i with token i+1.
        emb = _first(ck, p + "embed_tokens.weight", "model.embed_tokens.weight")[tok[1:]]
        m = torch.cat([rms_norm(emb, ck.get(p + "enorm.weight"), cfg.eps),
                       rms_norm(h_final[:-1], ck.get(p + "hnorm.weight"), cfg.eps)], dim=-1)
        m = linear(m, ck.get(p + "eh_proj.weight"))
        m = decoder_layer(ck, n, m, positions[:-1], absorbed, routing)
        m = rms_norm(m, ck.get(p + "shared_head.norm.weight"), cfg.eps)
        out["mtp_logits"] = bf(m) @ _first(ck, p + "shared_head.head.weight", head_name).t()
    elif mtp:
        print("note: the config has no MTP layer (num_nextn_predict_layers 0); no mtp_logits", file=sys.stderr)

    for layer in sorted(routing):
        idx, w = routing[layer]
        out[f"routing.{layer}.indices"] = idx
        out[f"routing.{layer}.weights"] = w
    return out


def to_numpy_outputs(out):
    """float64 -> F32, indices -> I32: the layout the C++ tests read."""
    res = {}
    for name, t in out.items():
        a = t.numpy()
        res[name] = a.astype(np.int32) if name.endswith(".indices") else a.astype(np.float32)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="checkpoint folder (config.json + safetensors)")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids, e.g. 0,17,345")
    ap.add_argument("--out", required=True, help="output .safetensors file")
    ap.add_argument("--mtp", action="store_true", help="also run the MTP layer (mtp_logits)")
    ap.add_argument("--absorbed", action="store_true", help="use the absorbed MLA form (same result)")
    ap.add_argument("--official-bf16", action="store_true",
                    help="round to BF16 where the official inference does (the reference for --numerics bf16)")
    ap.add_argument("--official-fp8", action="store_true",
                    help="--official-bf16, with FP8 weights multiplied as the official gemm_impl 'fp8' does "
                         "(activations quantized per 128 channels to e4m3; the reference for --numerics fp8)")
    args = ap.parse_args(argv)
    global OFFICIAL_BF16, OFFICIAL_FP8, UE8M0, CFG_BLOCK
    OFFICIAL_BF16 = args.official_bf16 or args.official_fp8
    OFFICIAL_FP8 = args.official_fp8
    try:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    except ValueError:
        raise SystemExit(f"--tokens: expected comma-separated integers, got {args.tokens!r}")
    ck = Checkpoint(args.model)
    CFG_BLOCK = ck.cfg.block
    UE8M0 = ck.cfg.scale_fmt == "ue8m0"
    write_safetensors(args.out, to_numpy_outputs(forward(ck, tokens, args.mtp, args.absorbed)))


if __name__ == "__main__":
    main()
