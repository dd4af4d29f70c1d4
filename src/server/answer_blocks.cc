#include "server/answer_blocks.h"

namespace dsv3::server {

using ojson = nlohmann::ordered_json;

void AnswerBlocks::close(std::vector<BlockEvent>& ev) {
  if (!open_) return;
  ev.push_back(BlockEvent{BlockEvent::Type::Stop, blocks_.size() - 1, {}});
  open_ = false;
}

void AnswerBlocks::extend(AnswerBlock::Kind kind, const std::string& text, std::vector<BlockEvent>& ev) {
  if (text.empty()) return;
  if (!open_ || blocks_.back().kind != kind) {
    close(ev);
    blocks_.push_back(AnswerBlock{kind, {}, {}, {}});
    open_ = true;
    ev.push_back(BlockEvent{BlockEvent::Type::Start, blocks_.size() - 1, {}});
  }
  blocks_.back().text += text;
  ev.push_back(BlockEvent{BlockEvent::Type::Delta, blocks_.size() - 1, text});
}

// A chat delta's fields in the order ChoiceOutput decides them: reasoning, content, calls.
void AnswerBlocks::apply(const ojson& delta, std::vector<BlockEvent>& ev) {
  if (auto it = delta.find("reasoning_content"); it != delta.end())
    extend(AnswerBlock::Kind::Reasoning, it->get<std::string>(), ev);
  if (auto it = delta.find("content"); it != delta.end() && it->is_string())
    extend(AnswerBlock::Kind::Text, it->get<std::string>(), ev);
  if (auto it = delta.find("tool_calls"); it != delta.end())
    for (const ojson& c : *it) {
      if (c.contains("id")) {  // a call starts
        close(ev);
        blocks_.push_back(AnswerBlock{AnswerBlock::Kind::ToolCall, {}, c["id"].get<std::string>(),
                                      c["function"]["name"].get<std::string>()});
        open_ = true;
        ev.push_back(BlockEvent{BlockEvent::Type::Start, blocks_.size() - 1, {}});
      }
      const std::string args = c["function"].value("arguments", "");
      if (!args.empty() && open_ && blocks_.back().kind == AnswerBlock::Kind::ToolCall) {
        blocks_.back().text += args;
        ev.push_back(BlockEvent{BlockEvent::Type::Delta, blocks_.size() - 1, args});
      }
    }
}

std::vector<BlockEvent> AnswerBlocks::push(const std::string& text) {
  std::vector<BlockEvent> ev;
  apply(out_.push(text), ev);
  return ev;
}

std::vector<BlockEvent> AnswerBlocks::finish(const std::string& tail) {
  std::vector<BlockEvent> ev;
  apply(out_.push(tail), ev);
  apply(out_.finish(), ev);
  close(ev);
  return ev;
}

}  // namespace dsv3::server
