// One API's wire format for the answer to a request: OpenAI chat and text completions
// (choices_protocol.cc), the OpenAI Responses API (responses_route.cc), the Anthropic
// Messages API (messages_route.cc). The request path (request_path.h) drives the engine's
// sequences the same way for all of them and asks the protocol what to write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/engine.h"

namespace dsv3::server {

using ojson = nlohmann::ordered_json;

//! A finished request's token counts: prompts counted once, cache hits of each prompt's
//! first choice, speculative drafts of every choice.
struct Usage {
  int64_t prompt = 0, completion = 0, cached = 0, drafted = 0, accepted = 0;
};

//! Called from one thread at a time (the response writer). Streaming and non-streaming see
//! the same token() and finish() calls; non-streaming ignores what they return and asks for
//! body() at the end.
class Protocol {
 public:
  virtual ~Protocol() = default;
  //! Streaming: what is sent before any token.
  virtual std::string open() = 0;
  //! A token of choice i.
  virtual std::string token(size_t i, const runtime::TokenEvent& ev) = 0;
  //! Choice i ended; for FinishReason::Error, what precedes the error and the error event
  //! (the stream goes on for other choices).
  virtual std::string finish(size_t i, const runtime::FinishInfo& f) = 0;
  //! Streaming: what is sent after every choice ended.
  virtual std::string close(const std::vector<runtime::FinishInfo>& f, const Usage& u) = 0;
  //! Non-streaming: the whole body (an error body when a choice failed).
  virtual ojson body(const std::vector<runtime::FinishInfo>& f, const Usage& u) = 0;
};

//! Generated text is often not valid UTF-8: dumps with U+FFFD instead of throwing.
std::string dump(const ojson& j);

//! One server-sent event: "data: JSON\n\n", with an "event: NAME" line first when named.
inline std::string sse(const ojson& data, const char* event = nullptr) {
  std::string s;
  if (event) s += std::string("event: ") + event + "\n";
  return s + "data: " + dump(data) + "\n\n";
}

}  // namespace dsv3::server
