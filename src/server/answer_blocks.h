// A chat answer as the Responses and Messages APIs present it: a sequence of typed blocks
// (reasoning, text, tool call), each opened, extended and closed as the text streams in.
// The splitting itself (reasoning markers, DeepSeek tool-call markers) is ChoiceOutput's,
// the same as for chat completions.
#pragma once

#include <string>
#include <vector>

#include "api/prompt.h"
#include "server/choice_output.h"

namespace dsv3::server {

struct AnswerBlock {
  enum class Kind { Reasoning, Text, ToolCall };
  Kind kind = Kind::Text;
  std::string text;           //!< reasoning or text; a tool call's arguments (JSON text)
  std::string call_id, name;  //!< ToolCall only
};

//! What changed: block `block` started (its kind, id and name are set, text empty), grew by
//! `delta`, or ended (its text is whole).
struct BlockEvent {
  enum class Type { Start, Delta, Stop };
  Type type = Type::Start;
  size_t block = 0;
  std::string delta;
};

class AnswerBlocks {
 public:
  explicit AnswerBlocks(const api::ChatPrompt& prompt) : out_(prompt) {}

  //! Feeds generated text; returns what it decided.
  std::vector<BlockEvent> push(const std::string& text);
  //! Ends the answer with the text released at the end (`tail`); closes the last block.
  std::vector<BlockEvent> finish(const std::string& tail);

  const std::vector<AnswerBlock>& blocks() const { return blocks_; }

 private:
  void apply(const nlohmann::ordered_json& delta, std::vector<BlockEvent>& ev);
  void extend(AnswerBlock::Kind kind, const std::string& text, std::vector<BlockEvent>& ev);
  void close(std::vector<BlockEvent>& ev);

  ChoiceOutput out_;
  std::vector<AnswerBlock> blocks_;
  bool open_ = false;  // the last block is still growing
};

}  // namespace dsv3::server
