// Tool-call parsing: each case (V3, V3.1, several calls, malformed and unterminated text) is
// fed whole, one byte at a time and in random chunkings; the merged events must be identical,
// every piece whole UTF-8, and the content / calls what the case says. Then the streaming
// behaviour itself: what is held back and what is let through at once.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "api/tool_calls.h"

namespace dsv3::api {
namespace {

using Kind = ToolCallEvent::Kind;

const std::string kCallsBegin(kToolCallsBegin), kCallsEnd(kToolCallsEnd), kCallBegin(kToolCallBegin),
    kCallEnd(kToolCallEnd), kSep(kToolSep);

ToolCallParser make_parser() {
  return ToolCallParser([](int i) { return "call_" + std::to_string(i); });
}

std::string v3_call(const std::string& name, const std::string& args) {
  return kCallBegin + "function" + kSep + name + "\n```json\n" + args + "\n```" + kCallEnd;
}
std::string v31_call(const std::string& name, const std::string& args) {
  return kCallBegin + name + kSep + args + kCallEnd;
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

// Adjacent Content pieces and Arguments pieces of one call merged: the stream a client sees
// once concatenated, independent of how the text arrived.
void append_merged(std::vector<ToolCallEvent>& all, std::vector<ToolCallEvent> events) {
  for (ToolCallEvent& e : events) {
    EXPECT_FALSE(e.kind != Kind::CallStart && e.text.empty()) << "empty piece";
    EXPECT_TRUE(valid_utf8(e.text)) << "piece splits a UTF-8 sequence: " << e.text;
    if (!all.empty() && all.back().kind == e.kind && e.kind != Kind::CallStart && all.back().index == e.index)
      all.back().text += e.text;
    else
      all.push_back(std::move(e));
  }
}

struct Fed {
  std::vector<ToolCallEvent> events;
  std::vector<ParsedToolCall> calls;
  std::string content;
};

Fed feed(const std::string& text, const std::vector<size_t>& cuts) {
  ToolCallParser p = make_parser();
  Fed r;
  size_t from = 0;
  for (size_t cut : cuts) {
    append_merged(r.events, p.push(std::string_view(text).substr(from, cut - from)));
    from = cut;
  }
  append_merged(r.events, p.push(std::string_view(text).substr(from)));
  append_merged(r.events, p.finish());
  r.calls = p.calls();
  r.content = p.content();
  return r;
}

std::string describe(const std::vector<ToolCallEvent>& events) {
  std::string s;
  for (const ToolCallEvent& e : events) {
    if (e.kind == Kind::Content) s += "content(" + e.text + ") ";
    if (e.kind == Kind::CallStart) s += "start(" + std::to_string(e.index) + "," + e.id + "," + e.name + ") ";
    if (e.kind == Kind::Arguments) s += "args(" + std::to_string(e.index) + "," + e.text + ") ";
  }
  return s;
}

struct Expected {
  std::string name, arguments;
  bool complete = true;
};

struct Case {
  std::string label, text, content;
  std::vector<Expected> calls;
};

// Checks `c` whole, byte by byte and in 200 random chunkings.
void check_case(const Case& c) {
  SCOPED_TRACE(c.label);
  const Fed whole = feed(c.text, {});
  EXPECT_EQ(whole.content, c.content);
  ASSERT_EQ(whole.calls.size(), c.calls.size()) << describe(whole.events);
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(whole.calls[i].id, "call_" + std::to_string(i));
    EXPECT_EQ(whole.calls[i].name, c.calls[i].name);
    EXPECT_EQ(whole.calls[i].arguments, c.calls[i].arguments);
    EXPECT_EQ(whole.calls[i].complete, c.calls[i].complete);
  }
  // The events agree with the summary: content pieces and argument pieces add up.
  std::string content;
  std::vector<std::string> args(c.calls.size());
  for (const ToolCallEvent& e : whole.events) {
    if (e.kind == Kind::Content) content += e.text;
    if (e.kind == Kind::Arguments) args.at(size_t(e.index)) += e.text;
  }
  EXPECT_EQ(content, c.content);
  for (size_t i = 0; i < c.calls.size(); ++i) EXPECT_EQ(args[i], c.calls[i].arguments);

  std::vector<size_t> every;
  for (size_t i = 1; i < c.text.size(); ++i) every.push_back(i);
  EXPECT_EQ(describe(feed(c.text, every).events), describe(whole.events)) << "byte by byte";
  std::mt19937 gen(12345);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<size_t> cuts;
    for (size_t at = 0;;) {
      at += 1 + gen() % 12;
      if (at >= c.text.size()) break;
      cuts.push_back(at);
    }
    const Fed r = feed(c.text, cuts);
    ASSERT_EQ(describe(r.events), describe(whole.events)) << "chunking trial " << trial;
  }
}

TEST(ToolCalls, PlainTextPassesThrough) {
  check_case({"plain", "Hello, world! <b>bold</b> and <｜User｜> and émoji 😀.",
              "Hello, world! <b>bold</b> and <｜User｜> and émoji 😀.", {}});
  check_case({"empty", "", "", {}});
  check_case({"stray end markers", "a" + kCallEnd + "b" + kCallsEnd, "a" + kCallEnd + "b" + kCallsEnd, {}});
}

TEST(ToolCalls, V3SingleCall) {
  check_case({"v3 one call",
              "Let me check." + kCallsBegin + v3_call("get_weather", R"({"city": "Paris"})") + kCallsEnd,
              "Let me check.",
              {{"get_weather", R"({"city": "Paris"})"}}});
  // Pretty-printed arguments keep their inner whitespace; the fence's own newlines go.
  check_case({"v3 pretty arguments",
              kCallsBegin + v3_call("f", "{\n  \"a\": [1, 2],\n  \"b\": \"x`y\"\n}") + kCallsEnd,
              "",
              {{"f", "{\n  \"a\": [1, 2],\n  \"b\": \"x`y\"\n}"}}});
}

TEST(ToolCalls, V3SeveralCalls) {
  check_case({"v3 three calls",
              kCallsBegin + v3_call("get_weather", R"({"city": "Paris"})") + "\n" +
                  v3_call("get_weather", R"({"city": "Tōkyō"})") + "\n" + v3_call("now", "{}") + kCallsEnd,
              "",
              {{"get_weather", R"({"city": "Paris"})"}, {"get_weather", R"({"city": "Tōkyō"})"}, {"now", "{}"}}});
}

TEST(ToolCalls, V31Calls) {
  check_case({"v3.1 two calls",
              "On it." + kCallsBegin + v31_call("search", R"({"q": "deepseek"})") +
                  v31_call("open_url", R"({"url": "https://x.y/?a=1&b=<2>"})") + kCallsEnd,
              "On it.",
              {{"search", R"({"q": "deepseek"})"}, {"open_url", R"({"url": "https://x.y/?a=1&b=<2>"})"}}});
  check_case({"v3.1 without calls-begin", v31_call("search", R"({"q": 1})"), "", {{"search", R"({"q": 1})"}}});
  check_case({"v3.1 function named function", kCallsBegin + v31_call("function", R"({"x": 1})") + kCallsEnd, "",
              {{"function", R"({"x": 1})"}}});
}

TEST(ToolCalls, FormatsMixAndTextAround) {
  check_case({"mixed formats",
              kCallsBegin + v3_call("a", "{}") + "\n" + v31_call("b", "[1]") + kCallsEnd + " Done.",
              " Done.",
              {{"a", "{}"}, {"b", "[1]"}}});
  check_case({"fence without language and no newline before end",
              kCallsBegin + kCallBegin + "function" + kSep + "f\n```\n{\"k\": 2}```" + kCallEnd + kCallsEnd,
              "",
              {{"f", "{\"k\": 2}"}}});
  check_case({"no fence at all", kCallsBegin + kCallBegin + "function" + kSep + "f\n{\"k\": 2}" + kCallEnd + kCallsEnd,
              "", {{"f", "{\"k\": 2}"}}});
  check_case({"two blocks", kCallsBegin + v31_call("a", "{}") + kCallsEnd + "mid" + kCallsBegin + v31_call("b", "{}") + kCallsEnd,
              "mid", {{"a", "{}"}, {"b", "{}"}}});
}

TEST(ToolCalls, MalformedBecomesContent) {
  const std::string junk_after_begin = "x" + kCallsBegin + "Sorry, no." + kCallsEnd;
  check_case({"text after calls-begin", junk_after_begin, junk_after_begin, {}});
  const std::string empty_block = kCallsBegin + " " + kCallsEnd + "ok";
  check_case({"empty block", empty_block, empty_block, {}});
  const std::string newline_header = kCallsBegin + kCallBegin + "get weather\nnow" + kSep + "{}" + kCallEnd + kCallsEnd;
  check_case({"newline before the separator", newline_header, newline_header, {}});
  const std::string bad_name = kCallsBegin + kCallBegin + "get weather" + kSep + "{}" + kCallEnd + kCallsEnd;
  check_case({"space inside a V3.1 name", bad_name, bad_name, {}});
  const std::string bad_v3_name = kCallBegin + "function" + kSep + "get(weather)\n```json\n{}\n```" + kCallEnd;
  check_case({"bad V3 name", bad_v3_name, bad_v3_name, {}});
  const std::string long_header = kCallBegin + std::string(300, 'a') + kSep + "{}" + kCallEnd;
  check_case({"header too long", long_header, long_header, {}});
  const std::string unterminated_header = "Hi" + kCallsBegin + kCallBegin + "function" + kSep + "get_wea";
  check_case({"unterminated header", unterminated_header, unterminated_header, {}});
  const std::string partial_marker = "Hi <｜tool▁ca";
  check_case({"partial marker at the end", partial_marker, partial_marker, {}});
  // A bad call after a good one: the good one stays, the bad one is text.
  check_case({"good then bad",
              kCallsBegin + v31_call("a", "{}") + kCallBegin + "x y" + kSep + "{}" + kCallEnd + kCallsEnd,
              kCallBegin + "x y" + kSep + "{}" + kCallEnd + kCallsEnd,
              {{"a", "{}"}}});
  // A marker inside the header restarts there.
  check_case({"call-begin inside header",
              kCallBegin + "oops" + kCallBegin + "b" + kSep + "{}" + kCallEnd,
              kCallBegin + "oops",
              {{"b", "{}"}}});
}

TEST(ToolCalls, UnterminatedCallsKeepTheirArguments) {
  check_case({"cut inside arguments", kCallsBegin + kCallBegin + "function" + kSep + "f\n```json\n{\"city\": \"Par",
              "", {{"f", "{\"city\": \"Par", false}}});
  check_case({"cut inside the closing fence", kCallsBegin + kCallBegin + "f" + kSep + "{\"a\": 1}\n``", "",
              {{"f", "{\"a\": 1}", false}}});
  check_case({"cut inside call-end", kCallsBegin + kCallBegin + "f" + kSep + "{}<｜tool▁call", "", {{"f", "{}", false}}});
  check_case({"cut right after the header", kCallBegin + "function" + kSep + "f\n", "", {{"f", "", false}}});
  check_case({"next call begins without call-end", kCallsBegin + kCallBegin + "a" + kSep + "{}" + v31_call("b", "{}") + kCallsEnd,
              "", {{"a", "{}"}, {"b", "{}"}}});
  check_case({"calls-end without call-end", kCallsBegin + kCallBegin + "a" + kSep + "{} " + kCallsEnd + "tail", "tail",
              {{"a", "{}"}}});
}

// Random texts built from markers and the pieces around them: any chunking gives the same
// events, and when no call was committed the content is the text exactly as generated.
TEST(ToolCalls, RandomTextsAreChunkingInvariant) {
  const std::vector<std::string> pieces = {kCallsBegin, kCallsEnd, kCallBegin, kCallEnd, kSep, "function", "\n",
                                           "```json", "```", "{\"a\": 1}", "x", " ", "é", "get_weather", "<",
                                           "`", "<｜tool▁", "}"};
  std::mt19937 gen(7);
  int with_calls = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string text;
    const int n = 1 + int(gen() % 8);
    for (int i = 0; i < n; ++i) text += pieces[gen() % pieces.size()];
    if (trial % 2) {  // well-formed calls, then perhaps damaged
      text += kCallsBegin;
      for (int k = 0, calls = 1 + int(gen() % 3); k < calls; ++k)
        text += gen() % 2 ? v3_call(std::string("f") += std::to_string(k), std::string("{\"k\": ") += std::to_string(k) += "}")
                          : v31_call("g", std::string("[") += std::to_string(k) += "]");
      text += kCallsEnd;
      for (int m = int(gen() % 3); m > 0; --m) {
        size_t at = gen() % (text.size() + 1);
        while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;  // whole UTF-8
        if (gen() % 2)
          text.insert(at, pieces[gen() % pieces.size()]);
        else
          text.resize(at);
      }
    }
    SCOPED_TRACE(text);
    const Fed whole = feed(text, {});
    if (whole.calls.empty()) {
      ASSERT_EQ(whole.content, text);
    } else {
      ++with_calls;
    }
    std::vector<size_t> every;
    for (size_t i = 1; i < text.size(); ++i) every.push_back(i);
    ASSERT_EQ(describe(feed(text, every).events), describe(whole.events)) << "byte by byte";
    std::vector<size_t> cuts;
    for (size_t at = 0;;) {
      at += 1 + gen() % 9;
      if (at >= text.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(describe(feed(text, cuts).events), describe(whole.events)) << "random chunks";
  }
  std::printf("%d of 400 random texts held calls\n", with_calls);
  EXPECT_GT(with_calls, 20);  // the generator does reach the call paths
}

TEST(ToolCalls, StreamsWithoutNeedlessHolding) {
  ToolCallParser p = make_parser();
  auto content_of = [](const std::vector<ToolCallEvent>& ev) {
    std::string s;
    for (const auto& e : ev)
      if (e.kind == Kind::Content) s += e.text;
    return s;
  };
  EXPECT_EQ(content_of(p.push("Hello <")), "Hello ");  // "<" may begin a marker
  EXPECT_EQ(content_of(p.push("｜tool▁ca")), "");
  EXPECT_EQ(content_of(p.push("t")), "<｜tool▁cat");  // no marker continues like that
  EXPECT_EQ(content_of(p.push("é")), "é");
  EXPECT_EQ(content_of(p.push("\xF0\x9F")), "");  // half an emoji waits
  EXPECT_EQ(content_of(p.push("\x98\x80!")), "😀!");

  // The call is announced once its name is complete; arguments flow as they come.
  EXPECT_TRUE(p.push(kCallsBegin + kCallBegin + "function" + kSep + "get_wea").empty());
  std::vector<ToolCallEvent> ev = p.push("ther\n```json\n{\"city\": ");
  ASSERT_EQ(ev.size(), 2u) << describe(ev);
  EXPECT_EQ(ev[0].kind, Kind::CallStart);
  EXPECT_EQ(ev[0].name, "get_weather");
  EXPECT_EQ(ev[0].id, "call_0");
  EXPECT_EQ(ev[0].index, 0);
  EXPECT_EQ(ev[1].kind, Kind::Arguments);
  EXPECT_EQ(ev[1].text, "{\"city\":");  // the trailing space might precede the closing fence
  ev = p.push("\"Paris\"}\n`");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].text, " \"Paris\"}");
  EXPECT_TRUE(p.push("``" + kCallEnd).empty());
  EXPECT_TRUE(p.push(kCallsEnd).empty());
  EXPECT_TRUE(p.finish().empty());
  ASSERT_EQ(p.calls().size(), 1u);
  EXPECT_TRUE(p.calls()[0].complete);
  EXPECT_EQ(p.tool_calls_json().dump(),
            R"([{"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}])");
  EXPECT_EQ(p.finish_reason("stop"), "tool_calls");
  EXPECT_EQ(p.finish_reason("length"), "length");
  EXPECT_EQ(p.content(), "Hello <｜tool▁caté😀!");
}

TEST(ToolCalls, ForcedPrefixThenGeneration) {
  // The engine forces the header of a named call, then the model writes the arguments.
  ToolCallParser p = make_parser();
  std::vector<ToolCallEvent> ev = p.push(kCallsBegin + kCallBegin + "function" + kSep + "lookup\n```json\n");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, Kind::CallStart);
  p.push("{\"id\": 7}\n```" + kCallEnd + kCallsEnd);
  p.finish();
  ASSERT_EQ(p.calls().size(), 1u);
  EXPECT_EQ(p.calls()[0].arguments, "{\"id\": 7}");
}

TEST(ToolCalls, NoCallsMeansStop) {
  ToolCallParser p = make_parser();
  p.push("just text");
  p.finish();
  EXPECT_EQ(p.finish_reason("stop"), "stop");
  EXPECT_TRUE(p.tool_calls_json().empty());
}

TEST(ToolCalls, RandomIdsLookLikeOpenAIs) {
  const std::string a = random_tool_call_id(), b = random_tool_call_id();
  EXPECT_EQ(a.size(), 29u);
  EXPECT_EQ(a.substr(0, 5), "call_");
  EXPECT_NE(a, b);
  ToolCallParser p;  // default ids
  p.push(v31_call("f", "{}"));
  p.finish();
  ASSERT_EQ(p.calls().size(), 1u);
  EXPECT_EQ(p.calls()[0].id.substr(0, 5), "call_");
}

}  // namespace
}  // namespace dsv3::api
