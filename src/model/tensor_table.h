// The one table of a DeepSeek-V3-family checkpoint's tensors: every name, shape and role a
// config implies, in the order the published shards list them, and where each one lives in
// a model struct. The loader (model/weights.h), the test-model generator, the trainer's fp32
// parameters and its export all read this list, so a new tensor is one entry here (plus the
// struct member it binds to).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"

namespace dsv3::model {

//! What a tensor is, which decides its initialization and its stored dtype.
enum class TensorRole { Embedding, Linear, Head, Norm, Gate, Bias };

//! Which member of a model struct a tensor binds to (see bind_member below).
enum class TensorKind {
  Embed, FinalNorm, Head,                        // model level
  AttnNorm, MlpNorm,                             // a decoder block's two pre-norms
  QA, QANorm, QB, Q, KvA, KvANorm, KvB, O,       // its attention
  MlpGate, MlpUp, MlpDown,                       // a SwiGLU MLP of the block (see MlpOwner)
  RouterGate, RouterBias,                        // its MoE router
  MtpENorm, MtpHNorm, MtpEhProj, MtpEmbed, MtpHeadNorm, MtpHead,  // the MTP module's own
};

//! Whose MLP an MlpGate/Up/Down tensor belongs to.
enum class MlpOwner { None, Dense, Expert, Shared };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
  bool fp8_eligible = false;  // a Linear inside a decoder layer (MTP block included): FP8 in FP8 checkpoints
  std::string source;         // == name, except for the MTP layer's stored copies of the embedding and head
  std::string fallback;       // non-empty: checkpoints may omit this tensor, readers then use that one
  TensorKind kind;
  int64_t layer = -1;         // i of `model.layers.{i}.`; -1 for the model-level tensors
  bool mtp = false;           // part of the MTP module (its own tensors and its decoder block)
  MlpOwner owner = MlpOwner::None;
  int64_t expert = -1;        // routed expert index (MlpOwner::Expert)

  bool tied() const { return source != name; }
  uint64_t numel() const;
};

//! Every tensor of `config`'s checkpoint, gate biases (noaux_tc) and MTP copies included, in
//! the published order: embedding, layers, final norm, head, then the MTP layer.
std::vector<TensorSpec> tensor_table(const ModelConfig& config);

namespace detail {
template <class T>
T& slot(T& t) {
  return t;
}
template <class T>
T& slot(std::optional<T>& t) {
  if (!t) t.emplace();
  return *t;
}
template <class V>
auto& slot_at(V& v, int64_t i) {
  if (v.size() <= size_t(i)) v.resize(size_t(i) + 1);
  return v[size_t(i)];
}
}  // namespace detail

//! The kind -> member map, written once for every model struct: calls f(member) with the
//! member of `m` that `s` binds to and returns true, or returns false when `m` has no place
//! for it. `Model` has members embed, final_norm, lm_head, layers (a vector of blocks) and mtp
//! (enorm, hnorm, eh_proj, head_norm, block, and optionally the tied copies embed and head);
//! a block has attn_norm, mlp_norm, moe, attn (q_a, q_a_norm, q_b, q, kv_a, kv_a_norm, kv_b, o),
//! dense and experts (gate, optionally bias, experts[e], shared), each MLP gate, up and down.
//! model/weights.h (inference) and train/model_tensors.h (training) are such structs. Slots
//! are created as the table reaches them: layers and experts grow, optional mtp and shared
//! members are emplaced, and binding a router marks its block as MoE.
template <class Model, class F>
bool bind_member(const TensorSpec& s, Model& m, F&& f) {
  using K = TensorKind;
  switch (s.kind) {
    case K::Embed: f(m.embed); return true;
    case K::FinalNorm: f(m.final_norm); return true;
    case K::Head: f(m.lm_head); return true;
    case K::MtpENorm: f(detail::slot(m.mtp).enorm); return true;
    case K::MtpHNorm: f(detail::slot(m.mtp).hnorm); return true;
    case K::MtpEhProj: f(detail::slot(m.mtp).eh_proj); return true;
    case K::MtpHeadNorm: f(detail::slot(m.mtp).head_norm); return true;
    case K::MtpEmbed:
    case K::MtpHead: {
      auto& mtp = detail::slot(m.mtp);
      if constexpr (requires { mtp.embed; mtp.head; }) {
        f(s.kind == K::MtpEmbed ? mtp.embed : mtp.head);
        return true;
      } else {
        return false;  // a struct that keeps them tied to the main ones
      }
    }
    default: break;
  }
  auto& b = s.mtp ? detail::slot(m.mtp).block : detail::slot_at(m.layers, s.layer);
  switch (s.kind) {
    case K::AttnNorm: f(b.attn_norm); return true;
    case K::MlpNorm: f(b.mlp_norm); return true;
    case K::QA: f(b.attn.q_a); return true;
    case K::QANorm: f(b.attn.q_a_norm); return true;
    case K::QB: f(b.attn.q_b); return true;
    case K::Q: f(b.attn.q); return true;
    case K::KvA: f(b.attn.kv_a); return true;
    case K::KvANorm: f(b.attn.kv_a_norm); return true;
    case K::KvB: f(b.attn.kv_b); return true;
    case K::O: f(b.attn.o); return true;
    case K::RouterGate:
      b.moe = true;
      f(b.experts.gate);
      return true;
    case K::RouterBias:
      if constexpr (requires { b.experts.bias; }) {
        f(b.experts.bias);
        return true;
      } else {
        return false;  // a struct that keeps the selection-only bias elsewhere
      }
    case K::MlpGate:
    case K::MlpUp:
    case K::MlpDown: {
      auto& mlp = s.owner == MlpOwner::Dense    ? b.dense
                  : s.owner == MlpOwner::Shared ? detail::slot(b.experts.shared)
                                                : detail::slot_at(b.experts.experts, s.expert);
      f(s.kind == K::MlpGate ? mlp.gate : s.kind == K::MlpUp ? mlp.up : mlp.down);
      return true;
    }
    default: return false;
  }
}

}  // namespace dsv3::model
