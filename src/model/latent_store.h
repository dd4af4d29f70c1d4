// Where a sequence's latent KV cache lives. The model only needs a row per (layer, position):
// a contiguous buffer (KvCache) and a paged pool shared by many sequences (the engine's
// runtime::PagedLatentCache) both provide that, so attention never knows which one it reads.
#pragma once

#include <cstdint>

namespace dsv3::model {

class LatentStore {
 public:
  virtual ~LatentStore() = default;
  //! The latent row (kv_lora_rank + qk_rope_head_dim floats) of `pos` in cache layer `layer`.
  //! Positions below the sequence's current length hold data; the next ones may be written.
  virtual float* row(int64_t layer, int64_t pos) = 0;
  //! Row 0 of `layer` when every position of the layer is latent_dim floats further on (lets
  //! the naive form read latents in place); nullptr when rows are scattered.
  virtual const float* contiguous(int64_t layer) { return nullptr; }
  //! out[j] = row(layer, j) for j < n, for attention to walk (stores override it with a
  //! loop that needs no call or division per position).
  virtual void rows(int64_t layer, int64_t n, const float** out) {
    for (int64_t j = 0; j < n; ++j) out[j] = row(layer, j);
  }
};

}  // namespace dsv3::model
