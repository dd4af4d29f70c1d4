#include "api/responses_request.h"

#include <utility>

#include "api/json_fields.h"

namespace dsv3::api {
namespace {

using namespace json_fields;

const ojson& required(const ojson& obj, const char* key, const std::string& p) {
  const ojson* v = field(obj, key);
  if (!v) bad(join(p, key), "Missing required parameter: '" + join(p, key) + "'.");
  return *v;
}

// Message content: a string, or input_text / output_text / refusal parts joined by "\n".
std::string item_text(const ojson& content, const std::string& param) {
  return joined_parts(content, param, "a string or an array of content parts",
                      [](const ojson& part, const std::string& p, const std::string& type) -> std::string {
                        if (type == "input_text" || type == "output_text" || type == "text")
                          return get_string(required(part, "text", p), join(p, "text"));
                        if (type == "refusal") return get_string(required(part, "refusal", p), join(p, "refusal"));
                        if (type == "input_image" || type == "input_file" || type == "input_audio")
                          bad(join(p, "type"), "Invalid content part type '" + type +
                                                   "': this model reads text only; send 'input_text'.");
                        bad(join(p, "type"), "Unsupported content part type '" + type + "': use 'input_text'.");
                      });
}

// The input items as chat messages. Function calls join the assistant message just before
// them (one chat message holds an answer's text and its calls); reasoning items ride on the
// next assistant message as reasoning_content, where reasoning templates look for them.
ojson input_messages(const ojson& input) {
  ojson msgs = ojson::array();
  if (input.is_string()) {
    msgs.push_back(ojson{{"role", "user"}, {"content", input}});
    return msgs;
  }
  if (!input.is_array()) wrong_type("input", input, "a string or an array of input items");
  if (input.empty()) bad("input", "Invalid 'input': empty array. Send at least one item.");
  std::string reasoning;  // thoughts waiting for the assistant message of their turn
  bool assistant_open = false;  // the last message is an assistant message calls may join
  auto assistant = [&](ojson content) -> ojson& {
    ojson m{{"role", "assistant"}, {"content", std::move(content)}};
    if (!reasoning.empty()) m["reasoning_content"] = std::exchange(reasoning, {});
    msgs.push_back(std::move(m));
    assistant_open = true;
    return msgs.back();
  };
  for (size_t i = 0; i < input.size(); ++i) {
    const std::string p = at("input", i);
    const ojson& item = get_object(input[i], p);
    std::string type = "message";
    if (const ojson* t = field(item, "type")) type = get_string(*t, join(p, "type"));
    if (type == "message") {
      const std::string& role = get_string(required(item, "role", p), join(p, "role"));
      if (role != "user" && role != "assistant" && role != "system" && role != "developer")
        bad(join(p, "role"), "Invalid value for '" + join(p, "role") + "': '" + role +
                                 "'. Use 'user', 'assistant', 'system' or 'developer'.");
      const std::string text = item_text(required(item, "content", p), join(p, "content"));
      if (role == "assistant") {
        assistant(text);
      } else {
        msgs.push_back(ojson{{"role", role}, {"content", text}});
        assistant_open = false;
        reasoning.clear();  // thoughts without an answer of their own
      }
    } else if (type == "function_call") {
      ojson call{{"id", get_string(required(item, "call_id", p), join(p, "call_id"))},
                 {"type", "function"},
                 {"function",
                  {{"name", get_string(required(item, "name", p), join(p, "name"))},
                   {"arguments", get_string(required(item, "arguments", p), join(p, "arguments"))}}}};
      ojson& m = assistant_open ? msgs.back() : assistant(nullptr);
      if (m["content"].is_string() && m["content"].get<std::string>().empty()) m["content"] = nullptr;
      m["tool_calls"].push_back(std::move(call));
    } else if (type == "function_call_output") {
      const ojson& out = required(item, "output", p);
      msgs.push_back(ojson{{"role", "tool"},
                           {"tool_call_id", get_string(required(item, "call_id", p), join(p, "call_id"))},
                           {"content", item_text(out, join(p, "output"))}});
      assistant_open = false;
      reasoning.clear();
    } else if (type == "reasoning") {
      // The text of earlier thoughts: content (reasoning_text parts), else the summary. They
      // belong to the assistant message of their turn: the open one, else the next.
      std::string text;
      for (const char* key : {"content", "summary"}) {
        const ojson* parts = field(item, key);
        if (!parts || !parts->is_array() || parts->empty()) continue;
        for (size_t k = 0; k < parts->size(); ++k) {
          const ojson& part = get_object((*parts)[k], at(join(p, key), k));
          if (const ojson* t = field(part, "text")) text += get_string(*t, join(at(join(p, key), k), "text"));
        }
        break;
      }
      if (assistant_open) {
        ojson& m = msgs.back();
        m["reasoning_content"] = m.value("reasoning_content", "") + text;
      } else {
        reasoning += text;
      }
    } else if (type == "item_reference") {
      bad(join(p, "type"), "Item references need stored responses, and this server stores none: send the items themselves.");
    } else {
      bad(join(p, "type"), "Unsupported input item type '" + type +
                               "': use 'message', 'function_call', 'function_call_output' or 'reasoning'.");
    }
  }
  return msgs;
}

// Flat Responses tools ({"type": "function", "name", ...}) as chat tools.
ojson chat_tools(const ojson& tools) {
  get_array(tools, "tools");
  ojson out = ojson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string p = at("tools", i);
    const ojson& t = get_object(tools[i], p);
    const std::string& type = get_string(required(t, "type", p), join(p, "type"));
    if (type != "function")
      bad(join(p, "type"), "Unsupported tool type '" + type + "': this server runs only 'function' tools (the client executes them).");
    ojson f{{"name", get_string(required(t, "name", p), join(p, "name"))}};
    for (const char* k : {"description", "parameters"})
      if (const ojson* v = field(t, k)) f[k] = *v;
    // The Responses API's function tools are strict unless they say otherwise.
    f["strict"] = field(t, "strict") ? get_bool(t["strict"], join(p, "strict")) : true;
    out.push_back(ojson{{"type", "function"}, {"function", std::move(f)}});
  }
  return out;
}

ojson chat_tool_choice(const ojson& c) {
  if (c.is_string()) return c;
  const ojson& o = get_object(c, "tool_choice");
  const std::string& type = get_string(required(o, "type", "tool_choice"), "tool_choice.type");
  if (type != "function")
    bad("tool_choice.type", "Unsupported 'tool_choice' type '" + type + "': use 'none', 'auto', 'required' or a function.");
  return ojson{{"type", "function"}, {"function", {{"name", required(o, "name", "tool_choice")}}}};
}

ojson chat_response_format(const ojson& text) {
  const ojson* f = field(get_object(text, "text"), "format");
  if (!f) return nullptr;
  const ojson& o = get_object(*f, "text.format");
  const std::string& type = get_string(required(o, "type", "text.format"), "text.format.type");
  if (type == "text" || type == "json_object") return ojson{{"type", type}};
  if (type != "json_schema")
    bad("text.format.type", "Invalid 'text.format.type': '" + type + "'. Use 'text', 'json_object' or 'json_schema'.");
  ojson js{{"name", get_string(required(o, "name", "text.format"), "text.format.name")},
           {"schema", get_object(required(o, "schema", "text.format"), "text.format.schema")}};
  for (const char* k : {"description", "strict"})
    if (const ojson* v = field(o, k)) js[k] = *v;
  return ojson{{"type", "json_schema"}, {"json_schema", std::move(js)}};
}

}  // namespace

ResponsesRequest parse_responses_request(std::string_view text, const RequestLimits& limits) {
  const ojson body = parse_body(text);
  check_body(body);
  if (field(body, "previous_response_id"))
    bad("previous_response_id",
        "'previous_response_id' is not supported: this server stores no responses. Send the whole conversation in "
        "'input' (earlier output items included) with 'store': false.");
  if (const ojson* v = field(body, "store"); v && get_bool(*v, "store"))
    bad("store", "'store': true is not supported: this server stores no responses. Send 'store': false.");
  if (const ojson* v = field(body, "background"); v && get_bool(*v, "background"))
    bad("background", "'background': true is not supported: responses run while the request is open.");
  for (const char* k : {"conversation", "prompt"})
    if (field(body, k))
      bad(k, std::string("'") + k + "' is not supported: it needs server-side state this server does not keep.");
  if (const ojson* v = field(body, "top_logprobs"); v && get_int(*v, "top_logprobs") != 0)
    bad("top_logprobs", "'top_logprobs' is not supported on /v1/responses; use /v1/chat/completions with 'logprobs'.");

  ojson chat = ojson::object();
  ResponsesRequest r;
  ojson& echo = r.echo;
  echo["instructions"] = nullptr;
  ojson msgs = ojson::array();
  if (const ojson* v = field(body, "instructions")) {
    msgs.push_back(ojson{{"role", "system"}, {"content", get_string(*v, "instructions")}});
    echo["instructions"] = *v;
  }
  for (ojson& m : input_messages(required(body, "input", ""))) msgs.push_back(std::move(m));
  chat["messages"] = std::move(msgs);

  echo["max_output_tokens"] = nullptr;
  if (const ojson* v = field(body, "max_output_tokens")) {
    const int64_t n = get_int(*v, "max_output_tokens");
    if (n < 1) bad("max_output_tokens", "Invalid 'max_output_tokens': it must be at least 1.");
    chat["max_tokens"] = n;
    echo["max_output_tokens"] = n;
  }
  // Sampling, and the extensions chat completions accept beside it.
  for (const char* k : {"model", "temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty",
                        "frequency_penalty", "repetition_penalty", "logit_bias", "ignore_eos", "speculative", "stream",
                        "parallel_tool_calls", "chat_template_kwargs", "user"})
    if (const ojson* v = field(body, k)) chat[k] = *v;
  echo["tools"] = ojson::array();
  if (const ojson* v = field(body, "tools")) {
    chat["tools"] = chat_tools(*v);
    echo["tools"] = *v;
  }
  echo["tool_choice"] = "auto";
  if (const ojson* v = field(body, "tool_choice")) {
    chat["tool_choice"] = chat_tool_choice(*v);
    echo["tool_choice"] = *v;
  }
  echo["text"] = ojson{{"format", {{"type", "text"}}}};
  if (const ojson* v = field(body, "text")) {
    ojson f = chat_response_format(*v);
    if (!f.is_null()) {
      chat["response_format"] = std::move(f);
      echo["text"] = ojson{{"format", *field(*v, "format")}};
    }
  }
  // Reasoning effort: any effort but "none" asks a template with a thinking switch to think.
  echo["reasoning"] = ojson{{"effort", nullptr}, {"summary", nullptr}};
  if (const ojson* v = field(body, "reasoning")) {
    const ojson& o = get_object(*v, "reasoning");
    if (const ojson* e = field(o, "effort")) {
      const std::string& effort = get_string(*e, "reasoning.effort");
      if (!chat.contains("chat_template_kwargs")) chat["chat_template_kwargs"] = ojson::object();
      if (!chat["chat_template_kwargs"].contains("thinking")) chat["chat_template_kwargs"]["thinking"] = effort != "none";
      echo["reasoning"]["effort"] = effort;
    }
  }
  echo["temperature"] = field(body, "temperature") ? body["temperature"] : ojson(1.0);
  echo["top_p"] = field(body, "top_p") ? body["top_p"] : ojson(1.0);
  echo["parallel_tool_calls"] = field(body, "parallel_tool_calls") ? body["parallel_tool_calls"] : ojson(true);
  echo["metadata"] = field(body, "metadata") ? get_object(body["metadata"], "metadata") : ojson::object();

  r.chat = parse_chat_request_json(chat, limits);
  return r;
}

}  // namespace dsv3::api
