// What every route of `dsv3 serve` shares: the model, tokenizer and engine, the options and
// metrics, and the steps of planning a completion that do not depend on the route (model
// name, context length, seeds, submission). Shared by the HTTP threads; everything here is
// either immutable or internally synchronised.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/prompt.h"
#include "api/requests.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "sampling/token_mask.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/protocol.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

using ojson = nlohmann::ordered_json;

//! prefix + 24 random letters and digits.
std::string random_id(const char* prefix);

struct ServeContext {
  ServeContext(const model::Model& m, const Tokenizer& t, runtime::Engine& e, ServerOptions o);

  const model::Model& model;
  const Tokenizer& tok;
  runtime::Engine& engine;
  const ServerOptions opts;
  Metrics metrics;
  std::unique_ptr<api::ChatPromptBuilder> chat;  //!< null when the tokenizer has no chat template

  api::RequestLimits limits() const;
  //! 404 unless `name` is empty or the served model's id.
  void check_model(const std::string& name) const;
  //! 400 context_length_exceeded naming `param` when a prompt of n tokens leaves no room for
  //! an answer; `what` says what was too long ("the messages are", "the prompt is").
  void check_fits(size_t n, const char* param, const char* what) const;
  //! Tokens an answer to a prompt of n tokens may have: the request's max_tokens (absent:
  //! all the room left), at most the room the context leaves.
  int64_t answer_tokens(size_t n, std::optional<int64_t> requested) const;
  //! One choice's sequence: the request's sampling, stop strings and EOS handling; the seed
  //! (when given) offset by the choice's index so that choices differ but repeat.
  runtime::GenRequest sequence(const api::CommonRequest& r, std::vector<int32_t> prompt, int64_t max_tokens,
                               size_t choice) const;
  //! Queues every sequence, or none: an engine refusal cancels those already queued and
  //! becomes a 400.
  std::vector<std::shared_ptr<runtime::Stream>> submit_all(std::vector<runtime::GenRequest>& gens);
  //! Counts a finished sequence in the metrics.
  void record(const runtime::FinishInfo& f);

  //! The token bytes and trie for constrained sampling, built on first use (a second or so
  //! for a 128K vocabulary) and shared by every request after.
  std::shared_ptr<const TokenVocab> vocab();
  //! The ids that end an answer: the tokenizer's EOS and the model config's.
  std::vector<int32_t> eos_ids() const;

  int64_t created = 0;  //!< when the server started, for the model card

 private:
  std::once_flag vocab_once_;
  std::shared_ptr<const TokenVocab> vocab_;
};

}  // namespace dsv3::server
