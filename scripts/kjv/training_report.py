#!/usr/bin/env python3
"""Write the figures of a `dsv3 train` run as Markdown (the body of default-model/TRAINING.md).

usage: training_report.py METRICS.jsonl CONFIG.json WALL_SECONDS INSPECT.txt [PEAK_GFLOPS]

INSPECT.txt is `dsv3 inspect` output for the export (its parameter line is quoted as is).
Model FLOPs per trained token: 6 x the weights each token multiplies (attention and MLP
projections of the experts it is routed to, the output head, the MTP module) plus the
causal attention products, 6 x heads x (qk + v dims) x seq_len / 2 per layer: the usual
6N + attention count; the embedding lookup is no multiply. MFU divides the achieved model
FLOP/s by the machine's fp32 FMA peak (`dsv3 bench` measures it: 428 GFLOP/s here).
"""
import json
import math
import sys


def flops_per_token(c, seq_len):
    d, heads = c["hidden_size"], c["num_attention_heads"]
    nope, rope, vdim = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    qr, kvr = c["q_lora_rank"], c["kv_lora_rank"]
    attn = d * qr + qr * heads * (nope + rope) + d * (kvr + rope) + kvr * heads * (nope + vdim) + heads * vdim * d
    expert = 3 * d * c["moe_intermediate_size"]
    moe = c["n_routed_experts"] * d + (c["num_experts_per_tok"] + c["n_shared_experts"]) * expert
    dense = 3 * d * c["intermediate_size"]
    layers = c["num_hidden_layers"]
    n_dense = c["first_k_dense_replace"]
    head = c["vocab_size"] * d
    weights = n_dense * (attn + dense) + (layers - n_dense) * (attn + moe) + head
    mtp = c.get("num_nextn_predict_layers", 0)
    weights += mtp * (2 * d * d + attn + moe + head)
    attn_products = (layers + mtp) * heads * (nope + rope + vdim) * seq_len / 2
    return 6 * weights + 6 * attn_products, weights


def main():
    metrics_path, config_path, wall, inspect_path = sys.argv[1:5]
    peak = float(sys.argv[5]) if len(sys.argv) > 5 else 428.0
    wall = float(wall)
    rows = [json.loads(l) for l in open(metrics_path) if l.strip()]
    train = [r for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    run = json.load(open(metrics_path.rsplit("/", 1)[0] + "/run.json"))
    c = json.load(open(config_path))
    seq_len = run["seq_len"]
    per_token, active_weights = flops_per_token(c, seq_len)
    last = train[-1]
    tokens = last["tokens"]
    tok_s = tokens / wall
    mfu = per_token * tok_s / (peak * 1e9)
    tail = train[-20:]
    params = next((l.strip() for l in open(inspect_path) if l.startswith("parameters")), "?")
    ev = evals[-1]
    out = []
    out.append("| figure | value |\n|---|---|")
    out.append(f"| parameters (`dsv3 inspect`) | {params.split(None, 1)[1]} |")
    out.append(f"| weights multiplied per trained token (incl. output heads and MTP) | {active_weights / 1e6:.2f} M |")
    out.append(f"| steps x batch | {last['step']} x {run['batch_size'] * run.get('grad_accum', 1)} sequences of {seq_len} tokens |")
    out.append(f"| tokens trained | {tokens:,} ({tokens / 1e6:.2f} M) |")
    out.append(f"| wall time | {wall / 60:.1f} min ({wall:.0f} s) |")
    out.append(f"| throughput | {tok_s:.0f} tokens/s |")
    out.append(f"| model FLOPs per token | {per_token / 1e6:.1f} M (6N + attention) |")
    own = sorted(r["mfu"] for r in train if r.get("mfu") is not None)
    if not own:  # runs from before the trainer reported MFU
        out.append(f"| MFU | {100 * mfu:.1f}% of {peak:.0f} GFLOP/s fp32 FMA peak ({per_token * tok_s / 1e9:.1f} GFLOP/s) |")
    if run.get("precision", "fp32") != "fp32":
        out.append(f"| precision | {run['precision']} (docs/training.md, Precision) |")
    if own:
        out.append(f"| MFU the trainer reported (median of its train lines; its own FLOP count, "
                   f"against the peak it probed for this precision) | {own[len(own) // 2]:.3f} |")
    out.append(f"| final train loss (main-head CE, mean of last {len(tail)} steps) | "
               f"{sum(r['main_ce'] for r in tail) / len(tail):.3f} (last step {last['main_ce']:.3f}) |")
    out.append(f"| final MTP loss (mean of last {len(tail)} steps) | {sum(r['mtp_ce'] for r in tail) / len(tail):.3f} |")
    out.append(f"| held-out loss (step {ev['step']}, {ev['eval_tokens']} tokens) | {ev['eval_loss']:.3f} |")
    out.append(f"| held-out perplexity | {ev['eval_perplexity']:.1f} |")
    vio_last = last["maxvio"]
    vio_mean = [sum(r["maxvio"][i] for r in tail) / len(tail) for i in range(len(vio_last))]
    moe_layers = [i for i in range(c["first_k_dense_replace"], c["num_hidden_layers"])]
    names = [f"layer {i}" for i in moe_layers] + [f"MTP (layer {c['num_hidden_layers']})"] * c.get("num_nextn_predict_layers", 0)
    names = names[:len(vio_last)] + [f"#{i}" for i in range(len(names), len(vio_last))]
    out.append("\nExpert-load MaxVio (max expert load / mean load - 1, over a step's "
               f"{seq_len * run['batch_size'] * run.get('grad_accum', 1)} tokens):\n")
    out.append("| MoE layer | last step | mean of last %d steps | first step |\n|---|---|---|---|" % len(tail))
    for i, n in enumerate(names):
        out.append(f"| {n} | {vio_last[i]:.3f} | {vio_mean[i]:.3f} | {train[0]['maxvio'][i]:.3f} |")
    out.append("\nEvaluations (held-out books):\n")
    out.append("| step | tokens | held-out loss | perplexity |\n|---|---|---|---|")
    tokens_at = {r["step"]: r["tokens"] for r in train}
    for r in evals:
        out.append(f"| {r['step']} | {tokens_at.get(r['step'], 0):,} | {r['eval_loss']:.3f} | {r['eval_perplexity']:.1f} |")
    print("\n".join(out))
    if not all(math.isfinite(r["main_ce"]) for r in train):
        sys.exit("non-finite loss in the metrics")


if __name__ == "__main__":
    main()
