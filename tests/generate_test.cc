// One prompt run to the end on a single-sequence engine (runtime/generate.h, what generate
// and chat do), on a random model that carries the real DeepSeek-V3 tokenizer: determinism,
// prefix reuse, max tokens, stop strings, EOS, context limits, cancellation, and the
// generate/chat commands end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <filesystem>
#include <regex>
#include <fstream>

#include "base/error.h"
#include "model/testgen.h"
#include "runtime/generate.h"
#include "test_util.h"
#include "tokenized_model.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

class GenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    m_ = testutil::make_tokenized_model("generate", "tiny-v2-lite", "bf16", 31);
    dir_ = m_.dir;
    tokenizer_ = m_.tokenizer.get();
    model_ = m_.model.get();
  }
  static void TearDownTestSuite() { m_.remove(); }

  //! An engine with a context of ctx tokens. Engines of one test run one at a time on the
  //! shared pool: each waits, idle, while another generates.
  static std::unique_ptr<runtime::Engine> engine(int64_t ctx) {
    return std::make_unique<runtime::Engine>(*model_, *tokenizer_, testutil::pool(),
                                             runtime::single_sequence_options(ctx));
  }
  static runtime::GenerateResult gen(runtime::Engine& e, const std::string& text, runtime::GenerateOptions o) {
    return runtime::generate(e, tokenizer_->encode(text, true), o, nullptr);
  }
  static runtime::GenerateOptions greedy(int64_t n) {
    runtime::GenerateOptions o;
    o.sampling.temperature = 0;
    o.max_tokens = n;
    return o;
  }

  static inline testutil::TokenizedModel m_;
  static inline fs::path dir_;
  static inline const Tokenizer* tokenizer_ = nullptr;
  static inline const model::Model* model_ = nullptr;
};

TEST_F(GenerateTest, GreedyAndSeededRunsRepeat) {
  auto a = engine(256), b = engine(256);
  const runtime::GenerateResult g1 = gen(*a, "The quick brown fox", greedy(12));
  const runtime::GenerateResult g2 = gen(*b, "The quick brown fox", greedy(12));
  EXPECT_EQ(g1.tokens, g2.tokens);
  EXPECT_EQ(g1.finish_reason, runtime::FinishReason::Length);
  EXPECT_EQ(g1.tokens.size(), 12u);
  EXPECT_EQ(g1.completion_tokens, 12);
  // Again on the same engine: the prompt is found in its cache, the answer is the same.
  const runtime::GenerateResult g3 = gen(*a, "The quick brown fox", greedy(12));
  EXPECT_GT(g3.reused_tokens, 0);
  EXPECT_EQ(g3.tokens, g1.tokens);
  runtime::GenerateOptions s = greedy(12);
  s.sampling.temperature = 1.0f;
  s.sampling.seed = 5;
  EXPECT_EQ(gen(*a, "Hello", s).tokens, gen(*b, "Hello", s).tokens);
  s.sampling.seed = 6;
  EXPECT_NE(gen(*a, "Hello", s).tokens, gen(*b, "Hello", runtime::GenerateOptions{greedy(12)}).tokens);
}

TEST_F(GenerateTest, StreamedTextIsTheDecodedOutput) {
  auto e = engine(256);
  std::string streamed;
  const runtime::GenerateResult r = runtime::generate(*e, tokenizer_->encode("abc", true), greedy(16),
                                                      [&](const std::string& piece) { streamed += piece; });
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, tokenizer_->decode(r.tokens, /*skip_special=*/true));
}

TEST_F(GenerateTest, PrefixReuseGivesTheSameAnswer) {
  auto warm = engine(512), cold = engine(512);
  const std::vector<int32_t> first = tokenizer_->encode("You are a helpful assistant. Tell me a story.", true);
  const runtime::GenerateResult r1 = runtime::generate(*warm, first, greedy(8), nullptr);
  std::vector<int32_t> second = first;
  second.insert(second.end(), r1.tokens.begin(), r1.tokens.end());
  const std::vector<int32_t> more = tokenizer_->encode(" And another one, please.", false);
  second.insert(second.end(), more.begin(), more.end());
  const runtime::GenerateResult reused = runtime::generate(*warm, second, greedy(8), nullptr);
  const runtime::GenerateResult fresh = runtime::generate(*cold, second, greedy(8), nullptr);
  EXPECT_GE(reused.reused_tokens, int64_t(first.size()));
  EXPECT_EQ(fresh.reused_tokens, 0);
  EXPECT_EQ(reused.tokens, fresh.tokens);
}

TEST_F(GenerateTest, StopStringsAndEos) {
  auto s = engine(256);
  const runtime::GenerateResult full = gen(*s, "Once upon a time", greedy(24));
  ASSERT_GE(full.text.size(), 6u);
  // Stop on a piece of the greedy output that starts mid-text: the answer ends before it.
  const size_t at = full.text.size() / 2;
  runtime::GenerateOptions o = greedy(24);
  o.stop = {full.text.substr(at, 3)};
  const runtime::GenerateResult stopped = gen(*s, "Once upon a time", o);
  EXPECT_EQ(stopped.finish_reason, runtime::FinishReason::Stop);
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(o.stop[0])));
  // A token forced to EOS ends generation with nothing shown.
  o = greedy(24);
  o.sampling.logit_bias = {{int32_t(tokenizer_->eos_id()), 100.0f}};
  const runtime::GenerateResult eos = gen(*s, "Once upon a time", o);
  EXPECT_EQ(eos.finish_reason, runtime::FinishReason::Stop);
  EXPECT_EQ(eos.completion_tokens, 1);
  EXPECT_TRUE(eos.tokens.empty());  // the EOS ends the answer; it shows nothing
  EXPECT_EQ(eos.text, "");
  o.ignore_eos = true;
  o.max_tokens = 3;
  EXPECT_EQ(gen(*s, "Once upon a time", o).tokens.size(), 3u);
}

TEST_F(GenerateTest, ContextLimits) {
  auto s = engine(16);
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "word ";
  EXPECT_THROW(gen(*s, long_text, greedy(4)), Error);
  const runtime::GenerateResult r = gen(*s, "short", greedy(100));  // runs until the context is full
  EXPECT_EQ(r.finish_reason, runtime::FinishReason::Length);
  EXPECT_LE(r.prompt_tokens + int64_t(r.tokens.size()), 17);
  std::atomic<bool> cancel{true};
  EXPECT_EQ(runtime::generate(*s, tokenizer_->encode("x", true), greedy(5), nullptr, &cancel).finish_reason,
            runtime::FinishReason::Cancelled);
}

std::pair<int, std::string> run_cli(const std::string& args, const std::string& stdin_text = "") {
  const testutil::CommandResult r = testutil::run_dsv3(args, stdin_text);
  return {r.code, r.out};
}

TEST_F(GenerateTest, GenerateAndChatCommands) {
  auto [code, out] = run_cli("generate --model " + dir_.string() + " --prompt Hello -n 5 --temperature 0");
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("output 5 tok"), std::string::npos) << out;
  std::tie(code, out) = run_cli("generate --model " + dir_.string() + " --chat --system Hi --prompt Hello -n 3");
  EXPECT_EQ(code, 0) << out;
  std::tie(code, out) = run_cli("chat --model " + dir_.string() + " -n 4 --seed 3",
                                "hello\n/set temperature 0\n/show\nagain\n/set bogus 1\n/reset\n/quit\n");
  EXPECT_EQ(code, 0) << out;
  for (const char* want : {"temperature = 0", "temperature 0,", "unknown setting 'bogus'", "conversation reset"})
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  // The second turn reuses the first turn's cached prompt.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\(([1-9][0-9]*) cached\))"))) << out;
  // A model without a tokenizer says how to get one.
  const fs::path bare = dir_ / "bare";
  model::make_test_model({"tiny", "bf16", 1, 1, bare.string(), false});
  std::tie(code, out) = run_cli("generate --model " + bare.string() + " --prompt x");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("has no tokenizer.json"), std::string::npos) << out;
}

}  // namespace
}  // namespace dsv3
