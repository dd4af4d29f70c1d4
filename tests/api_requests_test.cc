// OpenAI request parsing: every rejected body gives status 400, invalid_request_error and the
// offending param (table-driven: a case is one line); accepted bodies fill the structs,
// normalise content parts and keep the client's JSON key order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/errors.h"
#include "api/requests.h"
#include "test_util.h"

namespace dsv3::api {
namespace {

constexpr const char* kUser = R"("messages": [{"role": "user", "content": "hi"}])";

// Parses `body` and returns the ApiError it must throw (a failure is recorded otherwise).
template <typename Parse>
ApiError error_of(Parse parse, const std::string& body) {
  try {
    parse(body);
  } catch (const ApiError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ApiError, got: " << e.what() << "\n  body: " << body;
    return {};
  }
  ADD_FAILURE() << "expected ApiError, nothing thrown\n  body: " << body;
  return {};
}

struct BadCase {
  std::string body;       // a JSON body
  std::string param;      // expected param ("" = null)
  std::string message;    // a part of the expected message
};

RequestLimits limits() {
  RequestLimits l;
  l.max_n = 16;
  l.vocab_size = 1000;
  return l;
}

void check_bad(const std::vector<BadCase>& cases, bool chat) {
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.body);
    const ApiError e = chat ? error_of([](const std::string& b) { parse_chat_request(b, limits()); }, c.body)
                            : error_of([](const std::string& b) { parse_completion_request(b, limits()); }, c.body);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_EQ(e.param, c.param);
    EXPECT_CONTAINS(e.message, c.message);
    const nlohmann::ordered_json j = e.to_json();
    EXPECT_EQ(j["error"]["param"], c.param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(c.param));
  }
}

std::string chat(const std::string& fields) { return std::string("{") + kUser + ", " + fields + "}"; }
std::string msgs(const std::string& messages) { return R"({"messages": )" + messages + "}"; }

TEST(ApiError, BodyShape) {
  ApiError e(401, "Invalid API key.", "authentication_error", "", "invalid_api_key");
  EXPECT_EQ(e.to_json().dump(),
            R"({"error":{"message":"Invalid API key.","type":"authentication_error","param":null,"code":"invalid_api_key"}})");
  EXPECT_STREQ(e.what(), "Invalid API key.");
  const ApiError nf(404, "The model 'x' does not exist", "not_found_error", "model");
  EXPECT_EQ(nf.to_json()["error"]["param"], "model");
  EXPECT_TRUE(nf.to_json()["error"]["code"].is_null());
}

TEST(ChatRequest, RejectsMalformedBodies) {
  check_bad({
                {"{", "", "not valid JSON"},
                {"", "", "not valid JSON"},
                {"[1]", "", "must be a JSON object"},
                {"{}", "messages", "Missing required parameter: 'messages'"},
                {R"({"messages": null})", "messages", "Missing required"},
                {R"({"messages": "hi"})", "messages", "expected an array"},
                {R"({"messages": []})", "messages", "empty array"},
                {chat(R"("model": 3)"), "model", "expected a string"},
            },
            true);
}

TEST(ChatRequest, RejectsBadSamplingFields) {
  check_bad({
                {chat(R"("temperature": 2.5)"), "temperature", "outside the allowed range [0, 2]"},
                {chat(R"("temperature": -0.1)"), "temperature", "outside"},
                {chat(R"("temperature": "hot")"), "temperature", "expected a number, but got a string"},
                {chat(R"("top_p": 0)"), "top_p", "(0, 1]"},
                {chat(R"("top_p": 1.5)"), "top_p", "outside"},
                {chat(R"("min_p": 1.5)"), "min_p", "outside"},
                {chat(R"("top_k": -2)"), "top_k", "outside"},
                {chat(R"("top_k": 1.5)"), "top_k", "expected an integer"},
                {chat(R"("presence_penalty": 2.1)"), "presence_penalty", "[-2, 2]"},
                {chat(R"("frequency_penalty": -3)"), "frequency_penalty", "[-2, 2]"},
                {chat(R"("repetition_penalty": 0)"), "repetition_penalty", "(0, 10]"},
                {chat(R"("seed": "x")"), "seed", "expected an integer"},
                {chat(R"("logit_bias": [1])"), "logit_bias", "expected an object"},
                {chat(R"("logit_bias": {"abc": 1})"), "logit_bias", "keys must be token ids"},
                {chat(R"("logit_bias": {"12x": 1})"), "logit_bias", "keys must be token ids"},
                {chat(R"("logit_bias": {"-1": 1})"), "logit_bias", "token id -1"},
                {chat(R"("logit_bias": {"1000": 1})"), "logit_bias", "[0, 1000)"},
                {chat(R"("logit_bias": {"5": 101})"), "logit_bias", "[-100, 100]"},
                {chat(R"("logit_bias": {"5": "1"})"), "logit_bias.5", "expected a number"},
                {chat(R"("max_tokens": 0)"), "max_tokens", "at least 1"},
                {chat(R"("max_tokens": -5)"), "max_tokens", "at least 1"},
                {chat(R"("max_completion_tokens": 0)"), "max_completion_tokens", "at least 1"},
                {chat(R"("max_tokens": "10")"), "max_tokens", "expected an integer"},
                {chat(R"("n": 0)"), "n", "[1, 16]"},
                {chat(R"("n": 17)"), "n", "[1, 16]"},
                {chat(R"("stop": 5)"), "stop", "a string or an array of strings"},
                {chat(R"("stop": ["a", "b", "c", "d", "e"])"), "stop", "at most 4"},
                {chat(R"("stop": ["a", 1])"), "stop[1]", "expected a string"},
                {chat(R"("stop": "")"), "stop", "must not be empty"},
                {chat(R"("stream": "yes")"), "stream", "expected a boolean"},
                {chat(R"("stream_options": {"include_usage": true})"), "stream_options", "only allowed when 'stream'"},
                {chat(R"("stream": true, "stream_options": {"include_usage": 1})"), "stream_options.include_usage",
                 "expected a boolean"},
                {chat(R"("logprobs": 1)"), "logprobs", "expected a boolean"},
                {chat(R"("top_logprobs": 3)"), "top_logprobs", "requires 'logprobs'"},
                {chat(R"("logprobs": true, "top_logprobs": 21)"), "top_logprobs", "[0, 20]"},
                {chat(R"("user": 5)"), "user", "expected a string"},
                {chat(R"("chat_template_kwargs": true)"), "chat_template_kwargs", "expected an object"},
                {chat(R"("functions": [])"), "functions", "use 'tools'"},
            },
            true);
}

TEST(ChatRequest, RejectsBadMessages) {
  check_bad({
                {msgs(R"(["hi"])"), "messages[0]", "expected an object"},
                {msgs(R"([{"content": "hi"}])"), "messages[0].role", "Missing required"},
                {msgs(R"([{"role": "robot", "content": "hi"}])"), "messages[0].role", "'robot'"},
                {msgs(R"([{"role": "function", "content": "hi", "name": "f"}])"), "messages[0].role", "Supported roles"},
                {msgs(R"([{"role": "user"}])"), "messages[0].content", "Missing required"},
                {msgs(R"([{"role": "user", "content": null}])"), "messages[0].content", "Missing required"},
                {msgs(R"([{"role": "system", "content": 5}])"), "messages[0].content", "array of content parts"},
                {msgs(R"([{"role": "assistant"}])"), "messages[0].content", "content or tool_calls"},
                {msgs(R"([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])"),
                 "messages[0].content[0].type", "images are not supported"},
                {msgs(R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_image"}]}])"),
                 "messages[0].content[1].type", "'input_image': images are not supported"},
                {msgs(R"([{"role": "user", "content": [{"type": "input_audio"}]}])"), "messages[0].content[0].type",
                 "audio is not supported"},
                {msgs(R"([{"role": "user", "content": [{"type": "file"}]}])"), "messages[0].content[0].type", "files are not supported"},
                {msgs(R"([{"role": "user", "content": [{"type": "video"}]}])"), "messages[0].content[0].type",
                 "only 'text' parts"},
                {msgs(R"([{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}])"),
                 "messages[0].content[0].type", "Unsupported content part type 'refusal'"},
                {msgs(R"([{"role": "user", "content": [{"text": "a"}]}])"), "messages[0].content[0].type",
                 "Missing required"},
                {msgs(R"([{"role": "user", "content": [{"type": "text"}]}])"), "messages[0].content[0].text",
                 "Missing required"},
                {msgs(R"([{"role": "user", "content": [{"type": "text", "text": 1}]}])"),
                 "messages[0].content[0].text", "expected a string"},
                {msgs(R"([{"role": "user", "content": ["a"]}])"), "messages[0].content[0]", "expected an object"},
                {msgs(R"([{"role": "user", "content": "a", "name": 1}])"), "messages[0].name", "expected a string"},
                {msgs(R"([{"role": "tool", "content": "42"}])"), "messages[0].tool_call_id", "Missing required"},
                {msgs(R"([{"role": "tool", "content": "42", "tool_call_id": 7}])"), "messages[0].tool_call_id",
                 "expected a string"},
                {msgs(R"([{"role": "user", "content": "a", "tool_calls": []}])"), "messages[0].tool_calls",
                 "Only assistant"},
                {msgs(R"([{"role": "assistant", "tool_calls": {}}])"), "messages[0].tool_calls", "expected an array"},
                {msgs(R"([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}])"),
                 "messages[0].tool_calls[0].id", "Missing required"},
                {msgs(R"([{"role": "assistant", "tool_calls": [{"id": "c", "type": "code", "function": {"name": "f", "arguments": "{}"}}]}])"),
                 "messages[0].tool_calls[0].type", "only 'function'"},
                {msgs(R"([{"role": "assistant", "tool_calls": [{"id": "c"}]}])"), "messages[0].tool_calls[0].function",
                 "Missing required"},
                {msgs(R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}])"),
                 "messages[0].tool_calls[0].function.name", "Missing required"},
                {msgs(R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}])"),
                 "messages[0].tool_calls[0].function.arguments", "Missing required"},
                {msgs(R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 3}}]}])"),
                 "messages[0].tool_calls[0].function.arguments", "expected a string"},
                {msgs(R"([{"role": "user", "content": "a"}, {"role": "x", "content": "b"}])"), "messages[1].role",
                 "'x'"},
            },
            true);
}

constexpr const char* kTool =
    R"({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}})";

TEST(ChatRequest, RejectsBadTools) {
  const std::string t = kTool;
  check_bad({
                {chat(R"("tools": {})"), "tools", "expected an array"},
                {chat(R"("tools": [1])"), "tools[0]", "expected an object"},
                {chat(R"("tools": [{"function": {"name": "f"}}])"), "tools[0].type", "Missing required"},
                {chat(R"("tools": [{"type": "retrieval"}])"), "tools[0].type", "only 'function' tools"},
                {chat(R"("tools": [{"type": "function"}])"), "tools[0].function", "Missing required"},
                {chat(R"("tools": [{"type": "function", "function": {}}])"), "tools[0].function.name",
                 "Missing required"},
                {chat(R"("tools": [{"type": "function", "function": {"name": "get weather"}}])"),
                 "tools[0].function.name", "must be 1 to 64 characters"},
                {chat(R"("tools": [{"type": "function", "function": {"name": ""}}])"), "tools[0].function.name",
                 "must be 1 to 64"},
                {chat(R"("tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}])"),
                 "tools[0].function.parameters", "expected an object"},
                {chat(R"("tools": [{"type": "function", "function": {"name": "f", "description": 1}}])"),
                 "tools[0].function.description", "expected a string"},
                {chat(R"("tools": [{"type": "function", "function": {"name": "f", "strict": "yes"}}])"),
                 "tools[0].function.strict", "expected a boolean"},
                {chat(R"("tools": [)" + t + ", " + t + "]"), "tools[1].function.name", "Duplicate function name"},
                {chat(R"("tools": [)" + t + R"(], "tool_choice": "sometimes")"), "tool_choice", "'sometimes'"},
                {chat(R"("tools": [)" + t + R"(], "tool_choice": 1)"), "tool_choice", "a string or an object"},
                {chat(R"("tools": [)" + t + R"(], "tool_choice": {"type": "function", "function": {"name": "nope"}})"),
                 "tool_choice", "'nope' is not in 'tools'"},
                {chat(R"("tools": [)" + t + R"(], "tool_choice": {"type": "function"})"), "tool_choice.function",
                 "Missing required"},
                {chat(R"("tools": [)" + t + R"(], "tool_choice": {"type": "function", "function": {}})"),
                 "tool_choice.function.name", "Missing required"},
                {chat(R"("tools": [)" + t + R"(], "tool_choice": {"function": {"name": "get_weather"}})"),
                 "tool_choice.type", "\"type\": \"function\""},
                {chat(R"("tool_choice": "required")"), "tool_choice", "needs a non-empty 'tools'"},
                {chat(R"("tool_choice": {"type": "function", "function": {"name": "f"}})"), "tool_choice",
                 "not in 'tools'"},
                {chat(R"("tools": [)" + t + R"(], "parallel_tool_calls": "no")"), "parallel_tool_calls",
                 "expected a boolean"},
            },
            true);
}

TEST(ChatRequest, RejectsBadResponseFormat) {
  check_bad({
                {chat(R"("response_format": "json")"), "response_format", "expected an object"},
                {chat(R"("response_format": {})"), "response_format.type", "Missing required"},
                {chat(R"("response_format": {"type": "xml"})"), "response_format.type", "'xml'"},
                {chat(R"("response_format": {"type": "json_schema"})"), "response_format.json_schema",
                 "Missing required"},
                {chat(R"("response_format": {"type": "json_schema", "json_schema": {"schema": {}}})"),
                 "response_format.json_schema.name", "Missing required"},
                {chat(R"("response_format": {"type": "json_schema", "json_schema": {"name": "a b"}})"),
                 "response_format.json_schema.name", "must be 1 to 64"},
                {chat(R"("response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": 3}})"),
                 "response_format.json_schema.schema", "expected an object"},
                {chat(R"("response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": 1}})"),
                 "response_format.json_schema.strict", "expected a boolean"},
            },
            true);
}

TEST(ChatRequest, ParsesEveryField) {
  const ChatCompletionRequest r = parse_chat_request(R"({
    "model": "deepseek-v3", "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 50, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
    "logit_bias": {"17": -100, "3": 2.5}, "seed": 1234, "stop": ["###", "\n\n"], "n": 3,
    "stream": true, "stream_options": {"include_usage": true}, "logprobs": true, "top_logprobs": 5,
    "parallel_tool_calls": false, "user": "u-1", "ignore_eos": true,
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
                        "schema": {"type": "object", "properties": {"z": {}, "a": {}}}}},
    "chat_template_kwargs": {"thinking": true}, "some_future_field": [1, 2]
  })",
                                                     limits());
  EXPECT_EQ(r.model, "deepseek-v3");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.max_tokens, 50);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, 1.1f);
  ASSERT_EQ(r.sampling.logit_bias.size(), 2u);
  EXPECT_FLOAT_EQ(r.sampling.logit_bias.at(17), -100.0f);
  EXPECT_FLOAT_EQ(r.sampling.logit_bias.at(3), 2.5f);
  EXPECT_EQ(r.sampling.seed, 1234u);
  EXPECT_NO_THROW(r.sampling.validate(1000));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"###", "\n\n"}));
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.top_logprobs, 5);
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_EQ(r.user, "u-1");
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.response_format.type, ResponseFormat::Type::JsonSchema);
  EXPECT_EQ(r.response_format.name, "answer");
  EXPECT_TRUE(r.response_format.strict);
  EXPECT_EQ(r.response_format.schema.dump(), R"({"type":"object","properties":{"z":{},"a":{}}})");
  EXPECT_EQ(r.chat_template_kwargs.dump(), R"({"thinking":true})");
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::None);
}

TEST(ChatRequest, DefaultsAndNulls) {
  const ChatCompletionRequest r = parse_chat_request(
      R"({"messages": [{"role": "user", "content": "hi"}], "temperature": null, "max_tokens": null,
          "stop": null, "top_k": -1, "seed": -1})");
  EXPECT_EQ(r.model, "");
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);  // -1 (vLLM's "off") becomes our 0
  EXPECT_EQ(r.sampling.seed, ~uint64_t(0));
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.response_format.type, ResponseFormat::Type::Text);
  // A single stop string, max_completion_tokens over max_tokens, an integral float for an integer.
  const ChatCompletionRequest s = parse_chat_request(
      chat(R"("stop": "END", "max_tokens": 10, "max_completion_tokens": 20.0, "response_format": {"type": "json_object"})"));
  EXPECT_EQ(s.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(s.max_tokens, 20);
  EXPECT_EQ(s.response_format.type, ResponseFormat::Type::JsonObject);
}

TEST(ChatRequest, NormalisesMessages) {
  const ChatCompletionRequest r = parse_chat_request(R"({"messages": [
    {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
    {"content": [{"type": "text", "text": "part one"}, {"type": "input_text", "text": "part two"}], "role": "user", "name": "ann"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"c\"}"}},
      {"function": {"arguments": {"z": 1, "a": 2}, "name": "now"}, "id": "call_2"}]},
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
    {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}], "prefix": true}
  ]})");
  ASSERT_EQ(r.messages.size(), 5u);
  const ChatMessage& sys = r.messages[0];
  EXPECT_EQ(sys.role, "system");
  EXPECT_EQ(sys.content, "Be brief.");
  EXPECT_EQ(sys.json.dump(), R"({"role":"system","content":"Be brief."})");

  const ChatMessage& user = r.messages[1];
  EXPECT_EQ(user.content, "part one\npart two");
  EXPECT_EQ(user.name, "ann");
  EXPECT_EQ(user.json.dump(), R"({"content":"part one\npart two","role":"user","name":"ann"})");  // client order

  const ChatMessage& call = r.messages[2];
  EXPECT_FALSE(call.content.has_value());  // "" beside tool calls becomes null
  ASSERT_EQ(call.tool_calls.size(), 2u);
  EXPECT_EQ(call.tool_calls[0].id, "call_1");
  EXPECT_EQ(call.tool_calls[0].name, "get_weather");
  EXPECT_EQ(call.tool_calls[0].arguments, R"({"city": "Paris", "unit": "c"})");  // byte for byte
  EXPECT_EQ(call.tool_calls[1].arguments, R"({"z":1,"a":2})");                   // object printed in order
  EXPECT_EQ(call.json["content"], nullptr);
  EXPECT_EQ(call.json["tool_calls"][1].dump(),
            R"({"function":{"arguments":"{\"z\":1,\"a\":2}","name":"now"},"id":"call_2","type":"function"})");

  const ChatMessage& tool = r.messages[3];
  EXPECT_EQ(tool.role, "tool");
  EXPECT_EQ(tool.tool_call_id, "call_1");
  EXPECT_EQ(tool.content, "18C");

  const ChatMessage& refusal = r.messages[4];
  EXPECT_EQ(refusal.content, "I can't.");
  EXPECT_EQ(refusal.json["prefix"], true);  // extra fields pass through
}

TEST(ChatRequest, AssistantToolCallsWithoutContentKey) {
  const ChatCompletionRequest r = parse_chat_request(msgs(
      R"([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}])"));
  EXPECT_TRUE(r.messages[1].json.contains("content"));
  EXPECT_TRUE(r.messages[1].json["content"].is_null());
}

TEST(ChatRequest, Tools) {
  const ChatCompletionRequest r = parse_chat_request(chat(R"("tools": [
      {"type": "function", "function": {"name": "get_weather", "description": "Weather now.",
       "parameters": {"type": "object", "properties": {"unit": {"type": "string"}, "city": {"type": "string"}},
                      "required": ["city"]}, "strict": true}},
      {"type": "function", "function": {"name": "now"}}])"));
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0].name, "get_weather");
  EXPECT_EQ(r.tools[0].description, "Weather now.");
  EXPECT_TRUE(r.tools[0].strict);
  EXPECT_EQ(r.tools[0].parameters.dump(),
            R"({"type":"object","properties":{"unit":{"type":"string"},"city":{"type":"string"}},"required":["city"]})");
  EXPECT_TRUE(r.tools[1].parameters.is_null());
  EXPECT_EQ(r.tools_json.size(), 2u);
  EXPECT_EQ(r.tool_choice.mode, ToolChoice::Mode::Auto);  // tools given: auto by default
  EXPECT_TRUE(r.parallel_tool_calls);

  const std::string t = std::string(R"("tools": [)") + kTool + "]";
  EXPECT_EQ(parse_chat_request(chat(t + R"(, "tool_choice": "none")")).tool_choice.mode, ToolChoice::Mode::None);
  EXPECT_EQ(parse_chat_request(chat(t + R"(, "tool_choice": "required")")).tool_choice.mode,
            ToolChoice::Mode::Required);
  const ChatCompletionRequest named = parse_chat_request(
      chat(t + R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})"));
  EXPECT_EQ(named.tool_choice.mode, ToolChoice::Mode::Named);
  EXPECT_EQ(named.tool_choice.name, "get_weather");
  // "auto" without tools means no tools.
  EXPECT_EQ(parse_chat_request(chat(R"("tool_choice": "auto")")).tool_choice.mode, ToolChoice::Mode::None);
}

TEST(CompletionRequest, RejectsBadBodies) {
  check_bad({
                {"{}", "prompt", "Missing required parameter: 'prompt'"},
                {R"({"prompt": 5})", "prompt", "a string or an array"},
                {R"({"prompt": []})", "prompt", "empty array"},
                {R"({"prompt": [[]]})", "prompt[0]", "must not be empty"},
                {R"({"prompt": ["a", 1]})", "prompt[1]", "element 1 is an integer"},
                {R"({"prompt": [1, "a"]})", "prompt[1]", "expected an integer"},
                {R"({"prompt": [[1, 2], "a"]})", "prompt[1]", "expected a string, an array of strings"},
                {R"({"prompt": [1, 1000]})", "prompt", "token id 1000"},
                {R"({"prompt": [[5], [-1]]})", "prompt[1]", "token id -1"},
                {R"({"prompt": "a", "max_tokens": -1})", "max_tokens", "at least 0"},
                {R"({"prompt": "a", "logprobs": 6})", "logprobs", "[0, 5]"},
                {R"({"prompt": "a", "logprobs": true})", "logprobs", "expected an integer"},
                {R"({"prompt": "a", "echo": 1})", "echo", "expected a boolean"},
                {R"({"prompt": "a", "suffix": "end"})", "suffix", "not supported"},
                {R"({"prompt": "a", "best_of": 3})", "best_of", "not supported"},
                {R"({"prompt": "a", "n": 20})", "n", "[1, 16]"},
                {R"({"prompt": "a", "temperature": 3})", "temperature", "outside"},
                {R"({"prompt": "a", "stop": ["1", "2", "3", "4", "5"]})", "stop", "at most 4"},
                {R"({"prompt": "a", "stream_options": {}})", "stream_options", "only allowed"},
            },
            false);
}

TEST(CompletionRequest, PromptForms) {
  const CompletionRequest one = parse_completion_request(R"({"prompt": "Once upon"})");
  ASSERT_EQ(one.prompts.size(), 1u);
  EXPECT_FALSE(one.prompts[0].is_tokens);
  EXPECT_EQ(one.prompts[0].text, "Once upon");
  EXPECT_EQ(one.max_tokens, 16);  // OpenAI's default
  EXPECT_FALSE(one.echo);
  EXPECT_FALSE(one.logprobs.has_value());

  const CompletionRequest texts = parse_completion_request(R"({"prompt": ["a", "", "c"], "n": 2})");
  ASSERT_EQ(texts.prompts.size(), 3u);
  EXPECT_EQ(texts.prompts[1].text, "");
  EXPECT_EQ(texts.prompts[2].text, "c");
  EXPECT_EQ(texts.n, 2);

  const CompletionRequest ids = parse_completion_request(R"({"prompt": [0, 5, 999]})", limits());
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_TRUE(ids.prompts[0].is_tokens);
  EXPECT_EQ(ids.prompts[0].tokens, (std::vector<int32_t>{0, 5, 999}));

  const CompletionRequest lists = parse_completion_request(R"({"prompt": [[1, 2], [3]]})", limits());
  ASSERT_EQ(lists.prompts.size(), 2u);
  EXPECT_EQ(lists.prompts[1].tokens, std::vector<int32_t>{3});

  const CompletionRequest full = parse_completion_request(
      R"({"model": "m", "prompt": "x", "max_tokens": 100, "echo": true, "logprobs": 0, "suffix": "",
          "best_of": 1, "seed": 9, "stop": "\n", "stream": true, "stream_options": {"include_usage": true}})");
  EXPECT_EQ(full.max_tokens, 100);
  EXPECT_TRUE(full.echo);
  EXPECT_EQ(full.logprobs, 0);
  EXPECT_EQ(full.sampling.seed, 9u);
  EXPECT_EQ(full.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(full.include_usage);
}

TEST(CompletionRequest, TokenIdsUncheckedWithoutVocab) {
  // Without a vocabulary size only negative ids are refused.
  EXPECT_EQ(parse_completion_request(R"({"prompt": [100000]})").prompts[0].tokens[0], 100000);
}

}  // namespace
}  // namespace dsv3::api
