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

namespace {

// Absorbed MLA over the latent cache. Every cached latent is read once per call, not once
// per head: scores are split across threads by key position, outputs by latent column, and
// each value is summed in a fixed order, so the result does not depend on the thread count.
void absorbed_attention(const ModelConfig& c, const AttentionWeights& a, const float* q, int64_t T, int64_t start,
                        const float* lat0, float scale, float* attn) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank, dim = c.latent_dim();
  const int64_t L = start + T;
  ThreadPool& pool = ThreadPool::global();

  // q_nope . (W_kb c) == (W_kb^T q_nope) . c: the query moves into latent space. [T, H, R]
  std::vector<float> qabs(static_cast<size_t>(T * H * R));
  pool.parallel_for(H, [&](int, int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t row_k = h * (nope + vd);
      kernels::matmul_t_rows(a.kv_b, row_k, row_k + nope, q + h * qk, H * qk, T, &qabs[h * R], H * R);
    }
  });

  // Queries in chunks so the score matrix stays small at long contexts.
  const int64_t tq = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(1) << 22) / std::max<int64_t>(1, H * L)));
  std::vector<float> p, olat;
  for (int64_t t0 = 0; t0 < T; t0 += tq) {
    const int64_t nt = std::min(tq, T - t0), NQ = nt * H;
    p.assign(static_cast<size_t>(NQ * L), 0.0f);
    pool.parallel_for(L, [&](int, int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const float* cj = lat0 + j * dim;
        for (int64_t t = 0; t < nt; ++t) {
          if (j > start + t0 + t) continue;  // causal
          for (int64_t h = 0; h < H; ++h) {
            const int64_t qi = t * H + h;
            p[size_t(qi * L + j)] = (kernels::dot(&qabs[size_t(((t0 + t) * H + h) * R)], cj, R) +
                                     kernels::dot(q + ((t0 + t) * H + h) * qk + nope, cj + R, rope)) *
                                    scale;
          }
        }
      }
    });
    pool.parallel_for(NQ, [&](int, int64_t q0, int64_t q1) {
      for (int64_t qi = q0; qi < q1; ++qi) ops::softmax(&p[size_t(qi * L)], start + t0 + qi / H + 1);
    });
    olat.assign(static_cast<size_t>(NQ * R), 0.0f);
    pool.parallel_for(R, [&](int, int64_t c0, int64_t c1) {
      for (int64_t t = 0; t < nt; ++t) {
        const int64_t n = start + t0 + t + 1;
        for (int64_t j = 0; j < n; ++j) {
          const float* cj = lat0 + j * dim + c0;
          for (int64_t h = 0; h < H; ++h) {
            const int64_t qi = t * H + h;
            kernels::axpy(p[size_t(qi * L + j)], cj, &olat[size_t(qi * R + c0)], c1 - c0);
          }
        }
      }
    });
    // Values come out of latent space through kv_b's v rows.
    pool.parallel_for(H, [&](int, int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) {
        const int64_t row_v = h * (nope + vd) + nope;
        kernels::matmul_rows(a.kv_b, row_v, row_v + vd, &olat[size_t(h * R)], H * R, nt, &attn[(t0 * H + h) * vd],
                             H * vd);
      }
    });
  }
}

}  // namespace

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
    absorbed_attention(c, a, q.data(), T, start, lat0, scale, attn.data());
  }
  kernels::matmul(a.o, attn.data(), T, out);
}

}  // namespace dsv3
