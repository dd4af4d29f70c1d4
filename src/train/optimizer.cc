#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "kernels/adamw.h"

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

void AdamW::step(const std::vector<ParamView>& params, double lr, ThreadPool* pool) {
  if (params.size() != m_.size()) fail("AdamW: ", params.size(), " parameters, but moments for ", m_.size());
  ++t_;
  kernels::AdamWStep st{s_.beta1, s_.beta2, 1.0 - std::pow(s_.beta1, double(t_)), 1.0 - std::pow(s_.beta2, double(t_)),
                        lr, s_.eps, 1.0, bf16_moments_};
  // The update is elementwise, so any split gives the same bits: runs of up to kRun elements
  // of every parameter, spread over the pool.
  constexpr uint64_t kRun = 1 << 16;
  struct Run {
    size_t param;
    uint64_t begin, end;
  };
  std::vector<Run> runs;
  for (size_t k = 0; k < params.size(); ++k) {
    const uint64_t n = params[k].numel();
    if (n != m_[k].size()) fail("AdamW: parameter '", *params[k].name, "' changed size");
    for (uint64_t b = 0; b < n; b += kRun) runs.push_back({k, b, std::min(n, b + kRun)});
  }
  const auto update = [&](int, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const Run& run = runs[size_t(r)];
      const ParamView& p = params[run.param];
      kernels::AdamWStep s = st;
      s.decay = decays(p) ? 1.0 - lr * s_.weight_decay : 1.0;
      kernels::adamw_update(s, p.value + run.begin, p.grad + run.begin, m_[run.param].data() + run.begin,
                            v_[run.param].data() + run.begin, int64_t(run.end - run.begin));
    }
  };
  if (pool) {
    pool->parallel_for(int64_t(runs.size()), update);
  } else {
    update(0, 0, int64_t(runs.size()));
  }
}

}  // namespace dsv3::train
