// Multi-head latent attention (MLA) of one layer over a latent KV cache.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "model/weights.h"

namespace dsv3 {

//! x: [T, hidden] (already input-normed) at positions start .. start+T-1. Appends the T
//! tokens' latents to cache layer `cache_layer` and writes out: [T, hidden].
void mla_forward(const ModelConfig& c, const AttentionWeights& a, const std::vector<double>& rope_freqs,
                 const float* x, int64_t T, int64_t start, KvCache& cache, int64_t cache_layer, AttentionForm form,
                 float* out);

//! The form Auto picks for T new tokens after `start` cached ones (fewer multiply-adds).
AttentionForm choose_attention_form(const ModelConfig& c, int64_t T, int64_t start);

}  // namespace dsv3
