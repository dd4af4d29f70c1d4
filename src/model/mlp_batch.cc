#include "model/mlp_batch.h"

#include <algorithm>

#include "base/error.h"
#include "kernels/matmul.h"
#include "model/ops.h"

namespace dsv3::model {
namespace {

// Reading a weight row costs about as much as this many tokens' multiply-adds against it,
// so a row of a task with n tokens is weighted n + kRowCost when the rows are split.
constexpr int64_t kRowCost = 8;
// Split points fall on multiples of this many rows (the kernels' streams work in tiles).
constexpr int64_t kRowGrain = 16;

struct Span {
  size_t task;
  int64_t r0, r1;
};

// Cuts the concatenated rows of all tasks (rows(i) each, weighted as above) into `parts`
// pieces of about equal cost; returns the spans of piece `part`. The cut points depend only
// on the inputs, so the pieces of all parts tile every task's rows exactly.
template <class Rows>
std::vector<Span> share(const std::vector<MlpTask>& tasks, Rows rows, int parts, int part) {
  double total = 0;
  for (size_t i = 0; i < tasks.size(); ++i) total += double(rows(i)) * double(tasks[i].n + kRowCost);
  auto cut = [&](int p) {  // (task, row) where the cost reaches total * p / parts
    if (p >= parts) return std::pair<size_t, int64_t>{tasks.size(), 0};
    double left = total * p / parts;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const double per = double(tasks[i].n + kRowCost), cost = double(rows(i)) * per;
      if (left < cost) {
        const int64_t r = std::min(rows(i), int64_t(left / per) / kRowGrain * kRowGrain);
        return std::pair<size_t, int64_t>{i, r};
      }
      left -= cost;
    }
    return std::pair<size_t, int64_t>{tasks.size(), 0};
  };
  const auto [t0, r0] = cut(part);
  const auto [t1, r1] = cut(part + 1);
  std::vector<Span> out;
  for (size_t i = t0; i <= t1 && i < tasks.size(); ++i) {
    const int64_t a = i == t0 ? r0 : 0, b = i == t1 ? r1 : rows(i);
    if (a < b) out.push_back(Span{i, a, b});
  }
  return out;
}

}  // namespace

void run_mlps(Workspace& ws, const std::vector<MlpTask>& tasks) {
  std::vector<size_t> h_at(tasks.size() + 1, 0);  // offsets of each task's [n, I] block
  for (size_t i = 0; i < tasks.size(); ++i) {
    const MlpWeights& w = *tasks[i].w;
    if (w.up.rows != w.gate.rows || w.down.cols != w.gate.rows || w.up.cols != w.gate.cols)
      fail("MLP weights ", w.gate.name, " / ", w.up.name, " / ", w.down.name, " do not fit together");
    h_at[i + 1] = h_at[i] + size_t(tasks[i].n * w.gate.rows);
  }
  float* const g = ws.mlp_gate.get(h_at.back());
  float* const u = ws.mlp_up.get(h_at.back());
  kernels::Context& kc = ws.kernels;
  ThreadPool& pool = kc.pool();
  const int P = pool.size();
  auto inter = [&](size_t i) { return tasks[i].w->gate.rows; };
  pool.parallel_for(P, [&](int th, int64_t part, int64_t) {
    for (const Span& s : share(tasks, inter, P, int(part))) {
      const MlpTask& t = tasks[s.task];
      const int64_t I = t.w->gate.rows, D = t.w->gate.cols;
      float* gt = g + h_at[s.task];
      float* ut = u + h_at[s.task];
      float* scratch = kc.scratch(th, kernels::matmul_scratch(t.w->gate));
      kernels::matmul_rows(t.w->gate, s.r0, s.r1, t.x, D, t.n, gt + s.r0, I, scratch, kc.numerics());
      kernels::matmul_rows(t.w->up, s.r0, s.r1, t.x, D, t.n, ut + s.r0, I, scratch, kc.numerics());
      for (int64_t k = 0; k < t.n; ++k)
        for (int64_t r = s.r0; r < s.r1; ++r) gt[k * I + r] = ops::silu(gt[k * I + r]) * ut[k * I + r];
    }
  });
  auto hidden = [&](size_t i) { return tasks[i].w->down.rows; };
  pool.parallel_for(P, [&](int th, int64_t part, int64_t) {
    for (const Span& s : share(tasks, hidden, P, int(part))) {
      const MlpTask& t = tasks[s.task];
      const int64_t I = t.w->gate.rows, D = t.w->down.rows;
      kernels::matmul_rows(t.w->down, s.r0, s.r1, g + h_at[s.task], I, t.n, t.out + s.r0, D,
                           kc.scratch(th, kernels::matmul_scratch(t.w->down)), kc.numerics());
    }
  });
}

}  // namespace dsv3::model
