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

struct DistillTerms {
  double ce = 0;  //!< mean cross-entropy against the targets
  double kl = 0;  //!< mean KL(teacher_T || student_T), softmax at temperature T on both sides
  double loss = 0;  //!< (1 - weight) * ce + weight * T^2 * kl
};

//! Logit distillation (Hinton et al.): the loss above over the same rows as cross_entropy
//! (all, or the masked ones), teacher logits [N, V] beside the student's. The T^2 factor keeps
//! the soft term's gradient on the scale of the hard one's. When dlogits is non-null it
//! receives scale * d(loss)/d(logits): per row, (1 - w) (softmax(z) - onehot) +
//! w T (softmax(z / T) - softmax(t / T)), over the counted rows.
template <class S>
DistillTerms distill_cross_entropy(kernels::Context& ctx, const S* logits, const float* teacher, const int32_t* targets,
                                   int64_t N, int64_t V, double weight, double temperature, double scale, S* dlogits,
                                   const uint8_t* mask = nullptr);

}  // namespace dsv3::train
