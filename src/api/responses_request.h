// The OpenAI Responses API's request (POST /v1/responses) read as the chat request it asks
// for: `instructions` and `input` (a string, or message, function_call,
// function_call_output and reasoning items) become chat messages, `tools` (flat function
// definitions) and `tool_choice` their chat forms, `text.format` a response_format,
// `max_output_tokens` max_tokens. What needs server-side state (`previous_response_id`,
// `store: true`, `background`, item references) is refused with a 400 that says so: this
// server keeps no responses.
#pragma once

#include <string_view>

#include "api/requests.h"

namespace dsv3::api {

struct ResponsesRequest {
  ChatCompletionRequest chat;
  //! The request fields a response object repeats (instructions, max_output_tokens, tools,
  //! tool_choice, text, temperature, top_p, parallel_tool_calls, reasoning, metadata), in
  //! their Responses form with the defaults filled in.
  ojson echo = ojson::object();
};

ResponsesRequest parse_responses_request(std::string_view body, const RequestLimits& limits = {});

}  // namespace dsv3::api
