// Passkey examples for context-extension training (docs/training.md, data.passkey_fraction):
// a share of the training windows become "needle in a haystack" examples of the same length,
// so a model learns to fetch a fact from anywhere in a long context. The haystack is the
// window the sampler drew (training text), the needle and question are the evaluation's
// (base/passkey_text.h), and the window ends with the answer. By default only the answer's
// tokens count in the loss (mask()): a 2K-token example would otherwise weigh its few answer
// tokens against two thousand of filler, and filler is what the other windows teach anyway.
// data.passkey_loss "all" counts every token instead (the trainer passes no mask): the
// needle's second copy of the key is then a short-range copy to learn from as well.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace dsv3::train {

class PasskeyExamples {
 public:
  //! Throws dsv3::Error when `window` tokens cannot hold the instruction, needle, question
  //! and answer with some haystack between them.
  PasskeyExamples(const Tokenizer& tok, double fraction, int64_t window, uint64_t seed);

  //! Whether sequence k of step `step` becomes an example: a function of (seed, step, k)
  //! only, so a resumed run picks the same ones.
  bool picks(int64_t step, int64_t k) const;
  //! The example for (step, k) over `haystack` (window tokens): BOS where the tokenizer adds
  //! one to a prompt (as the evaluation's prompts have it), the instruction, haystack
  //! with the needle at a random depth, the question and " KEY."; exactly window tokens.
  //! Valid until the next call.
  const int32_t* make(const int32_t* haystack, int64_t step, int64_t k);
  //! The last example's loss mask (LossWeights::target_mask, window - 1 entries): the
  //! predictions of the answer's tokens.
  const uint8_t* mask() const { return mask_.data(); }

 private:
  uint64_t mix(int64_t step, int64_t k, uint64_t salt) const;

  const Tokenizer& tok_;
  double fraction_;
  int64_t window_;
  uint64_t seed_;
  std::vector<int32_t> intro_, question_, out_;
  std::vector<uint8_t> mask_;
};

}  // namespace dsv3::train
