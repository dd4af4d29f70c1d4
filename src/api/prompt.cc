#include "api/prompt.h"

#include "api/reasoning.h"
#include "api/tool_calls.h"
#include "base/error.h"

namespace dsv3::api {
namespace {

bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// `word` occurs in s as a whole identifier.
bool has_identifier(std::string_view s, std::string_view word) {
  for (size_t p = s.find(word); p != std::string_view::npos; p = s.find(word, p + 1)) {
    const bool left = p == 0 || !ident_char(s[p - 1]);
    const bool right = p + word.size() == s.size() || !ident_char(s[p + word.size()]);
    if (left && right) return true;
  }
  return false;
}

// `arguments` followed (past quotes, brackets and spaces) by "| tojson".
bool pipes_arguments_to_json(std::string_view s) {
  for (size_t p = s.find("arguments"); p != std::string_view::npos; p = s.find("arguments", p + 1)) {
    size_t i = p + 9;
    while (i < s.size() && (s[i] == '\'' || s[i] == '"' || s[i] == ']' || s[i] == ' ')) ++i;
    if (i < s.size() && s[i] == '|') {
      ++i;
      while (i < s.size() && s[i] == ' ') ++i;
      if (s.substr(i, 6) == "tojson") return true;
    }
  }
  return false;
}

std::string tool_call_example(ToolCallFormat format, const std::string& name, const std::string& args) {
  if (format == ToolCallFormat::V31)
    return std::string(kToolCallBegin) + name + std::string(kToolSep) + args + std::string(kToolCallEnd);
  std::string s(kToolCallBegin);
  s += "function";
  s += kToolSep;
  s += name + "\n```json\n" + args + "\n```";
  s += kToolCallEnd;
  return s;
}

}  // namespace

TemplateTraits TemplateTraits::of(std::string_view source) {
  TemplateTraits t;
  t.renders_tools = has_identifier(source, "tools");
  t.arguments_tojson = pipes_arguments_to_json(source);
  t.reasoning = template_reasons(source);
  // The family shows in what the template writes between call-begin and the separator.
  const size_t begin = source.find(kToolCallBegin);
  if (begin != std::string_view::npos) {
    const size_t sep = source.find(kToolSep, begin);
    const std::string_view head = source.substr(begin, sep == std::string_view::npos ? 0 : sep - begin);
    if (head.find("type") == std::string_view::npos && head.find("name") != std::string_view::npos)
      t.format = ToolCallFormat::V31;
  }
  return t;
}

std::string tools_system_prompt(const std::vector<ToolDef>& tools, ToolCallFormat format, const ToolChoice& choice,
                                bool parallel_tool_calls) {
  std::string s = "## Tools\n\nYou can call the following functions. Each one's parameters are given as a JSON Schema.\n";
  for (const ToolDef& t : tools) {
    s += "\n### " + t.name + "\n";
    if (!t.description.empty()) s += "Description: " + t.description + "\n";
    s += "Parameters: ";
    s += t.parameters.is_null() ? std::string("{}") : t.parameters.dump();
    s += "\n";
  }
  s += "\nTo call functions, answer with the calls and nothing after them, in exactly this format (the arguments "
       "are one JSON object matching the function's parameters):\n";
  s += std::string(kToolCallsBegin) + tool_call_example(format, "FUNCTION_NAME", "{\"parameter\": \"value\"}");
  if (parallel_tool_calls) {
    if (format == ToolCallFormat::V3) s += "\n";  // the V3 template separates calls by a newline
    s += tool_call_example(format, "ANOTHER_FUNCTION_NAME", "{\"parameter\": \"value\"}");
  }
  s += std::string(kToolCallsEnd) + "\n\n";
  s += parallel_tool_calls ? "You may call several functions at once, each as its own call as shown. "
                           : "Call at most one function per answer. ";
  s += "Each function's result comes back in a later message; use it to answer the user. ";
  switch (choice.mode) {
    case ToolChoice::Mode::Required: s += "You must call at least one function in this answer."; break;
    case ToolChoice::Mode::Named: s += "You must call the function " + choice.name + " in this answer."; break;
    default: s += "When no function is needed, answer directly.";
  }
  return s;
}

std::string forced_tool_prefix(ToolCallFormat format, const ToolChoice& choice) {
  if (choice.mode != ToolChoice::Mode::Required && choice.mode != ToolChoice::Mode::Named) return "";
  std::string p = std::string(kToolCallsBegin) + std::string(kToolCallBegin);
  if (format == ToolCallFormat::V3) {
    p += "function";
    p += kToolSep;
  }
  if (choice.mode == ToolChoice::Mode::Named)
    p += choice.name + (format == ToolCallFormat::V3 ? std::string("\n```json\n") : std::string(kToolSep));
  return p;
}

ChatPromptBuilder::ChatPromptBuilder(std::string template_source, std::string bos_token, std::string eos_token,
                                     std::string name)
    : source_(std::move(template_source)),
      bos_(std::move(bos_token)),
      eos_(std::move(eos_token)),
      template_(ChatTemplate::parse(source_, name)),
      traits_(TemplateTraits::of(source_)) {}

ojson ChatPromptBuilder::template_messages(const std::vector<ChatMessage>& messages) const {
  ojson out = ojson::array();
  for (const ChatMessage& m : messages) {
    ojson j = m.json;
    if (traits_.arguments_tojson && j.contains("tool_calls")) {
      for (ojson& call : j["tool_calls"]) {
        ojson& args = call["function"]["arguments"];
        ojson parsed = ojson::parse(args.get<std::string>(), nullptr, /*allow_exceptions=*/false);
        if (!parsed.is_discarded()) args = std::move(parsed);
      }
    }
    out.push_back(std::move(j));
  }
  return out;
}

ChatPrompt ChatPromptBuilder::build(const ChatCompletionRequest& r, bool add_generation_prompt) const {
  ChatPrompt p;
  p.format = traits_.format;
  p.tools_offered = !r.tools.empty() && r.tool_choice.mode != ToolChoice::Mode::None;
  ojson messages = template_messages(r.messages);
  if (p.tools_offered && !traits_.renders_tools) {
    p.tools_injected = true;
    const std::string section = tools_system_prompt(r.tools, p.format, r.tool_choice, r.parallel_tool_calls);
    if (!messages.empty() && messages[0]["role"] == "system" && messages[0]["content"].is_string())
      messages[0]["content"] = messages[0]["content"].get<std::string>() + "\n\n" + section;
    else
      messages.insert(messages.begin(), ojson{{"role", "system"}, {"content", section}});
  }
  ojson ctx = r.chat_template_kwargs.is_object() ? r.chat_template_kwargs : ojson::object();
  ctx["messages"] = std::move(messages);
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = bos_;
  ctx["eos_token"] = eos_;
  if (p.tools_offered && traits_.renders_tools)
    ctx["tools"] = r.tools_json;
  else
    ctx.erase("tools");
  try {
    p.text = template_.render(ctx);
  } catch (const Error& e) {
    throw ApiError::invalid("messages", std::string("The chat template rejected the conversation: ") + e.what());
  }
  p.starts_in_reasoning = prompt_opens_reasoning(p.text);
  p.reasoning = p.starts_in_reasoning || traits_.reasoning;
  if (p.tools_offered) {
    p.forced_prefix = forced_tool_prefix(p.format, r.tool_choice);
    // A forced call cannot wait for the thoughts to end: close the opened block first.
    if (!p.forced_prefix.empty() && p.starts_in_reasoning) p.forced_prefix = std::string("</think>") + p.forced_prefix;
  }
  return p;
}

}  // namespace dsv3::api
