// Many small independent pieces of one layer (routed experts, attention heads) run whole on
// the cores, each core on its own serial context (kernels::Context::serial): splitting each
// small product across the cores wastes more in waiting than it gains. The results do not
// depend on the thread count, since every product's sums run in one order however it is
// split. Elementwise and row-wise work that is large enough goes the other way: split over
// the pool itself (split_over_pool).
#pragma once

#include <cstdint>

#include "kernels/context.h"
#include "train/step_profile.h"

namespace dsv3::train {

//! Runs fn(serial context, i0, i1) over [0, n) split into contiguous chunks across ctx's
//! pool. A step profile charges the whole job to the phase around it.
template <class F>
void on_serial_contexts(kernels::Context& ctx, int64_t n, F&& fn) {
  ctx.prepare_serial();
  ctx.pool().parallel_for(n, [&](int thread, int64_t i0, int64_t i1) {
    const StepProfilePause pause;
    fn(ctx.serial(thread), i0, i1);
  });
}

//! Runs fn(i0, i1) over [0, n) split across `pool`, or whole on the calling thread when
//! there is no pool or `work` (elements touched) is too small to repay waking it. For work
//! whose items are independent, so the bits do not depend on the split.
template <class F>
void split_over_pool(ThreadPool* pool, int64_t n, int64_t work, F&& fn) {
  if (!pool || work < 32768) return fn(int64_t(0), n);
  pool->parallel_for(n, [&](int, int64_t i0, int64_t i1) { fn(i0, i1); });
}

}  // namespace dsv3::train
