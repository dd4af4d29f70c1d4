// The Responses and Messages APIs' requests read as chat requests (what each field becomes,
// what is refused and under which param), and the answer split into the blocks both APIs
// present (reasoning, text, tool calls) with the start / delta / stop events they stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "api/errors.h"
#include "api/messages_request.h"
#include "api/responses_request.h"
#include "api/tool_calls.h"
#include "server/answer_blocks.h"

namespace dsv3 {
namespace {

using api::ApiError;
using api::ojson;

template <typename Parse>
ApiError error_of(Parse parse, const std::string& body) {
  try {
    parse(body);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "expected ApiError\n  body: " << body;
  return {};
}

struct BadCase {
  std::string body, param, message;
};

void expect_bad(const auto& parse, const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    const ApiError e = error_of(parse, c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.message), std::string::npos) << "message: " << e.message << "\n  body: " << c.body;
  }
}

// ---- Responses ---------------------------------------------------------------------------

TEST(ResponsesRequest, StringInputInstructionsAndEcho) {
  const auto r = api::parse_responses_request(
      R"({"model": "m", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 9, "temperature": 0.5})");
  ASSERT_EQ(r.chat.messages.size(), 2u);
  EXPECT_EQ(r.chat.messages[0].role, "system");
  EXPECT_EQ(*r.chat.messages[0].content, "Be brief.");
  EXPECT_EQ(r.chat.messages[1].role, "user");
  EXPECT_EQ(*r.chat.messages[1].content, "Hi");
  EXPECT_EQ(r.chat.max_tokens, 9);
  EXPECT_FLOAT_EQ(r.chat.sampling.temperature, 0.5f);
  EXPECT_EQ(r.chat.model, "m");
  EXPECT_EQ(r.echo["instructions"], "Be brief.");
  EXPECT_EQ(r.echo["max_output_tokens"], 9);
  EXPECT_EQ(r.echo["tool_choice"], "auto");
  EXPECT_EQ(r.echo["text"]["format"]["type"], "text");
  EXPECT_EQ(r.echo["top_p"], 1.0);
}

TEST(ResponsesRequest, ItemsBecomeChatMessages) {
  const auto r = api::parse_responses_request(R"({"input": [
      {"role": "developer", "content": "sys"},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
      {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}]},
      {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
      {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"x\":1}"},
      {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
      {"type": "function_call_output", "call_id": "c1", "output": "42"},
      {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "ok"}]},
      {"type": "function_call", "call_id": "c3", "name": "f", "arguments": "{}"}
    ], "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}, {"type": "function", "name": "g"}]})");
  const auto& m = r.chat.messages;
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(*m[1].content, "a\nb");
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(*m[2].content, "Let me look.");
  EXPECT_EQ(m[2].json["reasoning_content"], "hmm");
  ASSERT_EQ(m[2].tool_calls.size(), 2u);
  EXPECT_EQ(m[2].tool_calls[0].id, "c1");
  EXPECT_EQ(m[2].tool_calls[0].arguments, "{\"x\":1}");
  EXPECT_EQ(m[2].tool_calls[1].name, "g");
  EXPECT_EQ(m[3].role, "tool");
  EXPECT_EQ(m[3].tool_call_id, "c1");
  EXPECT_EQ(*m[4].content, "ok");
  // A call after tool output starts a new assistant message with no text.
  EXPECT_EQ(m[5].role, "assistant");
  EXPECT_FALSE(m[5].content.has_value() && !m[5].content->empty());
  ASSERT_EQ(m[5].tool_calls.size(), 1u);
  ASSERT_EQ(r.chat.tools.size(), 2u);
  EXPECT_EQ(r.chat.tools[0].name, "f");
  EXPECT_EQ(r.chat.tool_choice.mode, api::ToolChoice::Mode::Auto);
}

TEST(ResponsesRequest, ToolChoiceFormatAndReasoning) {
  const auto r = api::parse_responses_request(R"({"input": "x",
      "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
      "tool_choice": {"type": "function", "name": "f"},
      "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
      "reasoning": {"effort": "low"}})");
  EXPECT_EQ(r.chat.tool_choice.mode, api::ToolChoice::Mode::Named);
  EXPECT_EQ(r.chat.tool_choice.name, "f");
  EXPECT_EQ(r.chat.response_format.type, api::ResponseFormat::Type::JsonSchema);
  EXPECT_TRUE(r.chat.response_format.strict);
  EXPECT_EQ(r.chat.response_format.schema["type"], "object");
  EXPECT_EQ(r.chat.chat_template_kwargs["thinking"], true);
  EXPECT_EQ(r.echo["reasoning"]["effort"], "low");
  EXPECT_EQ(r.echo["text"]["format"]["name"], "out");
  const auto none = api::parse_responses_request(R"({"input": "x", "reasoning": {"effort": "none"}})");
  EXPECT_EQ(none.chat.chat_template_kwargs["thinking"], false);
  // Responses function tools are strict unless they say otherwise.
  EXPECT_TRUE(r.chat.tools[0].strict);
  const auto loose = api::parse_responses_request(
      R"({"input": "x", "tools": [{"type": "function", "name": "f", "strict": false}]})");
  EXPECT_FALSE(loose.chat.tools[0].strict);
}

TEST(ResponsesRequest, ReasoningItemsJoinTheAssistantMessageOfTheirTurn) {
  const auto r = api::parse_responses_request(R"({"input": [
      {"role": "user", "content": "q1"},
      {"type": "reasoning", "content": [{"type": "reasoning_text", "text": "lost"}]},
      {"role": "user", "content": "q2"},
      {"type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]},
      {"role": "assistant", "content": "a"},
      {"type": "reasoning", "content": [{"type": "reasoning_text", "text": " more"}]},
      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]})");
  const auto& m = r.chat.messages;
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[2].json["reasoning_content"], "plan more");  // thoughts without an answer are dropped
  EXPECT_EQ(m[2].tool_calls.size(), 1u);
}

TEST(ResponsesRequest, RefusalsNameTheField) {
  expect_bad([](const std::string& b) { api::parse_responses_request(b); },
             {
                 {R"({})", "input", "Missing required parameter"},
                 {R"({"input": 3})", "input", "a string or an array"},
                 {R"({"input": []})", "input", "empty array"},
                 {R"({"input": "x", "previous_response_id": "resp_1"})", "previous_response_id", "stores no responses"},
                 {R"({"input": "x", "store": true})", "store", "store"},
                 {R"({"input": "x", "background": true})", "background", "not supported"},
                 {R"({"input": "x", "conversation": "c"})", "conversation", "not supported"},
                 {R"({"input": "x", "top_logprobs": 2})", "top_logprobs", "chat/completions"},
                 {R"({"input": [{"type": "item_reference", "id": "x"}]})", "input[0].type", "stores none"},
                 {R"({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]})",
                  "input[0].content[0].type", "text only"},
                 {R"({"input": [{"role": "robot", "content": "x"}]})", "input[0].role", "robot"},
                 {R"({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]})", "input[0].call_id",
                  "Missing"},
                 {R"({"input": [{"type": "web_search_call"}]})", "input[0].type", "Unsupported input item type"},
                 {R"({"input": "x", "tools": [{"type": "web_search"}]})", "tools[0].type", "only 'function'"},
                 {R"({"input": "x", "max_output_tokens": 0})", "max_output_tokens", "at least 1"},
                 {R"({"input": "x", "text": {"format": {"type": "xml"}}})", "text.format.type", "json_schema"},
                 {R"({"input": "x", "tool_choice": {"type": "mcp"}})", "tool_choice.type", "Unsupported"},
             });
  // A store: false request (what a stateless client sends) is fine.
  EXPECT_NO_THROW(api::parse_responses_request(R"({"input": "x", "store": false})"));
}

// ---- Messages ----------------------------------------------------------------------------

TEST(MessagesRequest, BlocksBecomeChatMessages) {
  const auto r = api::parse_messages_request(R"({"model": "m", "max_tokens": 50,
      "system": [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2"}],
      "messages": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "add", "signature": "x"},
                                           {"type": "text", "text": "Calling."},
                                           {"type": "tool_use", "id": "t1", "name": "calc", "input": {"e": "2+2"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "4"},
                                      {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "no"}], "is_error": true},
                                      {"type": "text", "text": "Go on."}]}
      ],
      "tools": [{"name": "calc", "description": "d", "input_schema": {"type": "object"}}],
      "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
      "thinking": {"type": "enabled", "budget_tokens": 1024},
      "stop_sequences": ["a", "b", "c", "d", "e"], "temperature": 0.25, "top_k": 5})");
  const auto& m = r.messages;
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(*m[0].content, "S1\nS2");
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(*m[2].content, "Calling.");
  EXPECT_EQ(m[2].json["reasoning_content"], "add");
  ASSERT_EQ(m[2].tool_calls.size(), 1u);
  EXPECT_EQ(m[2].tool_calls[0].id, "t1");
  EXPECT_EQ(ojson::parse(m[2].tool_calls[0].arguments), ojson::parse(R"({"e": "2+2"})"));
  EXPECT_EQ(m[3].role, "tool");
  EXPECT_EQ(m[3].tool_call_id, "t1");
  EXPECT_EQ(*m[3].content, "4");
  EXPECT_EQ(*m[4].content, "Error: no");
  EXPECT_EQ(m[5].role, "user");
  EXPECT_EQ(*m[5].content, "Go on.");
  EXPECT_EQ(r.max_tokens, 50);
  EXPECT_EQ(r.tool_choice.mode, api::ToolChoice::Mode::Required);
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_EQ(r.chat_template_kwargs["thinking"], true);
  EXPECT_EQ(r.stop.size(), 5u);  // more than chat completions' four
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.25f);
  EXPECT_EQ(r.sampling.top_k, 5);
  // Only tool results: no empty user message after them.
  const auto t = api::parse_messages_request(R"({"model": "m", "max_tokens": 5, "messages": [
      {"role": "user", "content": "q"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "calc", "input": {}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "4"}]}],
      "tools": [{"name": "calc", "input_schema": {"type": "object"}}], "tool_choice": {"type": "tool", "name": "calc"}})");
  ASSERT_EQ(t.messages.size(), 3u);
  EXPECT_EQ(t.messages[2].role, "tool");
  EXPECT_FALSE(t.messages[1].content.has_value());
  EXPECT_EQ(t.tool_choice.mode, api::ToolChoice::Mode::Named);
}

TEST(MessagesRequest, RefusalsNameTheField) {
  std::string long_stops = R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stop_sequences": [")";
  long_stops.append(9000, 'a');
  long_stops.append(R"("]})");
  expect_bad([](const std::string& b) { api::parse_messages_request(b); },
             {
                 {R"({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})", "model", "Field required"},
                 {R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})", "max_tokens", "Field required"},
                 {R"({"model": "m", "max_tokens": 5, "messages": []})", "messages", "at least one"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})",
                  "messages[0].role", "'system'"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]})",
                  "messages[0].content[0].type", "text only"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "The"}]})",
                  "messages[1]", "prefill"},
                 {R"({"model": "m", "max_tokens": 5, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]})",
                  "temperature", "between 0 and 1"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "w"}]})",
                  "tools[0].type", "server tools"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]})",
                  "messages[0].content[0].type", "assistant messages"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "some"}})",
                  "tool_choice.type", "'any'"},
                 {R"({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "stop_sequences": [""]})",
                  "stop_sequences[0]", "empty"},
                 {long_stops, "stop_sequences", "bytes"},
             });
  // count_tokens needs no max_tokens.
  const auto c = api::parse_messages_request(R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})", {}, true);
  EXPECT_EQ(c.messages.size(), 1u);
}

// ---- Answer blocks -------------------------------------------------------------------------

using server::AnswerBlock;
using server::BlockEvent;

std::string trace(const std::vector<BlockEvent>& evs) {
  std::string s;
  for (const BlockEvent& e : evs) {
    s += e.type == BlockEvent::Type::Start ? 'S' : e.type == BlockEvent::Type::Stop ? 'E' : 'D';
    s += std::to_string(e.block);
    if (e.type == BlockEvent::Type::Delta) s.append("(").append(e.delta).append(")");
    s += ' ';
  }
  return s;
}

TEST(AnswerBlocks, ReasoningTextAndToolCallsInOrder) {
  api::ChatPrompt p;
  p.reasoning = true;
  p.starts_in_reasoning = true;
  p.tools_offered = true;
  server::AnswerBlocks blocks(p);
  const std::string call = std::string(api::kToolCallsBegin) + std::string(api::kToolCallBegin) + "function" +
                           std::string(api::kToolSep) + "get\n```json\n{\"a\": 1}\n```" + std::string(api::kToolCallEnd) +
                           std::string(api::kToolCallsEnd);
  std::vector<BlockEvent> all;
  for (const std::string& piece : std::vector<std::string>{"think", "ing</think>", "\n\nHello", " world", call.substr(0, 7), call.substr(7)})
    for (BlockEvent& e : blocks.push(piece)) all.push_back(std::move(e));
  for (BlockEvent& e : blocks.finish("")) all.push_back(std::move(e));
  ASSERT_EQ(blocks.blocks().size(), 3u);
  EXPECT_EQ(blocks.blocks()[0].kind, AnswerBlock::Kind::Reasoning);
  EXPECT_EQ(blocks.blocks()[0].text, "thinking");
  EXPECT_EQ(blocks.blocks()[1].kind, AnswerBlock::Kind::Text);
  EXPECT_EQ(blocks.blocks()[1].text, "Hello world");
  EXPECT_EQ(blocks.blocks()[2].kind, AnswerBlock::Kind::ToolCall);
  EXPECT_EQ(blocks.blocks()[2].name, "get");
  EXPECT_FALSE(blocks.blocks()[2].call_id.empty());
  EXPECT_EQ(ojson::parse(blocks.blocks()[2].text), ojson::parse(R"({"a": 1})"));
  EXPECT_EQ(std::count_if(blocks.blocks().begin(), blocks.blocks().end(),
                          [](const AnswerBlock& b) { return b.kind == AnswerBlock::Kind::ToolCall; }),
            1);
  // Every block starts once, before its deltas, and stops once, before the next starts.
  const std::string t = trace(all);
  for (const char* order : {"S0 ", "E0 S1 ", "E1 S2 "}) EXPECT_NE(t.find(order), std::string::npos) << t;
  EXPECT_EQ(t.substr(t.size() - 3), "E2 ");
}

TEST(AnswerBlocks, PlainTextIsOneBlockAndEmptyAnswerNone) {
  api::ChatPrompt p;
  server::AnswerBlocks blocks(p);
  std::string t = trace(blocks.push("a"));
  t += trace(blocks.push("b"));
  t += trace(blocks.finish("c"));
  EXPECT_EQ(t, "S0 D0(a) D0(b) D0(c) E0 ");
  server::AnswerBlocks empty(p);
  EXPECT_TRUE(empty.finish("").empty());
  EXPECT_TRUE(empty.blocks().empty());
}

}  // namespace
}  // namespace dsv3
