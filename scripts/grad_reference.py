#!/usr/bin/python3
"""Float64 PyTorch autograd reference of the training loss and every parameter gradient.

Runs the forward pass of scripts/reference.py (our own float64 reference, written from the
model's definition) with every trainable checkpoint tensor as a leaf that requires grad, and
differentiates

    loss = mean CE(next token) + mtp_weight * mean CE(MTP, positions 0..T-3)
           + balance_alpha * sum over main-model MoE layers of sum_i f_i P_i

(f_i = N_r / (K_r T) * #tokens choosing i, a constant; P_i = mean over tokens of the
sigmoid score of i normalised over all routed experts). The MTP layer's copies of the
embedding and head are tied to model.embed_tokens / lm_head; e_score_correction_bias only
selects experts and is not trainable. FP8 weights are differentiated as their dequantised
values.

    /usr/bin/python3 scripts/grad_reference.py --model DIR --tokens 0,17,345 --out FILE.safetensors \
        [--mtp-weight L] [--balance-alpha A]

Output (F32): `loss` [1], `main_ce`, `mtp_ce`, `balance` [1], and the gradient of every
trainable tensor under its checkpoint name (zeros for tensors the sequence never reaches).
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


class LeafCheckpoint(reference.Checkpoint):
    """Every trainable tensor is read once and handed out as the same autograd leaf."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        n = self.cfg.num_hidden_layers
        self.tied = {f"model.layers.{n}.embed_tokens.weight": "model.embed_tokens.weight",
                     f"model.layers.{n}.shared_head.head.weight": "lm_head.weight"}
        self.leaves = {}

    def trainable(self, name):
        return not (name.endswith("_scale_inv") or name.endswith("e_score_correction_bias") or name in self.tied)

    def get(self, name):
        name = self.tied.get(name, name)
        if not self.trainable(name):
            return super().get(name)
        if name not in self.leaves:
            self.leaves[name] = super().get(name).clone().requires_grad_(True)
        return self.leaves[name]


def sequence_loss(ck, tokens, mtp_weight, balance_alpha):
    """Returns (loss, main_ce, mtp_ce, balance) as float64 scalars with autograd graphs."""
    cfg = ck.cfg
    T = len(tokens)
    if T < 2 or (mtp_weight > 0 and T < 3):
        raise SystemExit("need at least 2 tokens (3 with --mtp-weight)")
    records = []  # (scores, chosen) per MoE layer in call order: main layers, then MTP
    original_route = reference.route

    def recording_route(logits, bias, cfg_):
        idx, w = original_route(logits, bias, cfg_)
        records.append((torch.sigmoid(logits), idx))
        return idx, w

    reference.route = recording_route
    try:
        out = reference.forward(ck, tokens, mtp=mtp_weight > 0)
    finally:
        reference.route = original_route
    tok = torch.tensor(tokens, dtype=torch.long)
    ce = torch.nn.functional.cross_entropy
    main_ce = ce(out["logits"][:-1], tok[1:])
    mtp_ce = ce(out["mtp_logits"][: T - 2], tok[2:]) if mtp_weight > 0 else torch.zeros((), dtype=torch.float64)
    n_main = sum(1 for i in range(cfg.num_hidden_layers) if cfg.is_moe_layer(i))
    balance = torch.zeros((), dtype=torch.float64)
    if cfg.scoring_func != "sigmoid" and balance_alpha:
        raise SystemExit("the balance loss is defined for sigmoid scoring")
    for s, idx in records[:n_main]:
        E, K = s.shape[1], idx.shape[1]
        counts = torch.bincount(idx.flatten(), minlength=E).to(torch.float64)
        f = counts * E / (K * T)
        P = (s / s.sum(-1, keepdim=True)).mean(0)
        balance = balance + (f * P).sum()
    loss = main_ce + mtp_weight * mtp_ce + balance_alpha * balance
    return loss, main_ce, mtp_ce, balance


def gradients(ck, tokens, mtp_weight, balance_alpha):
    """{name: numpy float64} with the loss terms first, then every trainable tensor."""
    loss, main_ce, mtp_ce, balance = sequence_loss(ck, tokens, mtp_weight, balance_alpha)
    loss.backward()
    res = {k: np.array([float(v)]) for k, v in
           (("loss", loss), ("main_ce", main_ce), ("mtp_ce", mtp_ce), ("balance", balance))}
    for name in sorted(ck.where):
        if not ck.trainable(name):
            continue
        leaf = ck.leaves.get(name)
        if leaf is not None and leaf.grad is not None:
            res[name] = leaf.grad.numpy()
        else:
            res[name] = np.zeros(ck.where[name].entries[name]["shape"])
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True)
    ap.add_argument("--mtp-weight", type=float, default=0.0)
    ap.add_argument("--balance-alpha", type=float, default=0.0)
    args = ap.parse_args(argv)
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    ck = LeafCheckpoint(args.model)
    res = gradients(ck, tokens, args.mtp_weight, args.balance_alpha)
    reference.write_safetensors(args.out, {k: v.astype(np.float32) for k, v in res.items()})


if __name__ == "__main__":
    main()
