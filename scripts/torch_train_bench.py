#!/usr/bin/python3
"""What a user would run instead of `dsv3 train`: a PyTorch fp32 training step of the same
DeepSeek-V3 model, timed, for the side-by-side in docs/training.md.

Our own batched PyTorch model written from a config.json (not DeepSeek's code): MLA with
q-LoRA and interleaved RoPE, dense first layers, DeepSeekMoE with sigmoid scores,
group-limited top-k selection by score + gate bias (the bias selects, never weights),
normalized top-k weights times routed_scaling_factor, shared experts, one MTP module
(concat [norm(emb(t+1)); norm(h_t)] -> eh_proj -> block -> shared norm -> the tied head);
loss = CE + mtp_weight * MTP CE; autograd; torch.optim.AdamW; torch.set_num_threads.

    /usr/bin/python3 scripts/torch_train_bench.py --config scripts/kjv/config.json \\
        [--batch 16] [--seq 256] [--steps 6] [--threads 2]

Prints one JSON line: tokens/s over the timed steps (the first step is a warm-up, not
timed), the loss of each step, the torch version and thread count."""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def linear(i, o):
    return nn.Linear(i, o, bias=False)


def rope_freqs(c):
    # YaRN as DeepSeek-V3 applies it (the frequencies only; the mscale enters the softmax scale).
    dim, base = c["qk_rope_head_dim"], c.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    rs = c.get("rope_scaling") or {}
    if rs:
        factor, orig = rs["factor"], rs["original_max_position_embeddings"]
        fast, slow = rs.get("beta_fast", 32), rs.get("beta_slow", 1)

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))
        lo, hi = max(math.floor(corr(fast)), 0), min(math.ceil(corr(slow)), dim - 1)
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float64) - lo) / max(hi - lo, 1e-3), 0, 1)
        freqs = freqs / factor * ramp + freqs * (1 - ramp)
    return freqs


def softmax_scale(c):
    s = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    scale = s ** -0.5
    rs = c.get("rope_scaling") or {}
    if rs and rs.get("mscale_all_dim"):
        m = 0.1 * rs["mscale_all_dim"] * math.log(rs["factor"]) + 1.0 if rs["factor"] > 1 else 1.0
        scale *= m * m
    return scale


def apply_rope(x, cos, sin):
    # Interleaved pairs (x[2i], x[2i+1]), as DeepSeek-V3's checkpoints lay them out.
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class MLA(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, H = c["hidden_size"], c["num_attention_heads"]
        self.H, self.nope, self.rope, self.v = H, c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        self.R, self.q_lora = c["kv_lora_rank"], c.get("q_lora_rank") or 0
        qk = self.nope + self.rope
        if self.q_lora:
            self.q_a = linear(D, self.q_lora)
            self.q_a_norm = RMSNorm(self.q_lora, c["rms_norm_eps"])
            self.q_b = linear(self.q_lora, H * qk)
        else:
            self.q = linear(D, H * qk)
        self.kv_a = linear(D, self.R + self.rope)
        self.kv_a_norm = RMSNorm(self.R, c["rms_norm_eps"])
        self.kv_b = linear(self.R, H * (self.nope + self.v))
        self.o = linear(H * self.v, D)
        self.scale = softmax_scale(c)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_b(self.q_a_norm(self.q_a(x))) if self.q_lora else self.q(x)
        q = q.view(B, T, self.H, -1)
        q_nope, q_pe = q.split([self.nope, self.rope], -1)
        q_pe = apply_rope(q_pe, cos[:, None], sin[:, None])
        kv = self.kv_a(x)
        c, k_pe = kv.split([self.R, self.rope], -1)
        k_pe = apply_rope(k_pe, cos, sin)[:, :, None].expand(B, T, self.H, self.rope)
        kv = self.kv_b(self.kv_a_norm(c)).view(B, T, self.H, -1)
        k_nope, v = kv.split([self.nope, self.v], -1)
        qh = torch.cat([q_nope, q_pe], -1).transpose(1, 2)
        kh = torch.cat([k_nope, k_pe], -1).transpose(1, 2)
        s = (qh @ kh.transpose(-1, -2)) * self.scale + mask
        o = torch.softmax(s, -1) @ v.transpose(1, 2)
        return self.o(o.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, D, inter):
        super().__init__()
        self.gate, self.up, self.down = linear(D, inter), linear(D, inter), linear(inter, D)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class MoE(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, I = c["hidden_size"], c["moe_intermediate_size"]
        self.E, self.K = c["n_routed_experts"], c["num_experts_per_tok"]
        self.groups, self.topk_groups = c.get("n_group") or 1, c.get("topk_group") or 1
        self.rsf, self.norm = c["routed_scaling_factor"], c.get("norm_topk_prob", True)
        self.gate = linear(D, self.E)
        self.register_buffer("bias", torch.zeros(self.E))
        self.experts = nn.ModuleList([MLP(D, I) for _ in range(self.E)])
        self.shared = MLP(D, I * c["n_shared_experts"]) if c.get("n_shared_experts") else None

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        s = torch.sigmoid(self.gate(x))
        with torch.no_grad():
            choice = s + self.bias
            g = choice.view(-1, self.groups, self.E // self.groups).topk(2, -1).values.sum(-1)
            keep = torch.zeros_like(g).scatter_(1, g.topk(self.topk_groups, -1).indices, 1.0)
            choice = choice.masked_fill(keep.repeat_interleave(self.E // self.groups, 1) == 0, float("-inf"))
            idx = choice.topk(self.K, -1).indices
        w = s.gather(1, idx)
        if self.norm:
            w = w / w.sum(-1, keepdim=True)
        w = w * self.rsf
        out = torch.zeros_like(x)
        for e in range(self.E):
            rows, slot = (idx == e).nonzero(as_tuple=True)
            if rows.numel():
                out = out.index_add(0, rows, self.experts[e](x[rows]) * w[rows, slot, None])
        if self.shared is not None:
            out = out + self.shared(x)
        return out.view(shape)


class Block(nn.Module):
    def __init__(self, c, moe):
        super().__init__()
        self.n1, self.n2 = RMSNorm(c["hidden_size"], c["rms_norm_eps"]), RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.attn = MLA(c)
        self.mlp = MoE(c) if moe else MLP(c["hidden_size"], c["intermediate_size"])

    def forward(self, h, cos, sin, mask):
        h = h + self.attn(self.n1(h), cos, sin, mask)
        return h + self.mlp(self.n2(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, V, L = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"]
        moe = lambda i: c.get("n_routed_experts") and i >= c.get("first_k_dense_replace", 0) and i % c.get("moe_layer_freq", 1) == 0
        self.embed = nn.Embedding(V, D)
        self.layers = nn.ModuleList([Block(c, moe(i)) for i in range(L)])
        self.norm = RMSNorm(D, c["rms_norm_eps"])
        self.head = linear(D, V)
        self.mtp = c.get("num_nextn_predict_layers", 0) > 0
        if self.mtp:
            self.enorm, self.hnorm = RMSNorm(D, c["rms_norm_eps"]), RMSNorm(D, c["rms_norm_eps"])
            self.eh_proj = linear(2 * D, D)
            self.mtp_block = Block(c, moe(L))
            self.mtp_norm = RMSNorm(D, c["rms_norm_eps"])
        self.register_buffer("freqs", rope_freqs(c).float())

    def forward(self, tokens, mtp_weight):
        B, T = tokens.shape
        x, y = tokens[:, :-1], tokens[:, 1:]
        n = T - 1
        ang = torch.arange(n, dtype=torch.float32)[:, None] * self.freqs[None]
        cos, sin = ang.cos(), ang.sin()
        mask = torch.full((n, n), float("-inf")).triu(1)
        h = self.embed(x)
        for blk in self.layers:
            h = blk(h, cos, sin, mask)
        hf = self.norm(h)
        loss = F.cross_entropy(self.head(hf).reshape(-1, self.head.out_features), y.reshape(-1))
        if self.mtp and mtp_weight > 0:
            m = n - 1
            cat = torch.cat([self.enorm(self.embed(tokens[:, 1:m + 1])), self.hnorm(hf[:, :m])], -1)
            mh = self.mtp_block(self.eh_proj(cat), cos[:m], sin[:m], mask[:m, :m])
            logits = self.head(self.mtp_norm(mh))
            loss = loss + mtp_weight * F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 2:m + 2].reshape(-1))
        return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256, help="predicted tokens per sequence (windows of seq + 1)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mtp-weight", type=float, default=0.3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    c = json.load(open(a.config))
    model = Model(c)
    for p in model.parameters():
        if p.dim() >= 2:
            nn.init.normal_(p, std=0.02)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    losses, t0 = [], None
    for step in range(a.steps + 1):
        if step == 1:
            t0 = time.perf_counter()
        tokens = torch.randint(0, c["vocab_size"], (a.batch, a.seq + 1))
        loss = model(tokens, a.mtp_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(round(float(loss), 4))
    dt = time.perf_counter() - t0
    print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "threads": a.threads,
                      "tokens_per_s": a.steps * a.batch * a.seq / dt, "seconds": dt, "losses": losses}))


if __name__ == "__main__":
    main()
