// Multi-head latent attention (MLA) of one layer over latent KV caches, for a batch of
// sequences whose rows are stacked: the projections read each weight once for all rows,
// attention itself stays within each sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/latent_store.h"
#include "model/model.h"
#include "model/weights.h"

namespace dsv3::model {

//! Rows row0 .. row0+T-1 of the stacked input are one sequence's tokens at positions
//! start .. start+T-1; its latents live in `cache`.
struct AttnSeq {
  int64_t row0 = 0, T = 0, start = 0;
  LatentStore* cache = nullptr;
};

//! x: [rows, hidden] (already input-normed). Appends each sequence's new latents to its
//! cache at layer `cache_layer` and writes out: [rows, hidden]. With a fixed form (not Auto)
//! every row's result is bit-identical whatever else is in the batch.
void mla_attention(const ModelConfig& c, const AttentionWeights& a, const std::vector<double>& rope_freqs,
                 const float* x, int64_t rows, const std::vector<AttnSeq>& seqs, int64_t cache_layer,
                 AttentionForm form, float* out);

//! The form Auto picks for T new tokens after `start` cached ones (fewer multiply-adds).
AttentionForm choose_attention_form(const ModelConfig& c, int64_t T, int64_t start);

}  // namespace dsv3::model
