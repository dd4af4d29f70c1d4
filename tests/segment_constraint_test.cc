// Shaped output (SegmentConstraint) and the JSON completion it closes values with, on a
// synthetic vocabulary: every byte, some longer pieces, five marker tokens without bytes and
// an end-of-sequence token. A "random model" takes any allowed token uniformly at random; every
// walk must spell one of the paths, finish within its token budget when the budget allows the
// shortest call, and give arguments that parse and match their schema.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/rng.h"
#include "json_schema_check.h"
#include "sampling/json_grammar.h"
#include "sampling/segment_constraint.h"
#include "test_util.h"

namespace dsv3 {
namespace {

using Json = nlohmann::json;
using testutil::validates;

enum : int32_t { kCallsBegin = 256, kCallBegin, kSep, kCallEnd, kCallsEnd, kEos };

std::shared_ptr<const TokenVocab> synthetic_vocab() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, char(b)));
  for (int i = kCallsBegin; i <= kEos; ++i) bytes.push_back("");
  for (const char* s : {"get", "_weather", "function", "\n```json\n", "\n```", "{\"", "\":\"", "\"}", "city", "\",\"",
                        "hello world", " the", "\": [", "\"]}", "unit", "12", "3.5", "{\"city\":\"Paris\"}", "\\u00e9",
                        "é", "日本", "\"\"", "}}", "tags", "\"a\\n"})
    bytes.push_back(s);
  return std::make_shared<const TokenVocab>(std::move(bytes));
}

const char* kWeather = R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},
  "unit":{"enum":["c","f"]}},"required":["city","unit"],"additionalProperties":false})";
const char* kTags = R"({"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"},"minItems":1}},
  "required":["tags"]})";

SegmentPath call_path(const std::string& name, const Json& schema) {
  return {Segment::of_token(kCallsBegin), Segment::of_token(kCallBegin), Segment::of_text("function"),
          Segment::of_token(kSep),        Segment::of_text(name + "\n```json\n"),
          Segment::of_json(JsonConstraint::compile_schema(schema)), Segment::of_text("\n```"),
          Segment::of_token(kCallEnd),    Segment::of_token(kCallsEnd)};
}

struct Walk {
  std::string text;  // bytes of the tokens taken, markers as '|'
  int64_t tokens = 0;
  bool complete = false;
};

Walk random_walk(SegmentConstraint& c, const TokenVocab& v, int64_t max_tokens, Rng& rng) {
  Walk w;
  std::vector<uint8_t> ok;
  for (; w.tokens < max_tokens && !c.complete(); ++w.tokens) {
    c.allowed(ok);
    std::vector<int32_t> ids;
    for (size_t i = 0; i < ok.size(); ++i)
      if (ok[i]) ids.push_back(int32_t(i));
    if (ids.empty()) break;
    const int32_t t = ids[rng.below(ids.size())];
    c.accept(t);
    w.text += t >= kCallsBegin && t <= kEos ? std::string("|") : v.bytes(t);
  }
  w.complete = c.complete();
  return w;
}

TEST(SegmentConstraint, RandomWalksSpellACompleteCallWithinTheBudget) {
  const auto vocab = synthetic_vocab();
  const Json weather = Json::parse(kWeather), tags = Json::parse(kTags);
  Rng rng(7);
  for (int64_t budget : {64, 80, 120, 400}) {
    for (int seed = 0; seed < 12; ++seed) {
      SegmentConstraint c({call_path("get_weather", weather), call_path("get", tags)}, vocab, {kEos},
                          size_t(vocab->size()), budget);
      const Walk w = random_walk(c, *vocab, budget, rng);
      ASSERT_TRUE(w.complete) << "budget " << budget << ": " << Json(w.text).dump();
      EXPECT_LE(w.tokens, budget);
      // "||function|NAME\n```json\nARGS\n```|||"
      const size_t open = w.text.find("\n```json\n"), close = w.text.rfind("\n```|||");
      ASSERT_EQ(w.text.substr(0, 10), "||function") << w.text;
      ASSERT_NE(open, std::string::npos);
      ASSERT_EQ(close + 7, w.text.size()) << w.text;
      const std::string name = w.text.substr(11, open - 11);
      const std::string args = w.text.substr(open + 9, close - open - 9);
      Json parsed;
      ASSERT_NO_THROW(parsed = Json::parse(args)) << args;
      ASSERT_TRUE(name == "get" || name == "get_weather") << name;
      const Json& schema = name == "get" ? tags : weather;
      EXPECT_TRUE(validates(parsed, schema, schema)) << name << " " << args;
    }
  }
}

TEST(SegmentConstraint, TooSmallABudgetEndsByLengthWithoutDeadEnds) {
  const auto vocab = synthetic_vocab();
  Rng rng(3);
  SegmentConstraint c({call_path("get_weather", Json::parse(kWeather))}, vocab, {kEos}, size_t(vocab->size()), 12);
  const Walk w = random_walk(c, *vocab, 12, rng);
  EXPECT_FALSE(w.complete);
  EXPECT_EQ(w.tokens, 12);
}

TEST(SegmentConstraint, UnmaskedPrefixLeavesLogitsAloneButIsFollowed) {
  const auto vocab = synthetic_vocab();
  SegmentConstraint c({call_path("get", Json::parse(kTags))}, vocab, {kEos}, size_t(vocab->size()), 100, 2);
  std::vector<float> logits(size_t(vocab->size()), 1.0f);
  c.mask(logits.data());
  EXPECT_EQ(std::count(logits.begin(), logits.end(), 1.0f), vocab->size()) << "forced tokens are not masked";
  c.accept(kCallsBegin);
  c.accept(kCallBegin);
  c.mask(logits.data());
  std::vector<uint8_t> ok;
  c.allowed(ok);
  for (size_t i = 0; i < ok.size(); ++i) {
    EXPECT_EQ(ok[i] != 0, std::isfinite(logits[i])) << i;
    if (ok[i]) {
      EXPECT_EQ(std::string("function").rfind(vocab->bytes(int32_t(i)), 0), 0u) << vocab->bytes(int32_t(i));
    }
  }
  // A token off every path ends them all: nothing is allowed after it.
  c.accept('x');
  c.allowed(ok);
  EXPECT_EQ(std::count(ok.begin(), ok.end(), 1), 0);
}

TEST(SegmentConstraint, NamesThatArePrefixesOfEachOther) {
  const auto vocab = synthetic_vocab();
  const Json any = Json::parse(R"({"type":"object"})");
  SegmentConstraint c({call_path("get", any), call_path("get_weather", any)}, vocab, {kEos}, size_t(vocab->size()), 200);
  for (int32_t t : {kCallsBegin, kCallBegin}) c.accept(t);
  for (char ch : std::string("function")) c.accept(uint8_t(ch));
  c.accept(kSep);
  c.accept(262);  // "get"
  std::vector<uint8_t> ok;
  c.allowed(ok);
  EXPECT_TRUE(ok['\n']) << "\"get\" may be complete";
  EXPECT_TRUE(ok[263]) << "\"_weather\" continues the longer name";
  EXPECT_FALSE(ok['x']);
}

TEST(SegmentConstraint, RejectsMalformedPaths) {
  const auto vocab = synthetic_vocab();
  const size_t n = size_t(vocab->size());
  EXPECT_THROW(SegmentConstraint({}, vocab, {kEos}, n, 10), Error);
  EXPECT_THROW(SegmentConstraint({{Segment::of_text("")}}, vocab, {kEos}, n, 10), Error);
  EXPECT_THROW(SegmentConstraint({{Segment::of_token(int32_t(n))}}, vocab, {kEos}, n, 10), Error);
  EXPECT_THROW(SegmentConstraint({{Segment::of_json(nullptr)}}, vocab, {kEos}, n, 10), Error);
  EXPECT_THROW(SegmentConstraint({{Segment::of_token(1)}}, vocab, {int32_t(n)}, n, 10), Error);
}

// The completion closes whatever was open, writing required keys and minimum items.
TEST(JsonCompletion, FinishesEveryPrefixOfValidTexts) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {kWeather, R"({"unit":"f","days":12,"city":"Paris"})"},
      {kTags, R"({"tags":["x\u00e9\n", "日本"], "other": {"a": [1, true, null]}})"},
      {R"({"type":"object","properties":{"a":{"type":"array","minItems":3,"items":{"type":"number"}},
         "s":{"type":"string","minLength":4}},"required":["s","a"]})",
       R"({"s":"abcdef","a":[1.5e3,-2,0.25]})"},
      {R"({"anyOf":[{"type":"integer"},{"type":"object","properties":{"k":{"const":"v"}},"required":["k"]}]})",
       R"({"k":"v"})"},
      {R"({"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"},"v":{"type":"boolean"}},
         "required":["v"]}},"$ref":"#/$defs/n"})",
       R"({"next":{"next":{"v":false},"v":true},"v":false})"},
  };
  for (const auto& [schema_text, text] : cases) {
    const Json schema = Json::parse(schema_text);
    const auto c = JsonConstraint::compile_schema(schema);
    const std::string t = text;
    for (size_t cut = 0; cut <= t.size(); ++cut) {
      json::GrammarState st(*c);
      ASSERT_TRUE(st.feed(t.substr(0, cut))) << t;
      std::string rest;
      ASSERT_TRUE(st.completion(rest, 4096)) << t.substr(0, cut);
      const std::string whole = t.substr(0, cut) + rest;
      ASSERT_TRUE(st.feed(rest)) << whole;
      ASSERT_TRUE(st.can_end()) << whole;
      Json parsed;
      ASSERT_NO_THROW(parsed = Json::parse(whole)) << whole;
      EXPECT_TRUE(validates(parsed, schema, schema)) << whole;
    }
  }
}

TEST(JsonCompletion, EmptyWhenCompleteAndFalseWhenTooLong) {
  const auto c = JsonConstraint::compile_schema(Json::parse(R"({"type":"string","minLength":50})"));
  json::GrammarState st(*c);
  std::string rest;
  EXPECT_FALSE(st.completion(rest, 10));
  ASSERT_TRUE(st.completion(rest, 100));
  EXPECT_EQ(rest.size(), 52u);
  ASSERT_TRUE(st.feed(rest));
  ASSERT_TRUE(st.completion(rest, 100));
  EXPECT_EQ(rest, "");
}

}  // namespace
}  // namespace dsv3
