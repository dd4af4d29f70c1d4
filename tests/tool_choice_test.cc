// tool_choice "required" and a named function through the server's planning and the engine,
// on a random tiny model with the real DeepSeek-V3 tokenizer and chat template: whatever the
// random weights sample, the answer is one complete call whose arguments parse as JSON and
// match the function's schema (any JSON object for a schema the compiler does not support).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "api/tool_calls.h"
#include "json_schema_check.h"
#include "model/testgen.h"
#include "runtime/engine.h"
#include "server/request_path.h"
#include "test_util.h"
#include "tokenized_model.h"

namespace dsv3::server {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const char* kWeather = R"({"type":"object","properties":{"city":{"type":"string","maxLength":12},
  "days":{"type":"integer"},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"],
  "additionalProperties":false})";
const char* kSearch = R"({"type":"object","properties":{"query":{"type":"string"},
  "filters":{"type":"array","items":{"type":"object","properties":{"k":{"type":"string"},"v":{"type":"number"}},
  "required":["k","v"]},"minItems":1}},"required":["query","filters"]})";
// "pattern" is not supported by the JSON-schema compiler: the arguments fall back to any object.
const char* kPattern = R"({"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}$"}}})";

class ToolChoiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    m_ = testutil::make_tokenized_model("tool_choice", "tiny", "fp8", 43);
    model_ = m_.model.get();
    tokenizer_ = m_.tokenizer.get();
    runtime::EngineOptions eo;
    eo.max_seqs = 4;
    eo.ctx_size = 1024;
    engine_ = std::make_unique<runtime::Engine>(*model_, *tokenizer_, testutil::pool(), eo);
    ServerOptions so;
    so.model_name = "tiny";
    ctx_ = std::make_unique<ServeContext>(*model_, *tokenizer_, *engine_, so);
  }
  static void TearDownTestSuite() {
    ctx_.reset();
    engine_.reset();
    m_.remove();
  }

  // Runs a chat request through planning and the engine; returns each choice's text and how
  // it ended.
  static std::vector<std::pair<std::string, runtime::FinishReason>> run(const Json& body) {
    Plan plan = plan_chat_completion(*ctx_, body.dump());
    std::vector<std::pair<std::string, runtime::FinishReason>> out;
    for (auto& s : ctx_->submit_all(plan.gens)) {
      std::string text;
      for (;;) {
        runtime::TokenEvent ev;
        if (s->next(ev, std::chrono::milliseconds(50))) {
          text += ev.text;
        } else if (auto f = s->finished()) {
          out.emplace_back(text + f->tail, f->reason);
          break;
        }
      }
    }
    return out;
  }

  static Json tools() {
    Json t = Json::array();
    for (auto [name, schema] : {std::pair{"get_weather", kWeather}, {"search", kSearch}, {"lookup", kPattern}})
      t.push_back({{"type", "function"}, {"function", {{"name", name}, {"parameters", Json::parse(schema)}}}});
    return t;
  }

  static inline testutil::TokenizedModel m_;
  static inline const Tokenizer* tokenizer_ = nullptr;
  static inline const model::Model* model_ = nullptr;
  static inline std::unique_ptr<runtime::Engine> engine_;
  static inline std::unique_ptr<ServeContext> ctx_;
};

void expect_one_valid_call(const std::string& text, runtime::FinishReason reason, const std::string& want_name) {
  api::ToolCallParser parser;
  parser.push(text);
  parser.finish();
  ASSERT_EQ(parser.calls().size(), 1u) << text;
  const api::ParsedToolCall& call = parser.calls()[0];
  EXPECT_TRUE(call.complete) << text;
  EXPECT_EQ(reason, runtime::FinishReason::Stop) << text;
  EXPECT_EQ(parser.content(), "") << text;
  if (!want_name.empty()) {
    EXPECT_EQ(call.name, want_name);
  }
  Json args;
  ASSERT_NO_THROW(args = Json::parse(call.arguments)) << call.arguments;
  ASSERT_TRUE(args.is_object()) << call.arguments;
  const char* schema = call.name == "get_weather" ? kWeather : call.name == "search" ? kSearch : nullptr;
  ASSERT_TRUE(schema || call.name == "lookup") << call.name;
  if (schema) {
    EXPECT_TRUE(testutil::validates(args, Json::parse(schema), Json::parse(schema))) << call.arguments;
  }
}

TEST_F(ToolChoiceTest, RequiredAndNamedCallsCloseWithSchemaValidArguments) {
  const Json messages = Json::array({{{"role", "user"}, {"content", "What is the weather in Oslo?"}}});
  std::set<std::string> names;
  for (int seed = 1; seed <= 3; ++seed) {
    for (const Json& choice : {Json("required"), Json{{"type", "function"}, {"function", {{"name", "search"}}}},
                               Json{{"type", "function"}, {"function", {{"name", "lookup"}}}}}) {
      const Json body = {{"messages", messages}, {"tools", tools()}, {"tool_choice", choice}, {"temperature", 1.0},
                         {"seed", seed}, {"max_tokens", 120}, {"n", 2}};
      const std::string want = choice.is_string() ? "" : choice["function"]["name"].get<std::string>();
      for (const auto& [text, reason] : run(body)) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " tool_choice " + choice.dump());
        expect_one_valid_call(text, reason, want);
        api::ToolCallParser p;
        p.push(text);
        p.finish();
        if (!p.calls().empty()) names.insert(p.calls()[0].name);
      }
    }
  }
  EXPECT_GE(names.size(), 2u) << "required picks among the offered tools";
}

TEST_F(ToolChoiceTest, AutoStaysUnconstrained) {
  // With tool_choice auto a random model writes whatever it samples: no constraint, so the
  // answer is ordinary content (it never happens to spell a call marker in a few tokens).
  const Json body = {{"messages", Json::array({{{"role", "user"}, {"content", "Hi"}}})}, {"tools", tools()},
                     {"tool_choice", "auto"}, {"temperature", 1.0}, {"seed", 5}, {"max_tokens", 12}};
  Plan plan = plan_chat_completion(*ctx_, body.dump());
  ASSERT_EQ(plan.gens.size(), 1u);
  EXPECT_EQ(plan.gens[0].constraint, nullptr);
  EXPECT_TRUE(plan.gens[0].forced.empty());
}

}  // namespace
}  // namespace dsv3::server
