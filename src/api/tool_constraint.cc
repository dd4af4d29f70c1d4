#include "api/tool_constraint.h"

#include <nlohmann/json.hpp>

#include "api/tool_calls.h"
#include "base/error.h"

namespace dsv3::api {
namespace {

// A marker as one token where the tokenizer has it as one (DeepSeek's do), else as text.
Segment marker(const Tokenizer& tok, std::string_view text) {
  const std::vector<int32_t> ids = tok.encode(text, false, false);
  return ids.size() == 1 ? Segment::of_token(ids[0]) : Segment::of_text(std::string(text));
}

}  // namespace

std::shared_ptr<const JsonConstraint> tool_arguments_schema(const ToolDef& tool) {
  if (tool.parameters.is_null()) return JsonConstraint::compile_object();
  try {
    return JsonConstraint::compile_schema(nlohmann::json::parse(tool.parameters.dump()), tool.strict);
  } catch (const Error&) {
    return JsonConstraint::compile_object();  // an unsupported keyword: see the header
  }
}

std::vector<SegmentPath> forced_call_paths(const ChatPrompt& prompt, const ChatCompletionRequest& r,
                                           const std::vector<int32_t>& forced_ids, const Tokenizer& tok) {
  const ToolChoice::Mode mode = r.tool_choice.mode;
  if (!prompt.tools_offered || (mode != ToolChoice::Mode::Required && mode != ToolChoice::Mode::Named)) return {};
  const bool v3 = prompt.format == ToolCallFormat::V3;
  SegmentPath prefix;
  for (int32_t id : forced_ids) prefix.push_back(Segment::of_token(id));
  std::vector<SegmentPath> paths;
  for (const ToolDef& t : r.tools) {
    if (mode == ToolChoice::Mode::Named && t.name != r.tool_choice.name) continue;
    SegmentPath p = prefix;
    if (mode == ToolChoice::Mode::Required) {
      if (v3) {
        p.push_back(Segment::of_text(t.name + "\n```json\n"));
      } else {
        p.push_back(Segment::of_text(t.name));
        p.push_back(marker(tok, kToolSep));
      }
    }
    p.push_back(Segment::of_json(tool_arguments_schema(t)));
    if (v3) p.push_back(Segment::of_text("\n```"));
    p.push_back(marker(tok, kToolCallEnd));
    p.push_back(marker(tok, kToolCallsEnd));
    paths.push_back(std::move(p));
  }
  return paths;
}

}  // namespace dsv3::api
