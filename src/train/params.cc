#include "train/params.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#include "base/error.h"
#include "base/rng.h"
#include "kernels/weight_matrix.h"

namespace dsv3::train {
namespace {

// (decoder block, stage in it) of the forward pass's first read of `s`; the model-level
// tensors sit before the first block (embedding) or after the last main one (final norm and
// head), the MTP module's own around its block.
std::pair<int64_t, int> forward_position(const model::TensorSpec& s, const model::ModelConfig& c) {
  using K = model::TensorKind;
  switch (s.kind) {
    case K::Embed: return {-1, 0};
    case K::FinalNorm: case K::Head: return {c.num_hidden_layers - 1, 4};
    case K::MtpENorm: case K::MtpHNorm: case K::MtpEhProj: case K::MtpEmbed: return {s.layer, -1};
    case K::MtpHeadNorm: case K::MtpHead: return {s.layer, 4};
    case K::AttnNorm: return {s.layer, 0};
    case K::QA: case K::QANorm: case K::QB: case K::Q: case K::KvA: case K::KvANorm: case K::KvB: case K::O:
      return {s.layer, 1};
    case K::MlpNorm: return {s.layer, 2};
    case K::RouterGate: case K::RouterBias: case K::MlpGate: case K::MlpUp: case K::MlpDown: return {s.layer, 3};
  }
  fail("unknown tensor kind of '", s.name, "'");
}

void decode(const kernels::WeightMatrix& w, std::vector<float>& out) {
  out.resize(size_t(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) kernels::decode_row(w, r, &out[size_t(r * w.cols)]);
}

void decode(const std::vector<float>& v, std::vector<float>& out) { out = v; }

}  // namespace

std::vector<model::TensorSpec> trainable_specs(const model::ModelConfig& c) {
  std::vector<model::TensorSpec> t = model::tensor_table(c);
  std::erase_if(t, [](const model::TensorSpec& s) { return s.tied(); });
  std::stable_sort(t.begin(), t.end(), [&c](const model::TensorSpec& a, const model::TensorSpec& b) {
    return forward_position(a, c) < forward_position(b, c);
  });
  return t;
}

void init_values(const model::TensorSpec& s, uint64_t seed, double std, std::vector<float>& out) {
  out.assign(size_t(s.numel()), 0.0f);
  if (s.role == model::TensorRole::Bias) return;
  if (s.role == model::TensorRole::Norm) {
    std::fill(out.begin(), out.end(), 1.0f);
    return;
  }
  Rng rng(seed ^ hash_name(s.name));
  // Box-Muller on two uniforms in (0, 1].
  for (size_t i = 0; i < out.size(); i += 2) {
    const double u1 = (double(rng.next() >> 11) + 1.0) * 0x1.0p-53, u2 = double(rng.next() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1)) * std;
    out[i] = float(r * std::cos(2 * M_PI * u2));
    if (i + 1 < out.size()) out[i + 1] = float(r * std::sin(2 * M_PI * u2));
  }
}

void read_values(const model::TensorSpec& s, model::ModelWeights& w, std::vector<float>& out) {
  if (!model::bind_member(s, w, [&out](const auto& m) { decode(m, out); }))
    fail("the loaded weights have no place for '", s.name, "'");
  if (out.size() != s.numel()) fail("tensor '", s.name, "' was not loaded (", out.size(), " of ", s.numel(), " values)");
}

}  // namespace dsv3::train
