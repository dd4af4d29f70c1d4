#include "api/messages_request.h"

#include "api/json_fields.h"

namespace dsv3::api {
namespace {

using namespace json_fields;

const ojson& required(const ojson& obj, const char* key, const std::string& p) {
  const ojson* v = field(obj, key);
  if (!v) bad(join(p, key), join(p, key) + ": Field required");
  return *v;
}

[[noreturn]] void unsupported_block(const std::string& p, const std::string& type) {
  if (type == "image" || type == "document")
    bad(join(p, "type"), join(p, "type") + ": '" + type + "' blocks are not supported: this model reads text only.");
  bad(join(p, "type"), join(p, "type") + ": unsupported content block type '" + type + "'.");
}

// A tool_result's content (or the system prompt): a string or text blocks.
std::string result_text(const ojson& content, const std::string& param) {
  return joined_parts(content, param, "a string or an array of content blocks",
                      [](const ojson& b, const std::string& p, const std::string& type) -> std::string {
                        if (type != "text") unsupported_block(p, type);
                        return get_string(required(b, "text", p), join(p, "text"));
                      });
}

// One Anthropic message as chat messages: a user turn's tool results come first as tool
// messages (the API puts them first), then its text; an assistant turn is one message with
// its text, thoughts and calls.
void add_message(const ojson& m, const std::string& p, ojson& out) {
  get_object(m, p);
  const std::string& role = get_string(required(m, "role", p), join(p, "role"));
  if (role != "user" && role != "assistant")
    bad(join(p, "role"), join(p, "role") + ": must be 'user' or 'assistant' (the system prompt goes in 'system').");
  const ojson& content = required(m, "content", p);
  if (content.is_string()) {
    out.push_back(ojson{{"role", role}, {"content", content}});
    return;
  }
  if (!content.is_array()) wrong_type(join(p, "content"), content, "a string or an array of content blocks");
  std::string text, thinking;
  bool has_text = false;
  ojson calls = ojson::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string pp = at(join(p, "content"), i);
    const ojson& b = get_object(content[i], pp);
    const std::string& type = get_string(required(b, "type", pp), join(pp, "type"));
    if (type == "text") {
      if (has_text) text += '\n';
      text += get_string(required(b, "text", pp), join(pp, "text"));
      has_text = true;
    } else if (type == "tool_result" && role == "user") {
      std::string result;
      if (const ojson* c = field(b, "content")) result = result_text(*c, join(pp, "content"));
      if (const ojson* e = field(b, "is_error"); e && get_bool(*e, join(pp, "is_error")))
        result = "Error: " + result;
      out.push_back(ojson{{"role", "tool"},
                          {"tool_call_id", get_string(required(b, "tool_use_id", pp), join(pp, "tool_use_id"))},
                          {"content", result}});
    } else if (type == "tool_use" && role == "assistant") {
      calls.push_back(ojson{{"id", get_string(required(b, "id", pp), join(pp, "id"))},
                            {"type", "function"},
                            {"function",
                             {{"name", get_string(required(b, "name", pp), join(pp, "name"))},
                              {"arguments", get_object(required(b, "input", pp), join(pp, "input")).dump()}}}});
    } else if (type == "thinking" && role == "assistant") {
      thinking += get_string(required(b, "thinking", pp), join(pp, "thinking"));
    } else if (type == "redacted_thinking" && role == "assistant") {
      // Encrypted thoughts of another model: nothing this one can read.
    } else if (type == "tool_result" || type == "tool_use" || type == "thinking" || type == "redacted_thinking") {
      bad(join(pp, "type"), join(pp, "type") + ": '" + type + "' blocks belong in " +
                                (type == "tool_result" ? "user" : "assistant") + " messages.");
    } else {
      unsupported_block(pp, type);
    }
  }
  if (role == "assistant") {
    ojson a{{"role", "assistant"}, {"content", has_text || calls.empty() ? ojson(text) : ojson(nullptr)}};
    if (!thinking.empty()) a["reasoning_content"] = thinking;
    if (!calls.empty()) a["tool_calls"] = std::move(calls);
    out.push_back(std::move(a));
  } else if (has_text || out.empty() || out.back()["role"] != "tool") {
    out.push_back(ojson{{"role", "user"}, {"content", text}});
  }
}

ojson chat_tools(const ojson& tools) {
  get_array(tools, "tools");
  ojson out = ojson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string p = at("tools", i);
    const ojson& t = get_object(tools[i], p);
    if (const ojson* type = field(t, "type"); type && get_string(*type, join(p, "type")) != "custom")
      bad(join(p, "type"), join(p, "type") + ": server tools ('" + type->get<std::string>() +
                               "') are not supported; define client tools with name and input_schema.");
    ojson f{{"name", get_string(required(t, "name", p), join(p, "name"))},
            {"parameters", get_object(required(t, "input_schema", p), join(p, "input_schema"))}};
    if (const ojson* d = field(t, "description")) f["description"] = get_string(*d, join(p, "description"));
    out.push_back(ojson{{"type", "function"}, {"function", std::move(f)}});
  }
  return out;
}

}  // namespace

ChatCompletionRequest parse_messages_request(std::string_view text, const RequestLimits& limits, bool count_tokens) {
  const ojson body = parse_body(text);
  check_body(body);
  ojson chat = ojson::object();
  chat["model"] = get_string(required(body, "model", ""), "model");
  if (!count_tokens) {
    const int64_t n = get_int(required(body, "max_tokens", ""), "max_tokens");
    if (n < 1) bad("max_tokens", "max_tokens: must be at least 1");
    chat["max_tokens"] = n;
  }
  ojson msgs = ojson::array();
  if (const ojson* s = field(body, "system")) {
    const std::string sys = result_text(*s, "system");
    if (!sys.empty()) msgs.push_back(ojson{{"role", "system"}, {"content", sys}});
  }
  const ojson& in = get_array(required(body, "messages", ""), "messages");
  if (in.empty()) bad("messages", "messages: at least one message is required");
  for (size_t i = 0; i < in.size(); ++i) add_message(in[i], at("messages", i), msgs);
  if (!count_tokens && in.back().value("role", "") == "assistant")
    bad(at("messages", in.size() - 1),
        "A last assistant message (prefill) is not supported: the chat template cannot continue it. End with a user "
        "message.");
  chat["messages"] = std::move(msgs);

  if (const ojson* v = field(body, "temperature")) {
    const double t = get_number(*v, "temperature");
    if (t < 0 || t > 1) bad("temperature", "temperature: must be between 0 and 1");
    chat["temperature"] = t;
  }
  for (const char* k : {"top_p", "top_k", "stream", "seed", "ignore_eos", "speculative"})
    if (const ojson* v = field(body, k)) chat[k] = *v;
  if (const ojson* v = field(body, "tools")) chat["tools"] = chat_tools(*v);
  if (const ojson* v = field(body, "tool_choice")) {
    const ojson& o = get_object(*v, "tool_choice");
    const std::string& type = get_string(required(o, "type", "tool_choice"), "tool_choice.type");
    if (type == "auto" || type == "none") chat["tool_choice"] = type;
    else if (type == "any") chat["tool_choice"] = "required";
    else if (type == "tool")
      chat["tool_choice"] = ojson{{"type", "function"},
                                  {"function", {{"name", get_string(required(o, "name", "tool_choice"), "tool_choice.name")}}}};
    else bad("tool_choice.type", "tool_choice.type: must be 'auto', 'any', 'tool' or 'none'");
    if (const ojson* d = field(o, "disable_parallel_tool_use"))
      chat["parallel_tool_calls"] = !get_bool(*d, "tool_choice.disable_parallel_tool_use");
  }
  if (const ojson* v = field(body, "thinking")) {
    const ojson& o = get_object(*v, "thinking");
    const std::string& type = get_string(required(o, "type", "thinking"), "thinking.type");
    if (type != "enabled" && type != "disabled" && type != "adaptive")
      bad("thinking.type", "thinking.type: must be 'enabled', 'adaptive' or 'disabled'");
    chat["chat_template_kwargs"] = ojson{{"thinking", type != "disabled"}};
  }
  ChatCompletionRequest r = parse_chat_request_json(chat, limits);
  // Stop sequences: Anthropic allows more than chat completions' four. Bounded, since every
  // sequence is matched against every generated token on the engine's thread.
  constexpr size_t kMaxStops = 64, kMaxStopBytes = 8192;
  if (const ojson* v = field(body, "stop_sequences")) {
    get_array(*v, "stop_sequences");
    if (v->size() > kMaxStops)
      bad("stop_sequences", "stop_sequences: at most " + std::to_string(kMaxStops) + " sequences");
    size_t bytes = 0;
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string& s = get_string((*v)[i], at("stop_sequences", i));
      if (s.empty()) bad(at("stop_sequences", i), "stop_sequences: entries must not be empty");
      bytes += s.size();
      r.stop.push_back(s);
    }
    if (bytes > kMaxStopBytes)
      bad("stop_sequences", "stop_sequences: at most " + std::to_string(kMaxStopBytes) + " bytes in all");
  }
  return r;
}

}  // namespace dsv3::api
