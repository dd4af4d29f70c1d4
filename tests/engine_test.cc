// The serving engine: results independent of batching and of the cache budget, prefix reuse,
// cancellation, limits, logprobs and forced tokens, on a random model with the real
// DeepSeek-V3 tokenizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "model/testgen.h"
#include "runtime/engine.h"
#include "test_util.h"
#include "tokenized_model.h"

namespace dsv3::runtime {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  FinishInfo info;
};

Outcome drain(Stream& s) {
  Outcome o;
  for (;;) {
    TokenEvent ev;
    if (s.next(ev, std::chrono::milliseconds(50))) {
      o.tokens.push_back(ev.token);
      o.text += ev.text;
      continue;
    }
    if (auto f = s.finished()) {
      o.info = *f;
      o.text += f->tail;
      return o;
    }
  }
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    m_ = testutil::make_tokenized_model("engine", "tiny", "fp8", 41);
    tokenizer_ = m_.tokenizer.get();
    model_ = m_.model.get();
  }
  static void TearDownTestSuite() { m_.remove(); }
  static GenRequest greedy(const std::string& text, int64_t n) {
    GenRequest r;
    r.prompt = tokenizer_->encode(text, true);
    r.sampling.temperature = 0;
    r.max_tokens = n;
    return r;
  }
  static inline testutil::TokenizedModel m_;
  static inline const Tokenizer* tokenizer_ = nullptr;
  static inline const model::Model* model_ = nullptr;
};

const std::vector<std::string> kPrompts = {
    "The quick brown fox", "In the beginning God created the heaven and the earth.", "1 2 3 4 5 6 7 8 9 10",
    "def main():\n    return 0", "Bonjour tout le monde", "短い文章です。", "A", "What is the capital of France?"};

TEST_F(EngineTest, EightConcurrentSequencesEachEqualTheirSoloRun) {
  std::vector<Outcome> solo;
  {
    Engine e(*model_, *tokenizer_, testutil::pool(), EngineOptions{});
    for (const auto& p : kPrompts) solo.push_back(drain(*e.submit(greedy(p, 12))));
  }
  EngineOptions o;
  o.step_tokens = 7;  // prompts are split into chunks and mixed with decode steps
  Engine e(*model_, *tokenizer_, testutil::pool(), o);
  std::vector<std::shared_ptr<Stream>> streams;
  for (const auto& p : kPrompts) streams.push_back(e.submit(greedy(p, 12)));
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    const Outcome got = drain(*streams[i]);
    EXPECT_EQ(got.tokens, solo[i].tokens) << kPrompts[i];
    EXPECT_EQ(got.text, solo[i].text);
    EXPECT_EQ(got.info.reason, solo[i].info.reason);
    EXPECT_EQ(got.info.completion_tokens, int64_t(got.tokens.size()) + (got.info.reason == FinishReason::Stop ? 1 : 0) -
                                              (got.info.reason == FinishReason::Stop && got.tokens.size() == 12 ? 1 : 0));
  }
  EXPECT_GT(e.stats().steps, 0u);
}

TEST_F(EngineTest, SharedPrefixIsReusedAndGivesTheSameAnswer) {
  EngineOptions o;
  o.page_tokens = 4;
  Engine e(*model_, *tokenizer_, testutil::pool(), o);
  std::string system = "You are a careful assistant. ";
  for (int i = 0; i < 8; ++i) system += "Answer briefly and precisely, citing sources. ";
  const Outcome a = drain(*e.submit(greedy(system + "Question one?", 8)));
  const Outcome b = drain(*e.submit(greedy(system + "Question one?", 8)));
  EXPECT_EQ(a.info.cached_tokens, 0);
  EXPECT_GT(b.info.cached_tokens, a.info.prompt_tokens - 5);
  EXPECT_EQ(a.tokens, b.tokens);
  const Outcome c = drain(*e.submit(greedy(system + "A different question?", 8)));
  EXPECT_GT(c.info.cached_tokens, 40);
  EXPECT_LT(c.info.cached_tokens, c.info.prompt_tokens);
  EXPECT_GT(e.stats().reuse_hits, 0u);
}

TEST_F(EngineTest, TinyCacheBudgetQueuesRequestsButResultsAreUnchanged) {
  const uint64_t page = PagedLatentCache::page_bytes(model_->config().num_hidden_layers, model_->config().latent_dim(), 16);
  std::vector<Outcome> solo;
  {
    Engine e(*model_, *tokenizer_, testutil::pool(), EngineOptions{});
    for (int i = 0; i < 4; ++i) solo.push_back(drain(*e.submit(greedy(kPrompts[size_t(i)], 10))));
  }
  EngineOptions o;
  o.cache_bytes = page * 3;  // room for about one sequence at a time
  Engine e(*model_, *tokenizer_, testutil::pool(), o);
  std::vector<std::shared_ptr<Stream>> s;
  for (int i = 0; i < 4; ++i) s.push_back(e.submit(greedy(kPrompts[size_t(i)], 10)));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(drain(*s[size_t(i)]).tokens, solo[size_t(i)].tokens);
  EXPECT_LE(e.stats().pages_total, 3);
  // A request that can never fit is refused up front.
  EXPECT_CONTAINS(testutil::error_of([&] { e.submit(greedy("hello", 1000)); }), "cache");
}

TEST_F(EngineTest, CancelledSequenceLeavesAndFreesItsPages) {
  Engine e(*model_, *tokenizer_, testutil::pool(), EngineOptions{});
  GenRequest r = greedy("Count forever:", 100000);
  r.ignore_eos = true;
  auto s = e.submit(std::move(r));
  TokenEvent ev;
  ASSERT_TRUE(s->next(ev, std::chrono::seconds(30)));
  s->cancel();
  const Outcome o = drain(*s);
  EXPECT_EQ(o.info.reason, FinishReason::Cancelled);
  for (int i = 0; i < 100 && e.stats().pages_in_use > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(e.stats().pages_in_use, 0);
}

TEST_F(EngineTest, LimitsStopsLogprobsAndForcedTokens) {
  Engine e(*model_, *tokenizer_, testutil::pool(), EngineOptions{});
  GenRequest r = greedy("Hello", 5);
  r.ignore_eos = true;
  r.top_logprobs = 3;
  const std::vector<int32_t> forced = tokenizer_->encode("Sure thing", false);
  r.forced = forced;
  const Outcome o = drain(*e.submit(std::move(r)));
  EXPECT_EQ(o.info.reason, FinishReason::Length);
  ASSERT_EQ(o.tokens.size(), 5u);
  EXPECT_TRUE(std::equal(forced.begin(), forced.end(), o.tokens.begin()));
  EXPECT_EQ(o.text.rfind("Sure thing", 0), 0u) << o.text;

  // logprobs: the top list is sorted, and greedy picks its head.
  GenRequest q = greedy("Hello", 4);
  q.ignore_eos = true;
  q.top_logprobs = 5;
  auto s = e.submit(std::move(q));
  TokenEvent ev;
  int seen = 0;
  while (!s->finished()) {
    if (!s->next(ev, std::chrono::milliseconds(50))) continue;
    ++seen;
    ASSERT_EQ(ev.top.size(), 5u);
    EXPECT_EQ(ev.top[0].token, ev.token);
    EXPECT_EQ(ev.top[0].logprob, ev.logprob);
    EXPECT_LE(ev.logprob, 0.0f);
    for (size_t i = 1; i < ev.top.size(); ++i) EXPECT_GE(ev.top[i - 1].logprob, ev.top[i].logprob);
  }
  EXPECT_EQ(seen, 4);

  // A stop string cuts the text and finishes with "stop".
  const Outcome full = drain(*e.submit([] { auto g = greedy("Tell me", 12); g.ignore_eos = true; return g; }()));
  ASSERT_GE(full.text.size(), 4u);
  GenRequest st = greedy("Tell me", 12);
  st.ignore_eos = true;
  st.stop = {full.text.substr(2, 2)};
  const Outcome cut = drain(*e.submit(std::move(st)));
  EXPECT_EQ(cut.info.reason, FinishReason::Stop);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(full.text.substr(2, 2))));

  // Prompts that cannot run are refused.
  EXPECT_CONTAINS(testutil::error_of([&] { e.submit(GenRequest{}); }), "empty");
  GenRequest big;
  big.prompt.assign(5000, 100);
  EXPECT_CONTAINS(testutil::error_of([&] { e.submit(std::move(big)); }), "context");
}

TEST_F(EngineTest, PromptLogprobsAreTheModelsWhateverTheChunking) {
  // Every prompt token's log-probability given the ones before it (likelihood evaluation),
  // against the model's own logits; with max_tokens 0 nothing is generated.
  const std::vector<int32_t> prompt = tokenizer_->encode("The quick brown fox jumps over the lazy dog, twice.", true);
  const int64_t T = int64_t(prompt.size()), V = model_->config().vocab_size;
  model::Workspace ws(testutil::pool());
  model::KvCache c = model_->new_cache(T);
  std::vector<float> logits(static_cast<size_t>(T * V));
  model::ForwardOptions fo;
  fo.attention = model::AttentionForm::Absorbed;
  model_->forward(ws, prompt.data(), T, c, logits.data(), fo);
  for (int64_t step_tokens : {int64_t(256), int64_t(5)})
    for (int64_t max_tokens : {int64_t(0), int64_t(3)}) {
      EngineOptions o;
      o.step_tokens = step_tokens;
      Engine e(*model_, *tokenizer_, testutil::pool(), o);
      drain(*e.submit(greedy("The quick brown fox jumps", 4)));  // cached pages are not used for it
      GenRequest r = greedy("", max_tokens);
      r.prompt = prompt;
      r.prompt_logprobs = 2;
      const Outcome out = drain(*e.submit(std::move(r)));
      EXPECT_EQ(int64_t(out.tokens.size()), max_tokens);
      EXPECT_EQ(out.info.cached_tokens, 0);
      ASSERT_EQ(int64_t(out.info.prompt_logprobs.size()), T - 1);
      for (int64_t t = 1; t < T; ++t) {
        const float* row = &logits[size_t((t - 1) * V)];
        const float mx = *std::max_element(row, row + V);
        double z = 0;  // over the tokenizer's ids (the model's padding rows are no tokens)
        for (int64_t i = 0; i < V; ++i)
          if (tokenizer_->is_valid_id(int32_t(i))) z += std::exp(double(row[i] - mx));
        const TokenEvent& got = out.info.prompt_logprobs[size_t(t - 1)];
        EXPECT_EQ(got.token, prompt[size_t(t)]);
        EXPECT_NEAR(got.logprob, row[prompt[size_t(t)]] - mx - std::log(z), 1e-4);
        ASSERT_EQ(got.top.size(), 2u);
        EXPECT_EQ(got.top[0].token, int32_t(std::max_element(row, row + V) - row));
        EXPECT_GE(got.top[0].logprob, got.top[1].logprob);
      }
    }
}

}  // namespace
}  // namespace dsv3::runtime
