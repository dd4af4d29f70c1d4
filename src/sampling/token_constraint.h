// Restricting which tokens may come next: the engine asks a sequence's constraint to mask the
// logits before every sample and tells it which token was taken. JSON output
// (json_token_constraint.h) is one; the engine knows nothing of what a constraint checks.
#pragma once

#include <cstdint>

namespace dsv3 {

//! Used by one sequence only, from the engine thread.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  //! Sets the logits of disallowed tokens to -inf (logits has the model's vocab size).
  //! When every logit ends up -inf, the sequence is complete and ends there.
  virtual void mask(float* logits) const = 0;
  virtual void accept(int32_t token) = 0;
};

}  // namespace dsv3
