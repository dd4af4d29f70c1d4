// The causal attention core of one head for training, in tiles of kAttentionTile queries x
// kAttentionTile keys (the FlashAttention scheme): the forward pass keeps a running max and
// sum per row and saves only each row's log-sum-exp; the backward pass recomputes each
// tile's probabilities from it. Memory is O(T) per head instead of the [T, T] probability
// matrix (1 GiB per head at 16K tokens), and tiles above the diagonal are never computed,
// which halves the work of the full-matrix form.
// Shapes (row-major, one head): q, k [T, qk]; v, o, do [T, vd]; lse [T].
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/context.h"

namespace dsv3::train {

inline constexpr int64_t kAttentionTile = 128;

//! Buffers a head's tiles reuse (sized on first use).
template <class S>
struct TileScratch {
  std::vector<S> s, dp, acc, m, l, d;
};

//! o = softmax(scale * q k^T, causal) v; lse[t] = log sum_j<=t exp(scale * q_t . k_j).
template <class S>
void attention_tile_forward(kernels::Context& ctx, int64_t T, int64_t qk, int64_t vd, S scale, const S* q, const S* k,
                            const S* v, S* o, S* lse, TileScratch<S>& scratch);

//! dq, dk, dv (overwritten) from do, given the forward's o and lse.
template <class S>
void attention_tile_backward(kernels::Context& ctx, int64_t T, int64_t qk, int64_t vd, S scale, const S* q, const S* k,
                             const S* v, const S* o, const S* d_o, const S* lse, S* dq, S* dk, S* dv,
                             TileScratch<S>& scratch);

}  // namespace dsv3::train
