#!/usr/bin/python3
"""Float64 PyTorch autograd reference of the training loss and every parameter gradient.

Runs the forward pass of scripts/reference.py (our own float64 reference, written from the
model's definition) with every trainable checkpoint tensor as a leaf that requires grad, and
differentiates

    loss = main + mtp_weight * mean CE(MTP, positions 0..T-3)
           + balance_alpha * sum over main-model MoE layers of sum_i f_i P_i
    main = mean CE(next token), or with a teacher (logit distillation)
           (1 - w) mean CE + w T^2 mean KL(softmax(teacher / T) || softmax(student / T))

With --mask (0/1 per predicted token) the means run over the counted predictions only, the
MTP head's over mask[1:] (its prediction of token i + 2 counts when mask[i + 1] does). The
teacher's logits come from the same reference forward pass on the teacher checkpoint.

(f_i = N_r / (K_r T) * #tokens choosing i, a constant; P_i = mean over tokens of the
sigmoid score of i normalised over all routed experts). The MTP layer's copies of the
embedding and head are tied to model.embed_tokens / lm_head; e_score_correction_bias only
selects experts and is not trainable. FP8 weights are differentiated as their dequantised
values.

    /usr/bin/python3 scripts/grad_reference.py --model DIR --tokens 0,17,345 --out FILE.safetensors \
        [--mtp-weight L] [--balance-alpha A] [--mask 0,1,1] [--teacher DIR --kd-weight W --kd-temperature T]

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


def masked_mean(rows, mask):
    if mask is None:
        return rows.mean()
    m = torch.tensor(mask, dtype=torch.float64)
    return (rows * m).sum() / m.sum() if m.sum() > 0 else (rows * 0).sum()


def sequence_loss(ck, tokens, mtp_weight, balance_alpha, mask=None, teacher=None, kd_weight=0.5, kd_temperature=2.0):
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
    main_ce = masked_mean(ce(out["logits"][:-1], tok[1:], reduction="none"), mask)
    main = main_ce
    if teacher is not None:
        with torch.no_grad():
            t_logits = reference.forward(teacher, tokens, mtp=False)["logits"][:-1]
        Tk = kd_temperature
        log_ps = torch.log_softmax(out["logits"][:-1] / Tk, -1)
        log_pt = torch.log_softmax(t_logits / Tk, -1)
        kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)
        main = (1 - kd_weight) * main_ce + kd_weight * Tk * Tk * masked_mean(kl, mask)
    mtp_ce = (masked_mean(ce(out["mtp_logits"][: T - 2], tok[2:], reduction="none"), None if mask is None else mask[1:])
              if mtp_weight > 0 else torch.zeros((), dtype=torch.float64))
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
    loss = main + mtp_weight * mtp_ce + balance_alpha * balance
    return loss, main_ce, mtp_ce, balance


def gradients(ck, tokens, mtp_weight, balance_alpha, **loss_options):
    """{name: numpy float64} with the loss terms first, then every trainable tensor."""
    loss, main_ce, mtp_ce, balance = sequence_loss(ck, tokens, mtp_weight, balance_alpha, **loss_options)
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
    ap.add_argument("--mask", default="", help="comma-separated 0/1 per predicted token")
    ap.add_argument("--teacher", default="", help="teacher checkpoint folder (logit distillation)")
    ap.add_argument("--kd-weight", type=float, default=0.5)
    ap.add_argument("--kd-temperature", type=float, default=2.0)
    args = ap.parse_args(argv)
    tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    mask = [int(m) for m in args.mask.split(",") if m.strip()] if args.mask else None
    ck = LeafCheckpoint(args.model)
    teacher = reference.Checkpoint(args.teacher) if args.teacher else None
    res = gradients(ck, tokens, args.mtp_weight, args.balance_alpha, mask=mask, teacher=teacher,
                    kd_weight=args.kd_weight, kd_temperature=args.kd_temperature)
    reference.write_safetensors(args.out, {k: v.astype(np.float32) for k, v in res.items()})


if __name__ == "__main__":
    main()
