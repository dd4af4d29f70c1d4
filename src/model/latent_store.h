// Where a sequence's latent KV cache lives. The model only needs a row per (layer, position):
// a contiguous buffer (KvCache) and a paged pool shared by many sequences (the engine's
// runtime::PagedLatentCache) both provide that, so attention never knows which one it reads.
//
// Rows are fp32 or BF16. The official inference keeps its cache in BF16, and `--numerics
// bf16|fp8` rounds every latent to BF16 before it is stored anyway, so a BF16 store holds
// the very same values in half the memory (and attention reads half the bytes). The exact
// path (`--numerics fp32`) needs fp32 rows.
#pragma once

#include <cstdint>

#include "base/error.h"
#include "kernels/numerics.h"

namespace dsv3::model {

enum class LatentType { F32, BF16 };

//! The store type a run in numerics `n` keeps: BF16 unless it computes in fp32.
inline LatentType latent_type_for(kernels::Numerics n) {
  return n == kernels::Numerics::Fp32 ? LatentType::F32 : LatentType::BF16;
}
inline int64_t latent_type_bytes(LatentType t) { return t == LatentType::BF16 ? 2 : 4; }
inline const char* latent_type_name(LatentType t) { return t == LatentType::BF16 ? "bf16" : "f32"; }

class LatentStore {
 public:
  virtual ~LatentStore() = default;
  virtual LatentType type() const { return LatentType::F32; }
  //! The latent row (kv_lora_rank + qk_rope_head_dim values) of `pos` in cache layer `layer`
  //! of an F32 store (row) or a BF16 store (row_bf16). Positions below the sequence's current
  //! length hold data; the next ones may be written.
  virtual float* row(int64_t layer, int64_t pos) = 0;
  virtual uint16_t* row_bf16(int64_t, int64_t) { fail("this latent cache holds fp32 rows, not bf16"); }
  //! Row 0 of `layer` when every position of the layer is latent_dim floats further on (lets
  //! the naive form read latents in place); nullptr when rows are scattered or BF16.
  virtual const float* contiguous(int64_t layer) { return nullptr; }
  //! out[j] = row(layer, j) (or row_bf16) for j < n, for attention to walk (stores override
  //! it with a loop that needs no call or division per position).
  virtual void rows(int64_t layer, int64_t n, const float** out) {
    for (int64_t j = 0; j < n; ++j) out[j] = row(layer, j);
  }
  virtual void rows_bf16(int64_t layer, int64_t n, const uint16_t** out) {
    for (int64_t j = 0; j < n; ++j) out[j] = row_bf16(layer, j);
  }
};

}  // namespace dsv3::model
