// Speculative decoding with the MTP module (EngineOptions::draft): whatever the drafts, the
// output is the main model's. Greedy: the same tokens as plain decoding on several
// checkpoints, numerics and prompts, with EOS, stop strings and limits landing inside a draft.
// Sampling: the same tokens for the same seed under every sampling setting, and the sampled
// distribution checked against the model's own probabilities (chi-square). Rejected drafts
// leave nothing behind in the paged cache or its prefix registry.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "model/model.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "sampling/token_constraint.h"
#include "test_util.h"
#include "tokenized_model.h"

namespace dsv3::runtime {
namespace {

namespace fs = std::filesystem;

fs::path default_model_dir() { return fs::path(DSV3_SOURCE_DIR) / "default-model"; }

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  FinishInfo info;
};

Outcome drain(Engine& e, GenRequest req) {
  const std::shared_ptr<Stream> s = e.submit(std::move(req));
  Outcome r;
  for (;;) {
    if (!e.options().own_thread) e.run_step();
    TokenEvent ev;
    if (s->next(ev, std::chrono::milliseconds(e.options().own_thread ? 50 : 0))) {
      r.tokens.push_back(ev.token);
      r.text += ev.text;
      continue;
    }
    if (auto f = s->finished()) {
      r.info = *f;
      r.text += f->tail;
      return r;
    }
  }
}

EngineOptions one_sequence(int64_t draft, kernels::Numerics numerics = kernels::Numerics::Fp32) {
  EngineOptions o = single_sequence_options(512);
  o.draft = draft;
  o.numerics = numerics;
  return o;
}

GenRequest request(const std::vector<int32_t>& prompt, int64_t n, float temperature = 0) {
  GenRequest r;
  r.prompt = prompt;
  r.max_tokens = n;
  r.sampling.temperature = temperature;
  return r;
}

GenRequest copy_of(const GenRequest& r) {
  GenRequest c;
  c.prompt = r.prompt;
  c.sampling = r.sampling;
  c.max_tokens = r.max_tokens;
  c.stop = r.stop;
  c.ignore_eos = r.ignore_eos;
  c.top_logprobs = r.top_logprobs;
  c.forced = r.forced;
  return c;
}

// The default model (trained: its MTP module drafts well, so drafts are accepted and rejected).
class SpeculationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new model::Model(model::Model::load(default_model_dir().string()));
    tok_ = new Tokenizer(Tokenizer::load(default_model_dir().string()));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tok_;
  }
  static std::vector<int32_t> encode(const std::string& s) { return tok_->encode(s, tok_->add_bos_by_default()); }
  // Runs `req` without drafts and with 1, 2 and 4, and checks every run against the plain one.
  static Outcome same_with_every_draft(const GenRequest& req, kernels::Numerics numerics = kernels::Numerics::Fp32,
                                   DraftStats* drafts = nullptr) {
    Engine plain(*model_, *tok_, testutil::pool(), one_sequence(0, numerics));
    const Outcome want = drain(plain, copy_of(req));
    for (int64_t n : {1, 2, 4}) {
      Engine e(*model_, *tok_, testutil::pool(), one_sequence(n, numerics));
      const Outcome got = drain(e, copy_of(req));
      EXPECT_EQ(got.tokens, want.tokens) << "draft " << n;
      EXPECT_EQ(got.text, want.text) << "draft " << n;
      EXPECT_EQ(got.info.reason, want.info.reason) << "draft " << n;
      EXPECT_EQ(got.info.completion_tokens, want.info.completion_tokens) << "draft " << n;
      EXPECT_LE(got.info.drafts.drafted.size(), size_t(n)) << "draft " << n;
      if (drafts) drafts->add(got.info.drafts);
      EXPECT_EQ(e.stats().pages_in_use, 0) << "a finished sequence left pages behind";
    }
    return want;
  }
  static inline model::Model* model_ = nullptr;
  static inline Tokenizer* tok_ = nullptr;
};

TEST_F(SpeculationTest, GreedyTokensAreThePlainOnesInEveryNumerics) {
  DraftStats d;
  for (const char* prompt : {"In the beginning God created", "And Jesus answered and said unto them,",
                             "The LORD is my shepherd; I shall not want.", "And it came to pass"})
    for (kernels::Numerics n : {kernels::Numerics::Fp32, kernels::Numerics::Bf16})
      same_with_every_draft(request(encode(prompt), 48), n, &d);
  // Both paths ran: drafts were accepted (also beyond the first) and rejected.
  ASSERT_GE(d.accepted.size(), 4u);
  EXPECT_GT(d.accepted[0], 0);
  EXPECT_GT(d.accepted[1], 0);
  EXPECT_LT(d.accepted_total(), d.drafted_total());
}

TEST_F(SpeculationTest, StopStringsAndLimitsInsideADraft) {
  const std::vector<int32_t> prompt = encode("And God said, Let there be light:");
  Engine plain(*model_, *tok_, testutil::pool(), one_sequence(0));
  const Outcome free_run = drain(plain, request(prompt, 40));
  ASSERT_GT(free_run.text.size(), 40u);
  // Stop strings that end mid-token and on token boundaries, at several places.
  for (size_t at : {size_t(7), size_t(15), size_t(23), free_run.text.size() - 3}) {
    GenRequest r = request(prompt, 40);
    r.stop = {free_run.text.substr(at, 3)};
    const Outcome want = same_with_every_draft(r);
    EXPECT_EQ(want.info.reason, FinishReason::Stop);
  }
  // max_tokens and the context end while drafts are pending.
  for (int64_t n : {1, 2, 3, 5, 7}) same_with_every_draft(request(prompt, n));
  for (int64_t room : {1, 4, 6}) {
    EngineOptions small_ctx = one_sequence(3);
    small_ctx.ctx_size = int64_t(prompt.size()) + room;
    Engine e(*model_, *tok_, testutil::pool(), small_ctx);
    const Outcome r = drain(e, request(prompt, 100));
    EXPECT_EQ(r.info.reason, FinishReason::Length);
    // The last token needs no room of its own: it is never fed back.
    EXPECT_EQ(r.tokens, std::vector<int32_t>(free_run.tokens.begin(), free_run.tokens.begin() + room + 1));
  }
}

TEST_F(SpeculationTest, SeededSamplingGivesThePlainTokensUnderEverySetting) {
  struct Case {
    const char* name;
    std::function<void(SamplingParams&)> set;
  };
  const std::vector<Case> cases = {
      {"temperature", [](SamplingParams& s) { s.temperature = 0.9f; }},
      {"top-k", [](SamplingParams& s) { s.temperature = 1.1f, s.top_k = 20; }},
      {"top-p", [](SamplingParams& s) { s.temperature = 0.8f, s.top_p = 0.9f; }},
      {"min-p", [](SamplingParams& s) { s.temperature = 1.0f, s.min_p = 0.05f; }},
      {"penalties", [](SamplingParams& s) {
         s.temperature = 0.7f, s.repetition_penalty = 1.3f, s.presence_penalty = 0.5f, s.frequency_penalty = 0.4f;
       }},
      {"logit bias", [](SamplingParams& s) {
         s.temperature = 0.6f;
         for (int32_t id = 10; id < 400; id += 7) s.logit_bias[id] = 3.0f;
       }},
  };
  const std::vector<int32_t> prompt = encode("And the LORD spake unto Moses, saying,");
  for (const Case& c : cases)
    for (uint64_t seed : {1u, 2u, 3u}) {
      GenRequest r = request(prompt, 40);
      c.set(r.sampling);
      r.sampling.seed = seed;
      r.top_logprobs = 2;
      SCOPED_TRACE(std::string(c.name) + " seed " + std::to_string(seed));
      same_with_every_draft(r);
    }
}

// A constraint with state: after a token with an even id, only odd ids may follow.
class Alternating final : public TokenConstraint {
 public:
  explicit Alternating(int64_t vocab) : vocab_(vocab) {}
  void mask(float* logits) const override {
    if (last_ % 2 == 0)
      for (int64_t i = 0; i < vocab_; i += 2) logits[i] = -INFINITY;
  }
  void accept(int32_t token) override { last_ = token; }

 private:
  int64_t vocab_;
  int32_t last_ = 1;
};

TEST_F(SpeculationTest, ConstraintsAndForcedTokensSeeOnlyAcceptedTokens) {
  for (float temperature : {0.0f, 0.8f}) {
    GenRequest r = request(encode("Blessed are the"), 30, temperature);
    r.sampling.seed = 9;
    r.forced = {tok_->encode(" poor", false).at(0)};
    Engine plain(*model_, *tok_, testutil::pool(), one_sequence(0));
    GenRequest a = copy_of(r);
    a.constraint = std::make_unique<Alternating>(model_->config().vocab_size);
    const Outcome want = drain(plain, std::move(a));
    for (int64_t n : {1, 3}) {
      Engine e(*model_, *tok_, testutil::pool(), one_sequence(n));
      GenRequest b = copy_of(r);
      b.constraint = std::make_unique<Alternating>(model_->config().vocab_size);
      EXPECT_EQ(drain(e, std::move(b)).tokens, want.tokens) << "draft " << n << ", temperature " << temperature;
    }
  }
}

// Upper quantile of the chi-square distribution (Wilson-Hilferty; close for df >= 3).
double chi2_quantile(double df, double z) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

TEST_F(SpeculationTest, SampledTriplesFollowTheModelsDistribution) {
  // The first three sampled tokens over many seeds, against p(t1) p(t2 | t1) p(t3 | t1 t2)
  // computed from the main model's logits (top-k 3 at temperature 1: the softmax of the three
  // best logits). With one draft the third token comes from the verify step's second row
  // exactly when the draft was accepted, so a wrong acceptance rule shows in the triples.
  constexpr int kTopK = 3;
  const std::vector<int32_t> prompt = encode("And he said,");
  const int64_t V = model_->config().vocab_size;
  model::Workspace ws(testutil::pool());
  auto probs_after = [&](const std::vector<int32_t>& toks) {
    model::KvCache c = model_->new_cache(int64_t(toks.size()));
    std::vector<float> logits(static_cast<size_t>(V));
    model::ForwardOptions fo;
    fo.last_only = true;
    model_->forward(ws, toks.data(), int64_t(toks.size()), c, logits.data(), fo);
    std::vector<int32_t> ids(static_cast<size_t>(V));
    for (int32_t i = 0; i < int32_t(V); ++i) ids[size_t(i)] = i;
    std::partial_sort(ids.begin(), ids.begin() + kTopK, ids.end(), [&](int32_t a, int32_t b) {
      return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
    });
    std::vector<double> p(static_cast<size_t>(V), 0.0);
    double z = 0;
    for (int k = 0; k < kTopK; ++k)
      z += p[size_t(ids[size_t(k)])] = std::exp(double(logits[size_t(ids[size_t(k)])] - logits[size_t(ids[0])]));
    for (double& v : p) v /= z;
    return p;
  };
  constexpr int kRuns = 1500;
  constexpr double kMin = 5;  // smallest expected count of a cell of its own
  std::map<std::vector<int32_t>, int> seen;
  Engine e(*model_, *tok_, testutil::pool(), one_sequence(1));
  DraftStats d;
  for (int i = 0; i < kRuns; ++i) {
    GenRequest r = request(prompt, 4, 1.0f);  // a fourth token, so the third may come from a draft
    r.sampling.top_k = kTopK;
    r.sampling.seed = 1000 + uint64_t(i);
    r.ignore_eos = true;
    const Outcome got = drain(e, std::move(r));
    ASSERT_EQ(got.tokens.size(), 4u);
    ++seen[{got.tokens[0], got.tokens[1], got.tokens[2]}];
    d.add(got.info.drafts);
  }
  ASSERT_GT(d.accepted_total(), kRuns / 10);                 // many tokens came from accepted drafts
  ASSERT_LT(d.accepted_total(), d.drafted_total() - kRuns / 10);  // and many drafts were rejected
  std::vector<std::pair<double, int>> cells;  // expected, observed
  double rest_expected = kRuns;
  int rest_observed = kRuns;
  std::vector<int32_t> toks = prompt;
  const std::vector<double> p1 = probs_after(toks);
  for (int32_t t1 = 0; t1 < V; ++t1) {
    if (kRuns * p1[size_t(t1)] < kMin) continue;
    toks.push_back(t1);
    const std::vector<double> p2 = probs_after(toks);
    for (int32_t t2 = 0; t2 < V; ++t2) {
      if (kRuns * p1[size_t(t1)] * p2[size_t(t2)] < kMin) continue;
      toks.push_back(t2);
      const std::vector<double> p3 = probs_after(toks);
      for (int32_t t3 = 0; t3 < V; ++t3) {
        const double want = kRuns * p1[size_t(t1)] * p2[size_t(t2)] * p3[size_t(t3)];
        if (want < kMin) continue;
        const auto it = seen.find({t1, t2, t3});
        const int got = it == seen.end() ? 0 : it->second;
        cells.emplace_back(want, got);
        rest_expected -= want;
        rest_observed -= got;
      }
      toks.pop_back();
    }
    toks.pop_back();
  }
  ASSERT_GE(cells.size(), 10u) << "the prompt's distribution is too flat for this test";
  cells.emplace_back(rest_expected, rest_observed);
  double chi2 = 0;
  for (auto [want, got] : cells) chi2 += (got - want) * (got - want) / want;
  const double df = double(cells.size() - 1);
  EXPECT_LT(chi2, chi2_quantile(df, 3.09)) << "chi-square " << chi2 << " over " << cells.size() << " cells (p < 0.001)";
}

TEST_F(SpeculationTest, RejectedDraftsLeaveNoTraceInThePagedCache) {
  // A server-style engine (pages of 4 tokens, its own thread) drafting 3: a second request
  // that reuses the first one's pages (prompt and accepted answer) continues exactly as a
  // fresh plain engine does, and no page is left held.
  EngineOptions o;
  o.page_tokens = 4;
  o.draft = 3;
  o.ctx_size = 256;
  Engine e(*model_, *tok_, testutil::pool(), o);
  const std::vector<int32_t> prompt = encode("And God called the light Day, and the darkness he called Night.");
  const Outcome first = drain(e, request(prompt, 40));
  ASSERT_EQ(first.tokens.size(), 40u);
  EXPECT_GT(first.info.drafts.drafted_total(), first.info.drafts.accepted_total());  // some were rejected
  std::vector<int32_t> longer = prompt;
  longer.insert(longer.end(), first.tokens.begin(), first.tokens.begin() + 30);
  const Outcome second = drain(e, request(longer, 20));
  EXPECT_GE(second.info.cached_tokens, int64_t(prompt.size()) + 24);
  EngineOptions fresh = o;
  fresh.draft = 0;
  Engine plain(*model_, *tok_, testutil::pool(), fresh);
  EXPECT_EQ(second.tokens, drain(plain, request(longer, 20)).tokens);
  EXPECT_EQ(e.stats().pages_in_use, 0);
  EXPECT_EQ(e.stats().drafts.steps, first.info.drafts.steps + second.info.drafts.steps);
}

TEST_F(SpeculationTest, BatchedSequencesDraftAndMatchTheirSoloRuns) {
  const std::vector<std::string> prompts = {"In the beginning", "And Moses said unto the LORD,",
                                            "Now the serpent was more subtil", "Jesus wept.", "And the earth was"};
  std::vector<Outcome> solo;
  for (const std::string& p : prompts) {
    Engine plain(*model_, *tok_, testutil::pool(), one_sequence(0));
    solo.push_back(drain(plain, request(encode(p), 24)));
  }
  EngineOptions o;
  o.max_seqs = 4;  // one waits, then joins a running batch
  o.draft = 2;
  o.ctx_size = 256;
  Engine e(*model_, *tok_, testutil::pool(), o);
  std::vector<std::shared_ptr<Stream>> streams;
  for (const std::string& p : prompts) streams.push_back(e.submit(request(encode(p), 24)));
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> toks;
    for (;;) {
      TokenEvent ev;
      if (streams[i]->next(ev, std::chrono::milliseconds(50))) {
        toks.push_back(ev.token);
        continue;
      }
      if (auto f = streams[i]->finished()) {
        EXPECT_GT(f->drafts.steps, 0);
        break;
      }
    }
    EXPECT_EQ(toks, solo[i].tokens) << prompts[i];
  }
}

model::LoadOptions no_mtp_options() {
  model::LoadOptions o;
  o.load_mtp = false;
  return o;
}

TEST_F(SpeculationTest, ForcedDraftingNeedsAnMtpModule) {
  const model::Model no_mtp = model::Model::load(default_model_dir().string(), no_mtp_options());
  EXPECT_THROW(Engine(no_mtp, *tok_, testutil::pool(), one_sequence(2)), Error);
}

TEST_F(SpeculationTest, TiedMtpCopiesReadTheMainTensors) {
  // The trained default model exports the MTP layer's embedding and head as byte copies of the
  // main ones (they are shared in training): drafting reads the main tensors.
  const model::ModelWeights& w = model_->weights();
  ASSERT_TRUE(w.mtp);
  EXPECT_EQ(w.mtp->embed.data, w.embed.data);
  EXPECT_EQ(w.mtp->head.data, w.lm_head.data);
  // Loading touches neither copy again (nor, without drafting, the MTP layer at all).
  const std::string mtp = "model.layers." + std::to_string(model_->config().num_hidden_layers) + ".";
  EXPECT_TRUE(w.idle.count(mtp + "embed_tokens.weight"));
  EXPECT_TRUE(w.idle.count(mtp + "shared_head.head.weight"));
  EXPECT_FALSE(w.idle.count(mtp + "eh_proj.weight"));
  const model::Model no_mtp = model::Model::load(default_model_dir().string(), no_mtp_options());
  EXPECT_TRUE(no_mtp.weights().idle.count(mtp + "eh_proj.weight"));
  EXPECT_FALSE(no_mtp.weights().idle.count("lm_head.weight"));
}

// Random checkpoints (FP8 and BF16, with and without q-LoRA) with the V3 tokenizer: drafts of
// an untrained MTP module are mostly rejected, and the tokens are still the plain ones; an EOS
// the main model picks inside a verify step ends the sequence there.
class SpeculationRandomTest : public ::testing::TestWithParam<std::tuple<const char*, const char*>> {};

TEST_P(SpeculationRandomTest, GreedyTokensAreThePlainOnes) {
  const auto [preset, dtype] = GetParam();
  testutil::TokenizedModel m =
      testutil::make_tokenized_model(std::string("spec_") + preset + dtype, preset, dtype, 77);
  ASSERT_TRUE(m.model);
  for (const char* text : {"Hello there, how are", "1, 2, 3, 4,", "The quick brown fox"}) {
    GenRequest r;
    r.prompt = m.tokenizer->encode(text, true);
    r.sampling.temperature = 0;
    r.max_tokens = 24;
    Engine plain(*m.model, *m.tokenizer, testutil::pool(), one_sequence(0, kernels::Numerics::Bf16));
    const Outcome want = drain(plain, copy_of(r));
    for (int64_t n : {1, 3}) {
      Engine e(*m.model, *m.tokenizer, testutil::pool(), one_sequence(n, kernels::Numerics::Bf16));
      EXPECT_EQ(drain(e, copy_of(r)).tokens, want.tokens) << preset << " " << dtype << " draft " << n;
    }
  }
  m.remove();
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, SpeculationRandomTest,
                         ::testing::Values(std::tuple{"tiny", "fp8"}, std::tuple{"tiny", "bf16"},
                                           std::tuple{"tiny-noq", "fp8"}),
                         [](const auto& info) {
                           std::string name = std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(SpeculationEosTest, AnEndTokenInsideADraftEndsTheSequenceWhereItWould) {
  // The default model with one of its frequent tokens declared an end-of-sequence token.
  const fs::path src = default_model_dir();
  const fs::path dir = fs::path(::testing::TempDir()) / ("dsv3_spec_eos_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& f : fs::directory_iterator(src))
    if (f.path().extension() != ".svg" && f.path().extension() != ".md") fs::create_symlink(fs::absolute(f.path()), dir / f.path().filename());
  const Tokenizer tok = Tokenizer::load(src.string());
  const model::Model base = model::Model::load(src.string());
  const std::vector<int32_t> prompt = tok.encode("And God saw the light, that it was good:", tok.add_bos_by_default());
  Engine plain(base, tok, testutil::pool(), one_sequence(0));
  const Outcome free_run = drain(plain, request(prompt, 40));
  ASSERT_GE(free_run.tokens.size(), 20u);
  for (size_t at : {size_t(3), size_t(9), size_t(17)}) {
    const int32_t end = free_run.tokens[at];
    nlohmann::json cfg = nlohmann::json::parse(std::ifstream(src / "config.json"));
    cfg["eos_token_id"] = nlohmann::json::array({cfg["eos_token_id"], end});
    fs::remove(dir / "config.json");
    std::ofstream(dir / "config.json") << cfg.dump(2);
    const model::Model m = model::Model::load(dir.string());
    Engine p(m, tok, testutil::pool(), one_sequence(0));
    const Outcome want = drain(p, request(prompt, 40));
    EXPECT_EQ(want.info.reason, FinishReason::Stop);
    for (int64_t n : {1, 2, 4}) {
      Engine e(m, tok, testutil::pool(), one_sequence(n));
      const Outcome got = drain(e, request(prompt, 40));
      EXPECT_EQ(got.tokens, want.tokens) << "end token at " << at << ", draft " << n;
      EXPECT_EQ(got.info.completion_tokens, want.info.completion_tokens);
      EXPECT_EQ(got.info.reason, FinishReason::Stop);
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace dsv3::runtime
