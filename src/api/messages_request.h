// The Anthropic Messages API's request (POST /v1/messages, /v1/messages/count_tokens) read as
// the chat request it asks for: `system` becomes a system message; text blocks message
// content; `tool_use` blocks an assistant's tool calls (their `input` printed as JSON
// arguments); `tool_result` blocks tool messages; `thinking` blocks the assistant's
// reasoning_content; `tools` (input_schema) and `tool_choice` (auto / any / tool / none) their
// chat forms; `thinking` the template's thinking switch; `stop_sequences` stop strings (any
// number). Images, documents and server tools are refused by name; so is a last assistant
// message (prefill), which the chat templates cannot continue.
#pragma once

#include <string_view>

#include "api/requests.h"

namespace dsv3::api {

//! count_tokens: the body of /v1/messages/count_tokens (max_tokens not required).
ChatCompletionRequest parse_messages_request(std::string_view body, const RequestLimits& limits = {},
                                             bool count_tokens = false);

}  // namespace dsv3::api
