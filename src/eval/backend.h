// Where `dsv3 eval` gets its numbers: the engine in this process, or any OpenAI-compatible
// server (`--url`) through the same requests lm-evaluation-harness sends (token-id prompts
// with echo and logprobs for likelihoods, text prompts for generation, /tokenize). Both run
// prompts through dsv3's one generation loop when the server is dsv3, so their scores agree.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/numerics.h"
#include "model/model.h"
#include "threading/pool.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::eval {

class Backend {
 public:
  virtual ~Backend() = default;
  //! "in-process (bf16 numerics)" or the server's URL.
  virtual std::string describe() const = 0;
  //! The tokenizer's ids for text, with BOS where the tokenizer adds one and add_special says so.
  virtual std::vector<int32_t> tokenize(const std::string& text, bool add_special) = 0;
  //! For each prompt, the log-probability of each of its tokens after the first, given the
  //! tokens before it (prompt.size() - 1 values).
  virtual std::vector<std::vector<double>> prompt_logprobs(const std::vector<std::vector<int32_t>>& prompts) = 0;
  //! Greedy continuation of a text prompt, up to max_tokens or a stop string (not included).
  virtual std::string generate(const std::string& prompt, int64_t max_tokens, const std::vector<std::string>& stop) = 0;
  //! Tokens a scored prompt may hold.
  virtual int64_t context() const = 0;
};

//! The engine on `model`, batching up to 16 prompts per step, absorbed attention (as serve).
std::unique_ptr<Backend> engine_backend(const model::Model& model, const Tokenizer& tok, ThreadPool& pool,
                                        kernels::Numerics numerics, int64_t ctx_size);
//! A server at `url` (http://host:port); api_key may be empty.
std::unique_ptr<Backend> http_backend(const std::string& url, const std::string& api_key);

}  // namespace dsv3::eval
