// Mean next-token cross-entropy over rows of logits, and its gradient.
#pragma once

#include <cstdint>

#include "kernels/context.h"

namespace dsv3::train {

//! Returns mean_r -log softmax(logits[r])[targets[r]] over N rows of V logits, or over the
//! rows r with mask[r] != 0 when a mask is given (0 when none is). When dlogits is non-null
//! it receives (overwritten) scale * d(mean CE)/d(logits), [N, V] (rows outside the mask:
//! zero). Row softmax uses max subtraction and a double sum. Runs over ctx's thread pool.
template <class S>
double cross_entropy(kernels::Context& ctx, const S* logits, const int32_t* targets, int64_t N, int64_t V, double scale,
                     S* dlogits, const uint8_t* mask = nullptr);

}  // namespace dsv3::train
