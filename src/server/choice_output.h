// One chat choice's generated text turned into OpenAI fields as it streams: <think> blocks
// into reasoning_content (reasoning templates), DeepSeek tool-call markers into tool_calls
// (when tools were offered), the rest into content.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "api/prompt.h"
#include "api/reasoning.h"
#include "api/tool_calls.h"
#include "runtime/engine.h"

namespace dsv3::server {

class ChoiceOutput {
 public:
  explicit ChoiceOutput(const api::ChatPrompt& prompt);

  //! Feeds generated text; returns the chat.completion.chunk delta it completes (empty
  //! object when nothing is decided yet).
  nlohmann::ordered_json push(const std::string& text);
  //! Ends the text; returns the last delta. Call once.
  nlohmann::ordered_json finish();

  //! The whole answer as a chat.completion message.
  nlohmann::ordered_json message() const;
  //! The OpenAI finish_reason for the engine's reason ("tool_calls" after parsed calls).
  std::string finish_reason(runtime::FinishReason engine_reason) const;

 private:
  nlohmann::ordered_json delta(const api::ReasoningDelta& d);

  api::ReasoningSplitter reasoning_;
  std::optional<api::ToolCallParser> tools_;
  std::string content_, reasoning_text_;
  bool finished_ = false;
};

}  // namespace dsv3::server
