#include "train/optimizer.h"

#include <cmath>

#include "base/error.h"
#include "kernels/bf16.h"

namespace dsv3::train {

double global_grad_norm(const std::vector<ParamView>& params) {
  double sum = 0;
  for (const ParamView& p : params) {
    const uint64_t n = p.numel();
    for (uint64_t i = 0; i < n; ++i) sum += double(p.grad[i]) * double(p.grad[i]);
  }
  return std::sqrt(sum);
}

double clip_grad_norm(const std::vector<ParamView>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / norm;
    for (const ParamView& p : params) {
      const uint64_t n = p.numel();
      for (uint64_t i = 0; i < n; ++i) p.grad[i] = float(double(p.grad[i]) * scale);
    }
  }
  return norm;
}

void AdamW::attach(const std::vector<ParamView>& params) {
  names_.clear();
  m_.clear();
  v_.clear();
  for (const ParamView& p : params) {
    names_.push_back(*p.name);
    m_.emplace_back(p.numel(), 0.0f);
    v_.emplace_back(p.numel(), 0.0f);
  }
  t_ = 0;
}

void AdamW::step(const std::vector<ParamView>& params, double lr) {
  if (params.size() != m_.size()) fail("AdamW: ", params.size(), " parameters, but moments for ", m_.size());
  ++t_;
  const double b1 = s_.beta1, b2 = s_.beta2;
  const double c1 = 1.0 - std::pow(b1, double(t_)), c2 = 1.0 - std::pow(b2, double(t_));
  // BF16 moments: what is kept for the next step is rounded to BF16 (through fp32, ties to even).
  const bool bf16 = bf16_moments_;
  auto store = [bf16](double x) { return bf16 ? kernels::bf16_value(kernels::bf16_round(float(x))) : float(x); };
  for (size_t k = 0; k < params.size(); ++k) {
    const ParamView& p = params[k];
    const uint64_t n = p.numel();
    if (n != m_[k].size()) fail("AdamW: parameter '", *p.name, "' changed size");
    const double decay = decays(p) ? 1.0 - lr * s_.weight_decay : 1.0;
    float* m = m_[k].data();
    float* v = v_[k].data();
    for (uint64_t i = 0; i < n; ++i) {
      const double g = p.grad[i];
      const double mi = b1 * double(m[i]) + (1.0 - b1) * g;
      const double vi = b2 * double(v[i]) + (1.0 - b2) * g * g;
      m[i] = store(mi);
      v[i] = store(vi);
      const double w = double(p.value[i]) * decay;
      p.value[i] = float(w - lr * (mi / c1) / (std::sqrt(vi / c2) + s_.eps));
    }
  }
}

}  // namespace dsv3::train
