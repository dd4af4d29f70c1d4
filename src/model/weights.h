// Every tensor the model reads, as model/tensor_table.h declares it (name, shape, whether
// FP8 is allowed), bound zero-copy to the mmapped checkpoint through bind_member. Loading
// fails with the tensor's name and shard when a tensor is missing or has the wrong
// shape/dtype; tensors nobody asked for are reported.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/weight_matrix.h"
#include "model/config.h"
#include "model/tensor_table.h"

namespace dsv3::model {

struct MlpWeights {  // SwiGLU: down(silu(gate(x)) * up(x))
  kernels::WeightMatrix gate, up, down;
};

struct AttentionWeights {
  kernels::WeightMatrix q_a, q_b;        // q-LoRA (q_lora_rank > 0)
  std::vector<float> q_a_norm;
  kernels::WeightMatrix q;               // plain q_proj (q_lora_rank null)
  kernels::WeightMatrix kv_a;            // [kv_lora + rope, hidden]
  std::vector<float> kv_a_norm; // [kv_lora]
  kernels::WeightMatrix kv_b;            // [H * (nope + v), kv_lora], head-major
  kernels::WeightMatrix o;               // [hidden, H * v]
};

struct MoeWeights {
  kernels::WeightMatrix gate;                  // [n_routed, hidden], kept in its stored (high) precision
  std::vector<float> bias;            // e_score_correction_bias (noaux_tc), selection only
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared;   // n_shared_experts * moe_intermediate wide
};

struct LayerWeights {
  std::vector<float> attn_norm, mlp_norm;
  AttentionWeights attn;
  bool moe = false;
  MlpWeights dense;
  MoeWeights experts;
};

struct MtpWeights {
  std::vector<float> enorm, hnorm;
  kernels::WeightMatrix eh_proj;               // [hidden, 2*hidden]: [emb ; hidden] order
  kernels::WeightMatrix embed, head;           // copies of the main ones in published checkpoints
  std::vector<float> head_norm;       // shared_head.norm
  LayerWeights block;
};

struct ModelWeights {
  kernels::WeightMatrix embed;                 // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  kernels::WeightMatrix lm_head;               // [vocab, hidden]
  std::optional<MtpWeights> mtp;

  // Owns the checkpoint mapping and any small converted buffers (scales, norms).
  std::shared_ptr<const io::Checkpoint> checkpoint;
  std::vector<std::vector<float>> owned;
  std::vector<std::string> unused;    // tensors present but never bound
  //! Tensors the forward pass never reads: the unused ones, the MTP layer's when it was not
  //! loaded, and the MTP layer's copies of the embedding and head when they are tied.
  std::set<std::string> idle;
  uint64_t bytes_by_dtype[16] = {};   // bound bytes, indexed by io::DType

  //! Binds every tensor of `config` from `checkpoint`. `load_mtp` false skips the MTP layer
  //! (its tensors are then reported neither missing nor unused). A tensor the table gives a
  //! fallback (the MTP layer's copies of embedding and head; lm_head when
  //! tie_word_embeddings) may be absent and is then the fallback's matrix.
  //! `want`, when set, says which tensors to bind: the others are left empty and idle, and
  //! reported neither missing nor unused (expert parallelism: another process reads them).
  static ModelWeights bind(const ModelConfig& config, std::shared_ptr<const io::Checkpoint> checkpoint,
                           bool load_mtp = true, const std::function<bool(const TensorSpec&)>& want = nullptr);
};

}  // namespace dsv3::model
