// The one path every generating request takes, whatever its API:
//   plan (the route parses and validates the body into sequences and a protocol)
//   -> submit (one engine sequence per choice, all or none)
//   -> drive (streaming: SSE events as tokens arrive; non-streaming: a keep-alive space every
//      2 s, then one JSON body) with cancellation when the client goes away
//   -> render (the route's protocol turns token events and finishes into its wire format).
// OpenAI's completion envelopes (ids, object names, usage, error events, the [DONE]
// terminator) are written once (choices_protocol.cc); a completion route only says what a
// choice looks like. The chat-shaped APIs (chat completions, Responses, Messages) share the
// planning of a chat request's sequences (plan_chat_sequences).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/prompt.h"
#include "api/requests.h"
#include "runtime/engine.h"
#include "server/context.h"
#include "server/protocol.h"

namespace httplib {
struct Response;
}

namespace dsv3::server {

//! A route's rendering of one request's choices. Called from one thread at a time (the
//! response writer). Streaming and non-streaming see the same calls; a non-streaming
//! response ignores the chunk payloads and asks for final_choice() at the end.
class ChoiceRenderer {
 public:
  virtual ~ChoiceRenderer() = default;
  //! "chatcmpl-" / "cmpl-": the id prefix.
  virtual const char* id_prefix() const = 0;
  //! The object name of a chunk and of a whole body.
  virtual const char* chunk_object() const = 0;
  virtual const char* body_object() const = 0;
  //! Streaming: the choice object sent for choice i before any token (null: none).
  virtual ojson opening(size_t i) = 0;
  //! A token of choice i: the choice object to stream (null: nothing to send yet).
  virtual ojson token(size_t i, const runtime::TokenEvent& ev) = 0;
  //! Choice i ended: the choice objects to stream, in order. For FinishReason::Error only what
  //! precedes the error (the path then sends the error event itself).
  virtual std::vector<ojson> finish(size_t i, const runtime::FinishInfo& f) = 0;
  //! Non-streaming: choice i of the body (never called for an Error finish).
  virtual ojson final_choice(size_t i, const runtime::FinishInfo& f) = 0;
};

//! OpenAI's chat.completion / text_completion envelopes around a renderer's `choices`
//! choices; include_usage: streaming ends with a chunk that carries usage.
std::unique_ptr<Protocol> choices_protocol(const ServeContext& ctx, std::unique_ptr<ChoiceRenderer> renderer,
                                           size_t choices, bool include_usage);

//! A validated request, ready to run.
struct Plan {
  std::vector<runtime::GenRequest> gens;  //!< one per choice, in choice-index order
  std::vector<size_t> prompt_of;          //!< per choice: which prompt it answers
  int64_t prompt_tokens = 0;              //!< usage.prompt_tokens: every prompt counted once
  bool stream = false;
  std::unique_ptr<Protocol> protocol;
};

//! A chat request's sequences: the prompt through the chat template, the context check
//! (naming `messages_param`), forced tool-call prefixes and their constraint, or the
//! response_format constraint. prompt_of and prompt_tokens are filled, protocol and stream
//! are left to the route.
struct ChatSequences {
  api::ChatPrompt prompt;
  Plan plan;
};
ChatSequences plan_chat_sequences(ServeContext& ctx, const api::ChatCompletionRequest& r,
                                  const char* messages_param = "messages");

//! Submits the plan's sequences and answers through `res` (a chunked provider that drives
//! them). Throws ApiError when the engine refuses a sequence.
void respond(ServeContext& ctx, Plan plan, httplib::Response& res);

//! The routes' planners (chat_route.cc, text_route.cc): parse and validate a body, build
//! prompts and sequences. Throw ApiError for anything the client got wrong.
Plan plan_chat_completion(ServeContext& ctx, std::string_view body);
Plan plan_text_completion(ServeContext& ctx, std::string_view body);
//! POST /v1/responses (OpenAI Responses API) and POST /v1/messages (Anthropic Messages API).
Plan plan_response(ServeContext& ctx, std::string_view body);
Plan plan_message(ServeContext& ctx, std::string_view body);
//! POST /v1/messages/count_tokens: {"input_tokens": N} for a Messages body.
std::string count_message_tokens(ServeContext& ctx, std::string_view body);

}  // namespace dsv3::server
