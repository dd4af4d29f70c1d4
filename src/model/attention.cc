#include "model/attention.h"

#include <algorithm>

#include "kernels/matmul.h"
#include "model/ops.h"
#include "threading/pool.h"

namespace dsv3 {

AttentionForm choose_attention_form(const ModelConfig& c, int64_t T, int64_t start) {
  const double L = double(start + T), H = double(c.num_attention_heads), r = double(c.kv_lora_rank);
  const double nope = double(c.qk_nope_head_dim), rope = double(c.qk_rope_head_dim), v = double(c.v_head_dim);
  // Naive expands every cached latent through kv_b; absorbed pays per query instead.
  const double naive = L * H * (nope + v) * r + T * L * H * (nope + rope + v);
  const double absorbed = T * H * (nope + v) * r + T * L * H * (2 * r + rope);
  return naive < absorbed ? AttentionForm::Naive : AttentionForm::Absorbed;
}

void mla_forward(const ModelConfig& c, const AttentionWeights& a, const std::vector<double>& rope_freqs,
                 const float* x, int64_t T, int64_t start, KvCache& cache, int64_t layer, AttentionForm form,
                 float* out) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank, dim = c.latent_dim();
  const int64_t L = start + T;
  const float scale = float(c.softmax_scale());

  // Queries: [T, H, nope | rope].
  std::vector<float> q(size_t(T * H * qk));
  if (!a.q_a.empty()) {
    std::vector<float> qa(size_t(T * c.q_lora_rank));
    kernels::matmul(a.q_a, x, T, qa.data());
    for (int64_t t = 0; t < T; ++t)
      ops::rms_norm(&qa[t * c.q_lora_rank], a.q_a_norm.data(), c.q_lora_rank, c.rms_norm_eps, &qa[t * c.q_lora_rank]);
    kernels::matmul(a.q_b, qa.data(), T, q.data());
  } else {
    kernels::matmul(a.q, x, T, q.data());
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) ops::rope_interleaved(&q[(t * H + h) * qk + nope], rope, rope_freqs.data(), start + t);

  // New latents [c | k_pe] go straight into the cache.
  std::vector<float> kv(size_t(T * dim));
  kernels::matmul(a.kv_a, x, T, kv.data());
  for (int64_t t = 0; t < T; ++t) {
    float* dst = cache.at(layer, start + t);
    ops::rms_norm(&kv[t * dim], a.kv_a_norm.data(), R, c.rms_norm_eps, dst);
    std::copy(&kv[t * dim + R], &kv[t * dim + dim], dst + R);
    ops::rope_interleaved(dst + R, rope, rope_freqs.data(), start + t);
  }

  if (form == AttentionForm::Auto) form = choose_attention_form(c, T, start);
  std::vector<float> attn(size_t(T * H * vd));
  const float* lat0 = cache.at(layer, 0);  // latents of positions 0..L-1, `dim` apart
  ThreadPool& pool = ThreadPool::global();

  if (form == AttentionForm::Naive) {
    // K_nope and V for every cached position: [L, H, nope | v].
    const int64_t kvw = H * (nope + vd);
    std::vector<float> kvfull(size_t(L * kvw));
    pool.parallel_for(kvw, [&](int, int64_t r0, int64_t r1) {
      kernels::matmul_rows(a.kv_b, r0, r1, lat0, dim, L, kvfull.data() + r0, kvw);
    });
    pool.parallel_for(H, [&](int, int64_t h0, int64_t h1) {
      std::vector<float> p(static_cast<size_t>(L));
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t t = 0; t < T; ++t) {
          const float* qt = &q[(t * H + h) * qk];
          const int64_t n = start + t + 1;  // causal
          for (int64_t j = 0; j < n; ++j)
            p[j] = (kernels::dot(qt, &kvfull[j * kvw + h * (nope + vd)], nope) +
                    kernels::dot(qt + nope, lat0 + j * dim + R, rope)) * scale;
          ops::softmax(p.data(), n);
          float* o = &attn[(t * H + h) * vd];
          std::fill(o, o + vd, 0.0f);
          for (int64_t j = 0; j < n; ++j) {
            const float* vj = &kvfull[j * kvw + h * (nope + vd) + nope];
            for (int64_t i = 0; i < vd; ++i) o[i] += p[j] * vj[i];
          }
        }
    });
  } else {
    pool.parallel_for(H, [&](int, int64_t h0, int64_t h1) {
      std::vector<float> qabs(static_cast<size_t>(T * R)), olat(static_cast<size_t>(T * R)), p(static_cast<size_t>(L));
      for (int64_t h = h0; h < h1; ++h) {
        const int64_t row_k = h * (nope + vd), row_v = row_k + nope;
        // q_nope . (W_kb c) == (W_kb^T q_nope) . c: the query moves into latent space.
        kernels::matmul_t_rows(a.kv_b, row_k, row_k + nope, &q[h * qk], H * qk, T, qabs.data(), R);
        for (int64_t t = 0; t < T; ++t) {
          const float* qt = &q[(t * H + h) * qk];
          const int64_t n = start + t + 1;
          for (int64_t j = 0; j < n; ++j)
            p[j] = (kernels::dot(&qabs[t * R], lat0 + j * dim, R) + kernels::dot(qt + nope, lat0 + j * dim + R, rope)) *
                   scale;
          ops::softmax(p.data(), n);
          float* o = &olat[t * R];
          std::fill(o, o + R, 0.0f);
          for (int64_t j = 0; j < n; ++j) {
            const float* cj = lat0 + j * dim;
            for (int64_t i = 0; i < R; ++i) o[i] += p[j] * cj[i];
          }
        }
        // Values come out of latent space through kv_b's v rows.
        kernels::matmul_rows(a.kv_b, row_v, row_v + vd, olat.data(), R, T, &attn[h * vd], H * vd);
      }
    });
  }
  kernels::matmul(a.o, attn.data(), T, out);
}

}  // namespace dsv3
