#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/bf16.h"
#include "kernels/matmul.h"
#include "kernels/vector_ops.h"
#include "model/ops.h"

namespace dsv3::model {

AttentionForm choose_attention_form(const ModelConfig& c, int64_t T, int64_t start) {
  const double L = double(start + T), H = double(c.num_attention_heads), r = double(c.kv_lora_rank);
  const double nope = double(c.qk_nope_head_dim), rope = double(c.qk_rope_head_dim), v = double(c.v_head_dim);
  // Naive expands every cached latent through kv_b; absorbed pays per query instead.
  const double naive = L * H * (nope + v) * r + T * L * H * (nope + rope + v);
  const double absorbed = T * H * (nope + v) * r + T * L * H * (2 * r + rope);
  return naive < absorbed ? AttentionForm::Naive : AttentionForm::Absorbed;
}

namespace {

// Absorbed MLA for one sequence, in latent space. q: its [T, H, qk] queries, qabs: its
// [T, H, R] queries folded through kv_b's k rows, lat[j]: the latent row of position j.
// Writes olat [T, H, R], the attention-weighted latents. Every cached latent is read once
// per call, not once per head: scores are split across threads by key position, outputs by
// latent column, and each value is summed in a fixed order, so the result depends neither
// on the thread count nor on the rest of the batch.
void absorbed_latent_attention(Workspace& ws, const ModelConfig& c, const float* q, const float* qabs, int64_t T,
                               int64_t start, const std::vector<const float*>& lat, float scale, float* olat) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), R = c.kv_lora_rank;
  const int64_t L = start + T;
  ThreadPool& pool = ws.kernels.pool();

  // Queries in chunks so the score matrix stays small at long contexts.
  const int64_t tq = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(1) << 22) / std::max<int64_t>(1, H * L)));
  // Kept in the workspace: a fresh megabyte per call costs page faults.
  float* const p = ws.scores.get(size_t(std::min(tq, T) * H * L));  // read only where written below
  for (int64_t t0 = 0; t0 < T; t0 += tq) {
    const int64_t nt = std::min(tq, T - t0), NQ = nt * H;
    pool.parallel_for(L, [&](int, int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t t = 0; t < nt; ++t) {
          if (j > start + t0 + t) continue;  // causal
          kernels::latent_scores(&qabs[size_t((t0 + t) * H * R)], R, q + (t0 + t) * H * qk + nope, qk, H, R, rope,
                                 lat[size_t(j)], scale, &p[size_t(t * H * L + j)], L);
        }
    });
    pool.parallel_for(NQ, [&](int, int64_t q0, int64_t q1) {
      for (int64_t qi = q0; qi < q1; ++qi) ops::softmax(&p[size_t(qi * L)], start + t0 + qi / H + 1);
    });
    float* ol = olat + t0 * H * R;
    pool.parallel_for(R, [&](int, int64_t c0, int64_t c1) {
      for (int64_t t = 0; t < nt; ++t)
        kernels::weighted_rows(&p[size_t(t * H * L)], L, H, lat.data(), start + t0 + t + 1, c0, c1,
                               &ol[size_t(t * H * R + c0)], R);
    });
  }
}

// Row r of a cached latent as BF16: a BF16 store's as it is; an fp32 store in bf16 numerics
// holds BF16-rounded values, so rounding gives them back exactly.
inline void to_bf16(const uint16_t* row, int64_t n, uint16_t* out) { std::copy_n(row, n, out); }
inline void to_bf16(const float* row, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = kernels::bf16_round(row[i]);
}

// Absorbed MLA for one sequence in the official inference's BF16 numerics: each query row's
// absorbed and rope queries rounded to BF16 attend over fixed blocks of cached rows
// (kernels::latent_block_bf16: BF16 products, fp32 sums, a block's rows read once for its
// scores and its values), the blocks spread over the threads and combined in block order by
// their maxima. Writes olat [T, H, R]. The results depend neither on the thread count nor on
// the batch, and a row's results are the same in a prefill, a verify step or a decode step.
template <class E>
void absorbed_bf16_attention(Workspace& ws, const ModelConfig& c, const float* q, const float* qabs, int64_t T,
                             int64_t start, const std::vector<const E*>& lat, float scale, float* olat) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), R = c.kv_lora_rank, dim = c.latent_dim();
  const int64_t Dp = (dim + 31) / 32 * 32, B = kernels::kLatentBlockRows;
  kernels::Context& kc = ws.kernels;
  std::vector<uint16_t>& qb = ws.q_bf16;
  qb.assign(size_t(T * H * Dp), 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      uint16_t* d = &qb[size_t((t * H + h) * Dp)];
      for (int64_t i = 0; i < R; ++i) d[i] = kernels::bf16_round(qabs[(t * H + h) * R + i]);
      for (int64_t i = 0; i < rope; ++i) d[R + i] = kernels::bf16_round(q[(t * H + h) * qk + nope + i]);
    }
  // BF16 cache rows as long as the kernel's rows (Dp == dim, as in V3 and the bench preset)
  // are read in place: the kernel fetches each row pair ahead into L2 during the scores, and
  // its values pass finds the block there. Other rows (fp32 caches, or a latent width that
  // is not a multiple of 32) are first copied into one buffer of BF16 rows of Dp,
  // zero-padded.
  const bool in_place = std::is_same_v<E, uint16_t> && Dp == dim;
  std::vector<uint16_t>& zero = ws.zero_bf16;
  zero.assign(size_t(Dp), 0);
  const int64_t threads = kc.pool().size(), kMaxUnitHeads = 64;
  const size_t xb_floats = size_t((B + 1) * Dp + 1) / 2, s_floats = size_t(kMaxUnitHeads * (B + 1));
  const size_t ptr_floats = (size_t(B + 1) * sizeof(void*) + sizeof(float) - 1) / sizeof(float);
  const size_t need = ptr_floats + xb_floats + s_floats + (s_floats + 1) / 2;
  // Query rows go in chunks that bound the partial results (m, l, acc per head and block).
  const int64_t per_row = H * (R + 2) * ((start + T) / B + 2);
  const int64_t nt = std::clamp<int64_t>((int64_t(1) << 23) / per_row, 1, T);
  struct Job {
    int64_t t0, rows, b, nb;  // rows t0 .. t0 + rows - 1 (as rows * H heads) over block b
    size_t part;              // its results: m[heads], l[heads], acc[heads][R]
  };
  struct Unit {
    int64_t job, h0, hn;
  };
  std::vector<Job> jobs;
  std::vector<Unit> units;
  std::vector<int64_t> own(size_t(nt + 1));  // row c0 + i's own jobs: [own[i], own[i + 1])
  for (int64_t c0 = 0; c0 < T; c0 += nt) {
    const int64_t rows = std::min(nt, T - c0);
    // Blocks every row of the chunk sees whole are one job with the rows as extra heads
    // (each block read once for all of them); the rest, up to each row's own position,
    // are jobs of one row. A head's results do not depend on the others in its job, so a
    // row's results are the same in any chunk, batch or thread count.
    const int64_t full = (start + c0 + 1) / B;
    jobs.clear();
    size_t floats = 0;
    auto add = [&](int64_t t0, int64_t n, int64_t b) {
      jobs.push_back({t0, n, b, std::min(B, start + t0 + 1 - b * B), floats});
      floats += size_t(n * H * (R + 2));
    };
    for (int64_t b = 0; b < full; ++b) add(c0, rows, b);
    for (int64_t i = 0; i < rows; ++i) {
      own[size_t(i)] = int64_t(jobs.size());
      for (int64_t b = full; b * B < start + c0 + i + 1; ++b) add(c0 + i, 1, b);
    }
    own[size_t(rows)] = int64_t(jobs.size());
    // Units of at most kMaxUnitHeads heads, smaller when there are too few to keep every
    // core busy.
    int64_t heads = 0;
    for (const Job& jb : jobs) heads += jb.rows * H;
    const int64_t hp = std::clamp<int64_t>((heads + 2 * threads - 1) / (2 * threads), 1, kMaxUnitHeads);
    units.clear();
    for (int64_t k = 0; k < int64_t(jobs.size()); ++k)
      for (int64_t h0 = 0; h0 < jobs[size_t(k)].rows * H; h0 += hp)
        units.push_back({k, h0, std::min(hp, jobs[size_t(k)].rows * H - h0)});
    float* const parts = ws.scores.get(floats);
    kc.pool().parallel_for(int64_t(units.size()), [&](int th, int64_t u0, int64_t u1) {
      float* const scratch = kc.scratch(th, need);
      const uint16_t** const x = reinterpret_cast<const uint16_t**>(scratch);
      uint16_t* const xb = reinterpret_cast<uint16_t*>(scratch + ptr_floats);
      float* const sc = scratch + ptr_floats + xb_floats;
      uint16_t* const pb = reinterpret_cast<uint16_t*>(sc + s_floats);
      int64_t gathered = -1;  // the job whose block x points at
      for (int64_t u = u0; u < u1; ++u) {
        const Unit& un = units[size_t(u)];
        const Job& jb = jobs[size_t(un.job)];
        const int64_t j0 = jb.b * B;
        if (gathered != un.job) {
          if (in_place) {
            for (int64_t j = 0; j < jb.nb; ++j) x[j] = reinterpret_cast<const uint16_t*>(lat[size_t(j0 + j)]);
          } else {
            for (int64_t j = 0; j < jb.nb; ++j) {
              uint16_t* row = xb + j * Dp;
              to_bf16(lat[size_t(j0 + j)], dim, row);
              std::fill(row + dim, row + Dp, uint16_t(0));
              x[j] = row;
            }
            // The rows of this thread's next block start on their way to L2 while this one
            // computes, so its copy finds them there.
            if (u + 1 < u1 && units[size_t(u + 1)].job != un.job) {
              const Job& nx = jobs[size_t(units[size_t(u + 1)].job)];
              const int64_t line = 64 / int64_t(sizeof(E));
              for (int64_t j = 0; j < nx.nb; ++j)
                for (int64_t i = 0; i < dim; i += line) __builtin_prefetch(lat[size_t(nx.b * B + j)] + i, 0, 2);
            }
          }
          x[jb.nb] = zero.data();  // read only when nb is odd
          gathered = un.job;
        }
        const int64_t jh = jb.rows * H;  // the job's heads
        float* const pt = parts + jb.part;
        kernels::latent_block_bf16(&qb[size_t((jb.t0 * H + un.h0) * Dp)], un.hn, Dp, R, x, jb.nb, scale, sc, pb,
                                   pt + un.h0, pt + jh + un.h0, pt + 2 * jh + un.h0 * R);
      }
    });
    // Combine each row's blocks in block order: sum_b e^(m_b - M) acc_b / sum_b e^(m_b - M) l_b.
    kc.pool().parallel_for(rows * H, [&](int, int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t r = i / H, h = i % H;
        // fn(job, its head for row r, head h) over the row's blocks in order: the shared
        // ones, then its own.
        auto each_block = [&](auto&& fn) {
          for (int64_t k = 0; k < full; ++k) fn(jobs[size_t(k)], r * H + h);
          for (int64_t k = own[size_t(r)]; k < own[size_t(r + 1)]; ++k) fn(jobs[size_t(k)], h);
        };
        float M = -std::numeric_limits<float>::infinity();
        each_block([&](const Job& jb, int64_t hh) { M = std::max(M, parts[jb.part + size_t(hh)]); });
        float* o = olat + ((c0 + r) * H + h) * R;
        std::fill(o, o + R, 0.0f);
        float L = 0;
        each_block([&](const Job& jb, int64_t hh) {
          const int64_t jh = jb.rows * H;
          const float* pt = parts + jb.part;
          const float w = std::exp(pt[hh] - M);
          L += w * pt[jh + hh];
          const float* a = pt + 2 * jh + hh * R;
          for (int64_t c = 0; c < R; ++c) o[c] += w * a[c];
        });
        const float inv = 1.0f / L;
        for (int64_t c = 0; c < R; ++c) o[c] *= inv;
      }
    });
  }
}

// The naive form's core in bf16 (and fp8) numerics, as the official naive mode's two einsums
// compute it: per head, the keys (kv_b's nope part, the latents' rope part) and the values
// are rounded to BF16 once, the scores are BF16 products of query and key with fp32 sums
// (times the softmax scale, then the fp32 softmax), and the probabilities, rounded to BF16,
// weight the values with exact products and fp32 sums. Both products run through the BF16
// matrix kernels, a block of queries at a time against the keys they may see, so each key
// and value read serves the whole block (the fp32 path takes one query at a time). Every
// output is computed as the kernels compute one (row, token) product, and the probabilities
// past a query's causal end are zero, so the result depends neither on the thread count nor
// on how the prompt is chunked. kvfull: [L, H, nope | v] from kv_b; writes attn [T, H, v].
void naive_core_bf16(Workspace& ws, const ModelConfig& c, const float* q, int64_t T, int64_t start, const float* lat0,
                     const float* kvfull, float scale, float* attn) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank, dim = c.latent_dim();
  const int64_t L = start + T, kvw = H * (nope + vd);
  constexpr int64_t kQueryBlock = 64;
  kernels::Context& kc = ws.kernels;
  kernels::WeightMatrix keys, values;  // activations viewed as matrices: [L, qk] and [vd, L]
  keys.name = "attention keys";
  values.name = "attention values";
  keys.dtype = values.dtype = io::DType::BF16;
  keys.is_weight = values.is_weight = false;
  keys.rows = L;
  keys.cols = qk;
  values.rows = vd;
  values.cols = L;
  const size_t kv_floats = size_t(L * (qk + vd) + 1) / 2 + 16;
  const size_t s_floats = size_t(kQueryBlock * L);
  const size_t m_floats = std::max(kernels::matmul_scratch(keys), kernels::matmul_scratch(values));
  kc.pool().parallel_for(H, [&](int th, int64_t h0, int64_t h1) {
    float* const base = kc.scratch(th, kv_floats + s_floats + m_floats + 16);
    uint16_t* const kb = reinterpret_cast<uint16_t*>(base);
    uint16_t* const vb = kb + L * qk;
    float* const s = base + kv_floats;
    float* const mscr = s + s_floats;
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t j = 0; j < L; ++j) {
        const float* kv = &kvfull[j * kvw + h * (nope + vd)];
        for (int64_t i = 0; i < nope; ++i) kb[j * qk + i] = kernels::bf16_round(kv[i]);
        for (int64_t i = 0; i < rope; ++i) kb[j * qk + nope + i] = kernels::bf16_round(lat0[j * dim + R + i]);
        for (int64_t d = 0; d < vd; ++d) vb[d * L + j] = kernels::bf16_round(kv[nope + d]);
      }
      kernels::WeightMatrix kh = keys, vh = values;
      kh.data = kb;
      vh.data = vb;
      for (int64_t t0 = 0; t0 < T; t0 += kQueryBlock) {
        const int64_t tn = std::min(kQueryBlock, T - t0), seen = start + t0 + tn;
        kernels::matmul_rows(kh, 0, seen, &q[(t0 * H + h) * qk], H * qk, tn, s, L, mscr, kernels::Numerics::Bf16);
        for (int64_t t = 0; t < tn; ++t) {
          float* p = s + t * L;
          const int64_t n = start + t0 + t + 1;  // causal
          for (int64_t j = 0; j < n; ++j) p[j] *= scale;
          ops::softmax(p, n);
          std::fill(p + n, p + L, 0.0f);
        }
        kernels::matmul_rows(vh, 0, vd, s, L, tn, &attn[(t0 * H + h) * vd], H * vd, mscr, kernels::Numerics::Bf16);
      }
    }
  });
}

// Naive MLA for one sequence: expands its cached latents to per-head K/V through kv_b.
// lat0: contiguous latents [L, dim]. Writes attn [T, H, v].
void naive_attention(Workspace& ws, const ModelConfig& c, const AttentionWeights& a, const float* q, int64_t T,
                     int64_t start, const float* lat0, float scale, float* attn) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank, dim = c.latent_dim();
  const int64_t L = start + T;
  kernels::Context& kc = ws.kernels;
  // K_nope and V for every cached position: [L, H, nope | v].
  const int64_t kvw = H * (nope + vd);
  float* const kvfull = ws.kv_full.get(size_t(L * kvw));
  const size_t need = kernels::matmul_scratch(a.kv_b);
  std::optional<PhaseScope> proj(std::in_place, ws.profile, Phase::AttnProj);
  kc.pool().parallel_for(kvw, [&](int th, int64_t r0, int64_t r1) {
    kernels::matmul_rows(a.kv_b, r0, r1, lat0, dim, L, kvfull + r0, kvw, kc.scratch(th, need), kc.numerics());
  });
  proj.reset();
  if (kc.numerics() != kernels::Numerics::Fp32) return naive_core_bf16(ws, c, q, T, start, lat0, kvfull, scale, attn);
  kc.pool().parallel_for(H, [&](int th, int64_t h0, int64_t h1) {
    float* const p = kc.scratch(th, size_t(L));
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const float* qt = &q[(t * H + h) * qk];
        const int64_t n = start + t + 1;  // causal
        for (int64_t j = 0; j < n; ++j)
          p[j] = (kernels::dot(qt, &kvfull[j * kvw + h * (nope + vd)], nope) +
                  kernels::dot(qt + nope, lat0 + j * dim + R, rope)) * scale;
        ops::softmax(p, n);
        float* o = &attn[(t * H + h) * vd];
        std::fill(o, o + vd, 0.0f);
        for (int64_t j = 0; j < n; ++j) {
          const float* vj = &kvfull[j * kvw + h * (nope + vd) + nope];
          for (int64_t i = 0; i < vd; ++i) o[i] += p[j] * vj[i];
        }
      }
  });
}

}  // namespace

void mla_attention(Workspace& ws, const ModelConfig& c, const AttentionWeights& a,
                   const std::vector<double>& rope_freqs, const float* x, int64_t rows,
                   const std::vector<AttnSeq>& seqs, int64_t layer, AttentionForm form, float* out) {
  const int64_t H = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  const int64_t qk = c.qk_head_dim(), vd = c.v_head_dim, R = c.kv_lora_rank, dim = c.latent_dim();
  const float scale = float(c.softmax_scale());
  kernels::Context& kc = ws.kernels;
  ThreadPool& pool = kc.pool();
  const PhaseScope core(ws.profile, Phase::AttnCore);
  std::optional<PhaseScope> proj(std::in_place, ws.profile, Phase::AttnProj);

  // Queries: [rows, H, nope | rope].
  float* const q = ws.q.get(size_t(rows * H * qk));
  // The products of x (q_a or q, and kv_a) in one pool job.
  float* const kv = ws.kv_a.get(size_t(rows * dim));
  if (!a.q_a.empty()) {
    float* const qa = ws.q_lora.get(size_t(rows * c.q_lora_rank));
    kernels::matmul_shared_input(kc, {{&a.q_a, qa}, {&a.kv_a, kv}}, x, rows);
    for (int64_t t = 0; t < rows; ++t)
      ops::rms_norm(&qa[t * c.q_lora_rank], a.q_a_norm.data(), c.q_lora_rank, c.rms_norm_eps, &qa[t * c.q_lora_rank]);
    kernels::matmul(kc, a.q_b, qa, rows, q);
  } else {
    kernels::matmul_shared_input(kc, {{&a.q, q}, {&a.kv_a, kv}}, x, rows);
  }
  proj.reset();

  std::vector<AttentionForm> forms(seqs.size());
  bool any_absorbed = false;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const AttnSeq& sq = seqs[s];
    const bool bf16_store = sq.cache->type() == LatentType::BF16;
    if (bf16_store && kc.numerics() == kernels::Numerics::Fp32)
      fail("a BF16 latent cache needs --numerics bf16 or fp8: the fp32 path keeps fp32 latents");
    for (int64_t t = 0; t < sq.T; ++t) {
      const int64_t r = sq.row0 + t, pos = sq.start + t;
      for (int64_t h = 0; h < H; ++h) ops::rope_interleaved(&q[(r * H + h) * qk + nope], rope, rope_freqs.data(), pos);
      // New latents [c | k_pe] go straight into an fp32 cache (through a buffer into a BF16 one).
      float* dst = bf16_store ? ws.latent_new.get(size_t(dim)) : sq.cache->row(layer, pos);
      ops::rms_norm(&kv[r * dim], a.kv_a_norm.data(), R, c.rms_norm_eps, dst);
      std::copy(&kv[r * dim + R], &kv[r * dim + dim], dst + R);
      ops::rope_interleaved(dst + R, rope, rope_freqs.data(), pos);
      // The official inference keeps its latent cache in BF16.
      if (bf16_store) {
        uint16_t* out = sq.cache->row_bf16(layer, pos);
        for (int64_t i = 0; i < dim; ++i) out[i] = kernels::bf16_round(dst[i]);
      } else if (kc.numerics() != kernels::Numerics::Fp32) {
        for (int64_t i = 0; i < dim; ++i) dst[i] = kernels::bf16_value(kernels::bf16_round(dst[i]));
      }
    }
    const AttentionForm f = sq.form != AttentionForm::Auto ? sq.form : form;
    forms[s] = f == AttentionForm::Auto ? choose_attention_form(c, sq.T, sq.start) : f;
    any_absorbed |= forms[s] == AttentionForm::Absorbed;
  }

  float* const attn = ws.attn.get(size_t(rows * H * vd));
  if (any_absorbed) {
    // q_nope . (W_kb c) == (W_kb^T q_nope) . c: queries move into latent space, for every
    // row at once so kv_b is read once per step. [rows, H, R]
    float* const qabs = ws.q_abs.get(size_t(rows * H * R));
    float* const olat = ws.o_lat.zeroed(size_t(rows * H * R));
    const size_t need = kernels::matmul_scratch(a.kv_b);
    // The official absorb mode multiplies by the dequantized kv_b in BF16 even with
    // gemm_impl "fp8" (an einsum, not its FP8 linear).
    const kernels::Numerics absorbed_numerics =
        kc.numerics() == kernels::Numerics::Fp8 ? kernels::Numerics::Bf16 : kc.numerics();
    proj.emplace(ws.profile, Phase::AttnProj);
    pool.parallel_for(H, [&](int th, int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) {
        const int64_t row_k = h * (nope + vd);
        kernels::matmul_t_rows(a.kv_b, row_k, row_k + nope, q + h * qk, H * qk, rows, &qabs[h * R], H * R,
                               kc.scratch(th, need), kc.numerics());
      }
    });
    proj.reset();
    for (size_t s = 0; s < seqs.size(); ++s) {
      if (forms[s] != AttentionForm::Absorbed) continue;
      const AttnSeq& sq = seqs[s];
      const int64_t n = sq.start + sq.T;
      if (sq.cache->type() == LatentType::BF16) {
        std::vector<const uint16_t*>& lat = ws.latent_rows_bf16;
        lat.resize(size_t(n));
        sq.cache->rows_bf16(layer, n, lat.data());
        absorbed_bf16_attention(ws, c, &q[sq.row0 * H * qk], &qabs[sq.row0 * H * R], sq.T, sq.start, lat, scale,
                                &olat[sq.row0 * H * R]);
      } else if (kc.numerics() != kernels::Numerics::Fp32) {
        std::vector<const float*>& lat = ws.latent_rows;
        lat.resize(size_t(n));
        sq.cache->rows(layer, n, lat.data());
        absorbed_bf16_attention(ws, c, &q[sq.row0 * H * qk], &qabs[sq.row0 * H * R], sq.T, sq.start, lat, scale,
                                &olat[sq.row0 * H * R]);
      } else {
        std::vector<const float*>& lat = ws.latent_rows;
        lat.resize(size_t(n));
        sq.cache->rows(layer, n, lat.data());
        absorbed_latent_attention(ws, c, &q[sq.row0 * H * qk], &qabs[sq.row0 * H * R], sq.T, sq.start, lat, scale,
                                  &olat[sq.row0 * H * R]);
      }
    }
    // Values come out of latent space through kv_b's v rows (rows of naive sequences are
    // overwritten below).
    proj.emplace(ws.profile, Phase::AttnProj);
    pool.parallel_for(H, [&](int th, int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h) {
        const int64_t row_v = h * (nope + vd) + nope;
        kernels::matmul_rows(a.kv_b, row_v, row_v + vd, &olat[size_t(h * R)], H * R, rows, &attn[h * vd], H * vd,
                             kc.scratch(th, need), absorbed_numerics);
      }
    });
    proj.reset();
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (forms[s] != AttentionForm::Naive) continue;
    const AttnSeq& sq = seqs[s];
    const int64_t L = sq.start + sq.T;
    const float* lat0 = sq.cache->contiguous(layer);
    if (!lat0 && sq.cache->type() == LatentType::BF16) {  // BF16 rows: widened (exactly) into one block
      std::vector<const uint16_t*>& rows = ws.latent_rows_bf16;
      rows.resize(size_t(L));
      sq.cache->rows_bf16(layer, L, rows.data());
      float* const g = ws.gathered.get(size_t(L * dim));
      for (int64_t j = 0; j < L; ++j)
        for (int64_t i = 0; i < dim; ++i) g[size_t(j * dim + i)] = kernels::bf16_value(rows[size_t(j)][i]);
      lat0 = g;
    } else if (!lat0) {  // scattered pages: the kv_b expansion wants one strided block
      std::vector<const float*>& rows = ws.latent_rows;
      rows.resize(size_t(L));
      sq.cache->rows(layer, L, rows.data());
      float* const g = ws.gathered.get(size_t(L * dim));
      for (int64_t j = 0; j < L; ++j) std::copy_n(rows[size_t(j)], dim, &g[size_t(j * dim)]);
      lat0 = g;
    }
    naive_attention(ws, c, a, &q[sq.row0 * H * qk], sq.T, sq.start, lat0, scale, &attn[sq.row0 * H * vd]);
  }
  proj.emplace(ws.profile, Phase::AttnProj);
  kernels::matmul(kc, a.o, attn, rows, out);
}

}  // namespace dsv3::model
