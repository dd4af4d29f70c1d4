#include "api/requests.h"

#include "api/json_fields.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

namespace dsv3::api {
namespace {

using namespace json_fields;

std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

float number_in(const ojson& obj, const char* key, double lo, double hi, bool lo_open, float fallback) {
  const ojson* v = field(obj, key);
  if (!v) return fallback;
  const double x = get_number(*v, key);
  if (x < lo || x > hi || (lo_open && x == lo))
    bad(key, std::string("Invalid value for '") + key + "': " + fmt(x) + " is outside the allowed range " +
                 (lo_open ? "(" : "[") + fmt(lo) + ", " + fmt(hi) + "].");
  return float(x);
}

int64_t int_in(const ojson& v, const std::string& param, int64_t lo, int64_t hi) {
  const int64_t x = get_int(v, param);
  if (x < lo || x > hi)
    bad(param, "Invalid value for '" + param + "': " + std::to_string(x) + " is outside the allowed range [" +
                   std::to_string(lo) + ", " + std::to_string(hi) + "].");
  return x;
}

void check_token_id(int64_t id, const RequestLimits& limits, const std::string& param) {
  if (id < 0 || id > std::numeric_limits<int32_t>::max() || (limits.vocab_size > 0 && id >= limits.vocab_size))
    bad(param, "Invalid token id " + std::to_string(id) + " in '" + param + "': token ids must be in [0, " +
                   std::to_string(limits.vocab_size > 0 ? limits.vocab_size : std::numeric_limits<int32_t>::max()) +
                   ").");
}

SamplingParams parse_sampling(const ojson& body, const RequestLimits& limits) {
  SamplingParams s;
  s.temperature = number_in(body, "temperature", 0, 2, false, 1.0f);
  s.top_p = number_in(body, "top_p", 0, 1, true, 1.0f);
  s.min_p = number_in(body, "min_p", 0, 1, false, 0.0f);
  s.presence_penalty = number_in(body, "presence_penalty", -2, 2, false, 0.0f);
  s.frequency_penalty = number_in(body, "frequency_penalty", -2, 2, false, 0.0f);
  if (const ojson* v = field(body, "repetition_penalty")) {
    const double x = get_number(*v, "repetition_penalty");
    if (!(x > 0) || x > 10)
      bad("repetition_penalty", "Invalid value for 'repetition_penalty': " + fmt(x) + " is outside (0, 10].");
    s.repetition_penalty = float(x);
  }
  // -1 is vLLM's spelling of "off"; 0 is ours.
  if (const ojson* v = field(body, "top_k")) s.top_k = int32_t(std::max<int64_t>(0, int_in(*v, "top_k", -1, 1 << 30)));
  if (const ojson* v = field(body, "seed")) {
    if (v->is_number_unsigned())
      s.seed = v->get<uint64_t>();
    else
      s.seed = uint64_t(get_int(*v, "seed"));
  }
  if (const ojson* v = field(body, "logit_bias")) {
    for (const auto& [key, value] : get_object(*v, "logit_bias").items()) {
      const std::string param = "logit_bias." + key;
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (key.empty() || used != key.size() || key[0] == '+' || key[0] == ' ')
        bad("logit_bias", "Invalid key '" + key + "' in 'logit_bias': keys must be token ids.");
      check_token_id(id, limits, "logit_bias");
      const double b = get_number(value, param);
      if (b < -100 || b > 100)
        bad("logit_bias", "Invalid value for logit_bias token " + key + ": " + fmt(b) + " is outside [-100, 100].");
      s.logit_bias[int32_t(id)] = float(b);
    }
  }
  return s;
}

void parse_common(const ojson& body, const RequestLimits& limits, CommonRequest& r) {
  if (const ojson* v = field(body, "model")) r.model = get_string(*v, "model");
  r.sampling = parse_sampling(body, limits);
  if (const ojson* v = field(body, "stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > 4) bad("stop", "Invalid 'stop': at most 4 stop sequences are allowed, got " +
                                         std::to_string(v->size()) + ".");
      for (size_t i = 0; i < v->size(); ++i) r.stop.push_back(get_string((*v)[i], at("stop", i)));
    } else {
      wrong_type("stop", *v, "a string or an array of strings");
    }
    for (const std::string& s : r.stop)
      if (s.empty()) bad("stop", "Invalid 'stop': stop sequences must not be empty.");
  }
  if (const ojson* v = field(body, "n")) r.n = int(int_in(*v, "n", 1, limits.max_n));
  if (const ojson* v = field(body, "stream")) r.stream = get_bool(*v, "stream");
  if (const ojson* v = field(body, "stream_options")) {
    if (!r.stream) bad("stream_options", "Invalid 'stream_options': only allowed when 'stream' is true.");
    if (const ojson* u = field(get_object(*v, "stream_options"), "include_usage"))
      r.include_usage = get_bool(*u, "stream_options.include_usage");
  }
  if (const ojson* v = field(body, "user")) r.user = get_string(*v, "user");
  if (const ojson* v = field(body, "ignore_eos")) r.ignore_eos = get_bool(*v, "ignore_eos");
  if (const ojson* v = field(body, "speculative")) r.speculative = get_bool(*v, "speculative");
}

std::optional<int64_t> parse_max_tokens(const ojson& body, const char* key, int64_t least = 1) {
  const ojson* v = field(body, key);
  if (!v) return std::nullopt;
  const int64_t x = get_int(*v, key);
  if (x < least)
    bad(key, std::string("Invalid value for '") + key + "': " + std::to_string(x) + " must be at least " +
                 std::to_string(least) + ".");
  return x;
}

// ---- chat messages ---------------------------------------------------------------------

// A content field as one string: text parts joined by "\n" (what vLLM does). Anything but
// text is refused by name, so a client learns that images are the problem, not the JSON.
std::string content_text(const ojson& content, const std::string& param, bool assistant) {
  return joined_parts(
      content, param, "a string or an array of content parts",
      [assistant](const ojson& part, const std::string& p, const std::string& type) -> std::string {
        auto text_of = [&](const char* key) -> std::string {
          const ojson* v = field(part, key);
          if (!v) bad(join(p, key), "Missing required parameter: '" + join(p, key) + "'.");
          return get_string(*v, join(p, key));
        };
        if (type == "text" || type == "input_text") return text_of("text");
        if (assistant && type == "refusal") return text_of("refusal");
        if (type == "image_url" || type == "input_image" || type == "image")
          bad(join(p, "type"), "Invalid content part type '" + type + "': images are not supported (this model reads text only).");
        if (type == "input_audio" || type == "audio")
          bad(join(p, "type"), "Invalid content part type '" + type + "': audio is not supported (this model reads text only).");
        if (type == "file" || type == "input_file")
          bad(join(p, "type"), "Invalid content part type '" + type + "': files are not supported; send the file's text as a text part.");
        bad(join(p, "type"), "Unsupported content part type '" + type + "': only 'text' parts are supported.");
      });
}

ToolCall parse_tool_call(const ojson& v, const std::string& p) {
  const ojson& o = get_object(v, p);
  ToolCall c;
  const ojson* id = field(o, "id");
  if (!id) bad(join(p, "id"), "Missing required parameter: '" + join(p, "id") + "'.");
  c.id = get_string(*id, join(p, "id"));
  if (const ojson* t = field(o, "type")) {
    c.type = get_string(*t, join(p, "type"));
    if (c.type != "function")
      bad(join(p, "type"), "Invalid value for '" + join(p, "type") + "': only 'function' is supported.");
  }
  const ojson* f = field(o, "function");
  if (!f) bad(join(p, "function"), "Missing required parameter: '" + join(p, "function") + "'.");
  const std::string fp = join(p, "function");
  get_object(*f, fp);
  const ojson* name = field(*f, "name");
  if (!name) bad(join(fp, "name"), "Missing required parameter: '" + join(fp, "name") + "'.");
  c.name = get_string(*name, join(fp, "name"));
  const ojson* args = field(*f, "arguments");
  if (!args) bad(join(fp, "arguments"), "Missing required parameter: '" + join(fp, "arguments") + "'.");
  // OpenAI sends a JSON string; some clients send the object itself, which we print back.
  c.arguments = args->is_string() ? args->get<std::string>()
                : args->is_object() ? args->dump()
                                    : (wrong_type(join(fp, "arguments"), *args, "a string"), std::string());
  return c;
}

ChatMessage parse_message(const ojson& v, const std::string& p) {
  const ojson& o = get_object(v, p);
  ChatMessage m;
  const ojson* role = field(o, "role");
  if (!role) bad(join(p, "role"), "Missing required parameter: '" + join(p, "role") + "'.");
  m.role = get_string(*role, join(p, "role"));
  if (m.role == "developer") m.role = "system";
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
    bad(join(p, "role"), "Invalid value for '" + join(p, "role") + "': '" + m.role +
                             "'. Supported roles are 'system', 'developer', 'user', 'assistant' and 'tool'.");
  const bool assistant = m.role == "assistant";
  if (const ojson* c = field(o, "content")) m.content = content_text(*c, join(p, "content"), assistant);
  if (const ojson* n = field(o, "name")) m.name = get_string(*n, join(p, "name"));
  if (const ojson* tc = field(o, "tool_calls")) {
    if (!assistant) bad(join(p, "tool_calls"), "Only assistant messages may carry 'tool_calls'.");
    const ojson& calls = get_array(*tc, join(p, "tool_calls"));
    for (size_t i = 0; i < calls.size(); ++i) m.tool_calls.push_back(parse_tool_call(calls[i], at(join(p, "tool_calls"), i)));
  }
  if (m.role == "tool") {
    const ojson* id = field(o, "tool_call_id");
    if (!id) bad(join(p, "tool_call_id"), "Missing required parameter: '" + join(p, "tool_call_id") + "'.");
    m.tool_call_id = get_string(*id, join(p, "tool_call_id"));
  }
  if (!m.content) {
    if (!assistant)
      bad(join(p, "content"), "Missing required parameter: '" + join(p, "content") + "'.");
    if (m.tool_calls.empty())
      bad(join(p, "content"), "Missing required parameter: '" + join(p, "content") +
                                  "' (an assistant message needs content or tool_calls).");
  }
  // Templates expect null content beside tool calls (the V3 template only renders the calls then).
  if (assistant && !m.tool_calls.empty() && m.content && m.content->empty()) m.content.reset();
  for (const auto& [key, value] : o.items()) {
    if (key == "role") {
      m.json[key] = m.role;
    } else if (key == "content") {
      m.json[key] = m.content ? ojson(*m.content) : ojson(nullptr);
    } else if (key == "tool_calls" && !m.tool_calls.empty()) {
      ojson calls = ojson::array();
      for (size_t i = 0; i < m.tool_calls.size(); ++i) {
        ojson c = value[i];
        if (!c.contains("type") || c["type"].is_null()) c["type"] = "function";
        c["function"]["arguments"] = m.tool_calls[i].arguments;
        calls.push_back(std::move(c));
      }
      m.json[key] = std::move(calls);
    } else {
      m.json[key] = value;
    }
  }
  // Templates test `content is none`, which an absent key is not.
  if (!m.json.contains("content")) m.json["content"] = nullptr;
  return m;
}

bool valid_function_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-')) return false;
  return true;
}

void parse_tools(const ojson& body, ChatCompletionRequest& r) {
  const ojson* v = field(body, "tools");
  if (!v) return;
  const ojson& tools = get_array(*v, "tools");
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string p = at("tools", i);
    const ojson& t = get_object(tools[i], p);
    const ojson* type = field(t, "type");
    if (!type) bad(join(p, "type"), "Missing required parameter: '" + join(p, "type") + "'.");
    if (get_string(*type, join(p, "type")) != "function")
      bad(join(p, "type"), "Invalid value for '" + join(p, "type") + "': only 'function' tools are supported.");
    const ojson* f = field(t, "function");
    if (!f) bad(join(p, "function"), "Missing required parameter: '" + join(p, "function") + "'.");
    const std::string fp = join(p, "function");
    get_object(*f, fp);
    ToolDef d;
    const ojson* name = field(*f, "name");
    if (!name) bad(join(fp, "name"), "Missing required parameter: '" + join(fp, "name") + "'.");
    d.name = get_string(*name, join(fp, "name"));
    if (!valid_function_name(d.name))
      bad(join(fp, "name"), "Invalid 'tools[" + std::to_string(i) + "].function.name': '" + d.name +
                                "' must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.");
    if (!names.insert(d.name).second)
      bad(join(fp, "name"), "Duplicate function name '" + d.name + "' in 'tools'.");
    if (const ojson* s = field(*f, "description")) d.description = get_string(*s, join(fp, "description"));
    if (const ojson* s = field(*f, "parameters")) d.parameters = get_object(*s, join(fp, "parameters"));
    if (const ojson* s = field(*f, "strict")) d.strict = get_bool(*s, join(fp, "strict"));
    r.tools.push_back(std::move(d));
  }
  r.tools_json = tools;
}

void parse_tool_choice(const ojson& body, ChatCompletionRequest& r) {
  using Mode = ToolChoice::Mode;
  r.tool_choice.mode = r.tools.empty() ? Mode::None : Mode::Auto;
  const ojson* v = field(body, "tool_choice");
  if (!v) return;
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    if (s == "none") r.tool_choice.mode = Mode::None;
    else if (s == "auto") r.tool_choice.mode = r.tools.empty() ? Mode::None : Mode::Auto;
    else if (s == "required") r.tool_choice.mode = Mode::Required;
    else bad("tool_choice", "Invalid value for 'tool_choice': '" + s + "'. Use 'none', 'auto', 'required' or an object naming a function.");
  } else if (v->is_object()) {
    const ojson* type = field(*v, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "function")
      bad("tool_choice.type", "Invalid 'tool_choice': the object form needs \"type\": \"function\".");
    const ojson* f = field(*v, "function");
    if (!f) bad("tool_choice.function", "Missing required parameter: 'tool_choice.function'.");
    const ojson* name = field(get_object(*f, "tool_choice.function"), "name");
    if (!name) bad("tool_choice.function.name", "Missing required parameter: 'tool_choice.function.name'.");
    r.tool_choice.mode = Mode::Named;
    r.tool_choice.name = get_string(*name, "tool_choice.function.name");
  } else {
    wrong_type("tool_choice", *v, "a string or an object");
  }
  if (r.tool_choice.mode == Mode::Required && r.tools.empty())
    bad("tool_choice", "Invalid 'tool_choice': 'required' needs a non-empty 'tools' list.");
  if (r.tool_choice.mode == Mode::Named) {
    bool known = false;
    for (const ToolDef& t : r.tools) known |= t.name == r.tool_choice.name;
    if (!known)
      bad("tool_choice", "Invalid 'tool_choice': function '" + r.tool_choice.name + "' is not in 'tools'.");
  }
}

void parse_response_format(const ojson& body, ChatCompletionRequest& r) {
  const ojson* v = field(body, "response_format");
  if (!v) return;
  const ojson& o = get_object(*v, "response_format");
  const ojson* type = field(o, "type");
  if (!type) bad("response_format.type", "Missing required parameter: 'response_format.type'.");
  const std::string& t = get_string(*type, "response_format.type");
  ResponseFormat& f = r.response_format;
  if (t == "text") {
    f.type = ResponseFormat::Type::Text;
  } else if (t == "json_object") {
    f.type = ResponseFormat::Type::JsonObject;
  } else if (t == "json_schema") {
    f.type = ResponseFormat::Type::JsonSchema;
    const ojson* js = field(o, "json_schema");
    if (!js) bad("response_format.json_schema", "Missing required parameter: 'response_format.json_schema'.");
    get_object(*js, "response_format.json_schema");
    const ojson* name = field(*js, "name");
    if (!name) bad("response_format.json_schema.name", "Missing required parameter: 'response_format.json_schema.name'.");
    f.name = get_string(*name, "response_format.json_schema.name");
    if (!valid_function_name(f.name))
      bad("response_format.json_schema.name",
          "Invalid 'response_format.json_schema.name': must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'.");
    if (const ojson* d = field(*js, "description")) f.description = get_string(*d, "response_format.json_schema.description");
    if (const ojson* s = field(*js, "schema")) {
      if (!s->is_object() && !s->is_boolean()) wrong_type("response_format.json_schema.schema", *s, "an object");
      f.schema = *s;
    }
    if (const ojson* s = field(*js, "strict")) f.strict = get_bool(*s, "response_format.json_schema.strict");
  } else {
    bad("response_format.type", "Invalid value for 'response_format.type': '" + t +
                                    "'. Supported values are 'text', 'json_object' and 'json_schema'.");
  }
}

}  // namespace

ChatCompletionRequest parse_chat_request_json(const ojson& body, const RequestLimits& limits) {
  check_body(body);
  ChatCompletionRequest r;
  parse_common(body, limits, r);
  const ojson* msgs = field(body, "messages");
  if (!msgs) bad("messages", "Missing required parameter: 'messages'.");
  get_array(*msgs, "messages");
  if (msgs->empty()) bad("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.");
  for (size_t i = 0; i < msgs->size(); ++i) r.messages.push_back(parse_message((*msgs)[i], at("messages", i)));

  r.max_tokens = parse_max_tokens(body, "max_tokens");
  if (auto m = parse_max_tokens(body, "max_completion_tokens")) r.max_tokens = m;
  if (const ojson* v = field(body, "logprobs")) r.logprobs = get_bool(*v, "logprobs");
  if (const ojson* v = field(body, "top_logprobs")) {
    r.top_logprobs = int(int_in(*v, "top_logprobs", 0, 20));
    if (!r.logprobs) bad("top_logprobs", "Invalid 'top_logprobs': requires 'logprobs' to be true.");
  }
  if (field(body, "functions") || field(body, "function_call"))
    bad(field(body, "functions") ? "functions" : "function_call",
        "The legacy 'functions' / 'function_call' parameters are not supported; use 'tools' and 'tool_choice'.");
  parse_tools(body, r);
  parse_tool_choice(body, r);
  if (const ojson* v = field(body, "parallel_tool_calls")) r.parallel_tool_calls = get_bool(*v, "parallel_tool_calls");
  parse_response_format(body, r);
  if (const ojson* v = field(body, "chat_template_kwargs")) r.chat_template_kwargs = get_object(*v, "chat_template_kwargs");
  return r;
}

ChatCompletionRequest parse_chat_request(std::string_view body, const RequestLimits& limits) {
  return parse_chat_request_json(parse_body(body), limits);
}

CompletionRequest parse_completion_request_json(const ojson& body, const RequestLimits& limits) {
  check_body(body);
  CompletionRequest r;
  parse_common(body, limits, r);
  const ojson* prompt = field(body, "prompt");
  if (!prompt) bad("prompt", "Missing required parameter: 'prompt'.");
  auto token_list = [&](const ojson& arr, const std::string& p) {
    PromptInput in;
    in.is_tokens = true;
    if (arr.empty()) bad(p, "Invalid '" + p + "': a token prompt must not be empty.");
    for (size_t i = 0; i < arr.size(); ++i) {
      const int64_t id = get_int(arr[i], at(p, i));
      check_token_id(id, limits, p);
      in.tokens.push_back(int32_t(id));
    }
    return in;
  };
  if (prompt->is_string()) {
    r.prompts.push_back({false, prompt->get<std::string>(), {}});
  } else if (prompt->is_array()) {
    if (prompt->empty()) bad("prompt", "Invalid 'prompt': empty array.");
    const ojson& first = (*prompt)[0];
    if (first.is_number()) {
      r.prompts.push_back(token_list(*prompt, "prompt"));
    } else {
      for (size_t i = 0; i < prompt->size(); ++i) {
        const ojson& e = (*prompt)[i];
        if (e.is_string() && first.is_string())
          r.prompts.push_back({false, e.get<std::string>(), {}});
        else if (e.is_array() && first.is_array())
          r.prompts.push_back(token_list(e, at("prompt", i)));
        else
          bad(at("prompt", i), "Invalid 'prompt': expected a string, an array of strings, an array of token ids "
                               "or an array of token-id arrays (element " + std::to_string(i) + " is " +
                               type_name(e) + ").");
      }
    }
  } else {
    wrong_type("prompt", *prompt, "a string or an array");
  }
  // 0 with echo and logprobs scores a prompt without generating (likelihood evaluation).
  if (auto m = parse_max_tokens(body, "max_tokens", 0)) r.max_tokens = *m;
  if (const ojson* v = field(body, "echo")) r.echo = get_bool(*v, "echo");
  if (const ojson* v = field(body, "logprobs")) r.logprobs = int(int_in(*v, "logprobs", 0, 5));
  if (const ojson* v = field(body, "suffix"))
    if (!get_string(*v, "suffix").empty()) bad("suffix", "'suffix' is not supported by this model.");
  if (const ojson* v = field(body, "best_of"))
    if (int_in(*v, "best_of", 1, limits.max_n) != 1)
      bad("best_of", "'best_of' other than 1 is not supported; use 'n' for several choices.");
  return r;
}

CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits) {
  return parse_completion_request_json(parse_body(body), limits);
}

}  // namespace dsv3::api
