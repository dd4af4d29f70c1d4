// One conversation's state on top of a model::Model: the tokens whose latents sit in the cache,
// and generation from a prompt that may share a prefix with them (earlier chat turns,
// a system prompt), which is then not recomputed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::runtime {

struct GenerateOptions {
  SamplingParams sampling;
  int64_t max_tokens = 256;
  std::vector<std::string> stop;   // stop strings (not shown)
  bool ignore_eos = false;
};

struct GenerateResult {
  std::string text;                // everything shown
  std::vector<int32_t> tokens;     // generated ids (EOS and stop tokens included)
  std::string finish_reason;       // "stop" (EOS or stop string), "length", "cancelled"
  int64_t prompt_tokens = 0;       // prompt length
  int64_t reused_tokens = 0;       // prompt tokens found in the cache
  double prefill_seconds = 0, decode_seconds = 0;
};

class Session {
 public:
  //! ctx_size: the most tokens (prompt + output) the session can hold.
  Session(const model::Model& model, const Tokenizer& tokenizer, int64_t ctx_size);

  //! Runs `prompt` (reusing the cached common prefix), then samples until EOS, a stop
  //! string, max_tokens or *cancel. on_text receives visible text as it is produced
  //! (complete UTF-8 only). Throws dsv3::Error if the prompt does not fit the context.
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                          const std::function<void(const std::string&)>& on_text,
                          const std::atomic<bool>* cancel = nullptr);

  //! Forgets the cached tokens.
  void reset();
  int64_t ctx_size() const { return cache_.capacity(); }

 private:
  bool is_eos(int32_t id) const;

  const model::Model& model_;
  const Tokenizer& tok_;
  model::KvCache cache_;
  std::vector<int32_t> cached_;  // the tokens whose latents are in cache_, in order
  std::vector<int32_t> no_token_;  // embedding rows without a token (vocabulary padding)
};

}  // namespace dsv3::runtime
