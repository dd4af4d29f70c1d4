#include "server/choice_output.h"

#include "server/openai_names.h"

namespace dsv3::server {

using ojson = nlohmann::ordered_json;

ChoiceOutput::ChoiceOutput(const api::ChatPrompt& prompt) : reasoning_(prompt.reasoning, prompt.starts_in_reasoning) {
  if (prompt.tools_offered) tools_.emplace();
}

ojson ChoiceOutput::delta(const api::ReasoningDelta& d) {
  ojson out = ojson::object();
  if (!d.reasoning.empty()) {
    reasoning_text_ += d.reasoning;
    out["reasoning_content"] = d.reasoning;
  }
  if (d.content.empty()) return out;
  if (!tools_) {
    content_ += d.content;
    out["content"] = d.content;
    return out;
  }
  std::string content;
  ojson calls = ojson::array();
  for (const api::ToolCallEvent& ev : tools_->push(d.content)) {
    switch (ev.kind) {
      case api::ToolCallEvent::Kind::Content:
        content += ev.text;
        break;
      case api::ToolCallEvent::Kind::CallStart:
        calls.push_back(ojson{{"index", ev.index},
                              {"id", ev.id},
                              {"type", "function"},
                              {"function", {{"name", ev.name}, {"arguments", ""}}}});
        break;
      case api::ToolCallEvent::Kind::Arguments:
        calls.push_back(ojson{{"index", ev.index}, {"function", {{"arguments", ev.text}}}});
        break;
    }
  }
  if (!content.empty()) {
    content_ += content;
    out["content"] = content;
  }
  if (!calls.empty()) out["tool_calls"] = calls;
  return out;
}

ojson ChoiceOutput::push(const std::string& text) {
  if (finished_ || text.empty()) return ojson::object();
  return delta(reasoning_.push(text));
}

ojson ChoiceOutput::finish() {
  if (finished_) return ojson::object();
  ojson out = delta(reasoning_.finish());
  finished_ = true;
  if (tools_) {
    for (const api::ToolCallEvent& ev : tools_->finish()) {
      if (ev.kind == api::ToolCallEvent::Kind::Content) {
        content_ += ev.text;
        out["content"] = (out.contains("content") ? out["content"].get<std::string>() : std::string()) + ev.text;
      } else {
        if (!out.contains("tool_calls")) out["tool_calls"] = ojson::array();
        if (ev.kind == api::ToolCallEvent::Kind::CallStart)
          out["tool_calls"].push_back(ojson{{"index", ev.index},
                                            {"id", ev.id},
                                            {"type", "function"},
                                            {"function", {{"name", ev.name}, {"arguments", ""}}}});
        else
          out["tool_calls"].push_back(ojson{{"index", ev.index}, {"function", {{"arguments", ev.text}}}});
      }
    }
  }
  return out;
}

ojson ChoiceOutput::message() const {
  ojson m{{"role", "assistant"}};
  const bool calls = tools_ && !tools_->calls().empty();
  m["content"] = calls && content_.empty() ? ojson(nullptr) : ojson(content_);
  if (reasoning_.enabled()) m["reasoning_content"] = reasoning_text_;
  if (calls) m["tool_calls"] = tools_->tool_calls_json();
  return m;
}

std::string ChoiceOutput::finish_reason(runtime::FinishReason engine_reason) const {
  const std::string r = openai_finish_reason(engine_reason);
  return tools_ ? tools_->finish_reason(r) : r;
}

}  // namespace dsv3::server
