// The OpenAI API's words for engine outcomes, in one place.
#pragma once

#include "runtime/engine.h"

namespace dsv3::server {

//! finish_reason of a choice: "stop" or "length" (a cancelled choice reports "stop", as
//! OpenAI does for a stream the client ended). Errors are reported as error bodies instead;
//! "error" is returned only so nothing is ever blank. Tool calls override it with
//! "tool_calls" (api::ToolCallParser::finish_reason).
inline const char* openai_finish_reason(runtime::FinishReason r) {
  switch (r) {
    case runtime::FinishReason::Stop:
    case runtime::FinishReason::Cancelled: return "stop";
    case runtime::FinishReason::Length: return "length";
    case runtime::FinishReason::Error: return "error";
  }
  return "stop";
}

}  // namespace dsv3::server
