// response_format json_object / json_schema as a TokenConstraint: only tokens that keep the
// answer a valid prefix of an accepted JSON text may be sampled, and after a complete value
// only an end-of-sequence token.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sampling/token_constraint.h"
#include "sampling/token_mask.h"

namespace dsv3 {

class JsonTokenConstraint final : public TokenConstraint {
 public:
  //! eos: the ids that end the output; vocab: the model's vocabulary size (logits length).
  JsonTokenConstraint(std::shared_ptr<const JsonConstraint> c, std::shared_ptr<const TokenVocab> v,
                      std::vector<int32_t> eos, size_t vocab)
      : state_(std::move(c), std::move(v), std::move(eos)), vocab_(vocab) {}
  void mask(float* logits) const override { state_.mask(logits, vocab_); }
  void accept(int32_t token) override { state_.accept(token); }

 private:
  JsonState state_;
  size_t vocab_;
};

}  // namespace dsv3
