// Multi-head latent attention (MLA) of one layer over latent KV caches, for a batch of
// sequences whose rows are stacked: the projections read each weight once for all rows,
// attention itself stays within each sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/latent_store.h"
#include "model/weights.h"
#include "model/workspace.h"

namespace dsv3::model {

//! How attention is computed. Both give the same result (tested); they differ in cost.
enum class AttentionForm {
  Auto,      // choose per call by a cost rule (naive for long prefills, absorbed for decode)
  Naive,     // expand the latent cache to per-head K/V through kv_b, then attend
  Absorbed,  // fold kv_b into the query and the output; attend over the 576-value latents
};

//! Rows row0 .. row0+T-1 of the stacked input are one sequence's tokens at positions
//! start .. start+T-1; its latents live in `cache`.
struct AttnSeq {
  int64_t row0 = 0, T = 0, start = 0;
  LatentStore* cache = nullptr;
  AttentionForm form = AttentionForm::Auto;  // Auto: the form the call names
};

//! x: [rows, hidden] (already input-normed). Appends each sequence's new latents to its
//! cache at layer `cache_layer` and writes out: [rows, hidden]. With a fixed form (not Auto)
//! every row's result is bit-identical whatever else is in the batch.
void mla_attention(Workspace& ws, const ModelConfig& c, const AttentionWeights& a,
                   const std::vector<double>& rope_freqs, const float* x, int64_t rows,
                   const std::vector<AttnSeq>& seqs, int64_t cache_layer, AttentionForm form, float* out);

//! The form Auto picks for T new tokens after `start` cached ones (fewer multiply-adds).
AttentionForm choose_attention_form(const ModelConfig& c, int64_t T, int64_t start);

}  // namespace dsv3::model
