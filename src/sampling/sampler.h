// Turning logits into the next token: logit bias, repetition / presence / frequency
// penalties, then greedy or temperature sampling truncated by top-k, top-p and min-p.
// Seeded: the same seed and inputs give the same tokens on every machine.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/rng.h"

namespace dsv3 {

struct SamplingParams {
  float temperature = 1.0f;        // 0: greedy (argmax, lowest id on ties)
  int32_t top_k = 0;               // 0: off
  float top_p = 1.0f;              // 1: off
  float min_p = 0.0f;              // 0: off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f; // HF-style, over prompt and output: logit/p if > 0 else logit*p
  float presence_penalty = 0.0f;   // OpenAI-style, over output: -= presence if the token occurred
  float frequency_penalty = 0.0f;  // OpenAI-style, over output: -= frequency * count
  std::unordered_map<int32_t, float> logit_bias;  // added to the logits first
  std::optional<uint64_t> seed;    // absent: seeded from the clock

  //! Throws dsv3::Error naming the first out-of-range field.
  void validate(int32_t vocab_size) const;
};

//! out[i] = log-softmax of logits [vocab] (the normaliser summed in double): what logprobs report.
void log_softmax(const float* logits, int32_t vocab, std::vector<float>& out);

class Sampler {
 public:
  Sampler(const SamplingParams& params, int32_t vocab_size);

  //! The prompt, for the repetition penalty (not for presence / frequency).
  void set_prompt(const std::vector<int32_t>& prompt);
  //! Records a generated token (call for each token sampled or forced).
  void accept(int32_t token);
  //! Picks the next token from logits [vocab] (modified in place by the penalties).
  int32_t sample(float* logits);
  //! Log-softmax of the last logits given to sample(), after penalties and bias but before
  //! temperature and truncation (what OpenAI-style logprobs report). Computed only while
  //! set_logprobs(true) (the default); a full pass over the vocabulary per token otherwise
  //! weighs on small models.
  const std::vector<float>& last_logprobs() const { return logprobs_; }
  void set_logprobs(bool on) { want_logprobs_ = on; }

  const SamplingParams& params() const { return p_; }

 private:
  void apply_penalties(float* logits) const;

  SamplingParams p_;
  int32_t vocab_;
  Rng rng_;
  std::vector<int32_t> prompt_counts_, output_counts_;
  std::vector<float> logprobs_;
  bool want_logprobs_ = true;
  std::vector<int32_t> order_;
};

}  // namespace dsv3
