#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "base/error.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"

namespace dsv3 {
namespace {

std::vector<float> logits5() { return {1.0f, 3.0f, 2.0f, 0.5f, 2.9f}; }

int32_t draw(Sampler& s, std::vector<float> l) { return s.sample(l.data()); }

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 5);
  EXPECT_EQ(draw(s, logits5()), 1);
  EXPECT_EQ(draw(s, {2.0f, 5.0f, 5.0f, 1.0f, 5.0f}), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams p;
  p.seed = 42;
  Sampler a(p, 5), b(p, 5);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 200; ++i) ta.push_back(draw(a, logits5())), tb.push_back(draw(b, logits5()));
  EXPECT_EQ(ta, tb);
  p.seed = 43;
  Sampler c(p, 5);
  std::vector<int32_t> tc;
  for (int i = 0; i < 200; ++i) tc.push_back(draw(c, logits5()));
  EXPECT_NE(ta, tc);
}

TEST(Sampler, TemperatureSamplingFollowsSoftmax) {
  SamplingParams p;
  p.seed = 7;
  p.temperature = 0.7f;
  Sampler s(p, 5);
  const std::vector<float> l = logits5();
  std::vector<double> want(5);
  double z = 0;
  for (int i = 0; i < 5; ++i) z += (want[i] = std::exp(l[i] / 0.7));
  std::vector<int> counts(5, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++counts[draw(s, l)];
  for (int i = 0; i < 5; ++i) {
    const double p_i = want[i] / z, sd = std::sqrt(p_i * (1 - p_i) / n);
    EXPECT_NEAR(double(counts[i]) / n, p_i, 5 * sd + 1e-4) << "token " << i;
  }
}

TEST(Sampler, TopKTopPMinPTruncate) {
  auto support = [](SamplingParams p) {
    p.seed = 1;
    Sampler s(p, 5);
    std::set<int32_t> seen;
    for (int i = 0; i < 3000; ++i) seen.insert(draw(s, logits5()));
    return seen;
  };
  SamplingParams p;
  p.top_k = 2;
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 4}));
  p = {};
  // softmax(1,3,2,.5,2.9): p1=.402 p4=.363 p2=.148 p0=.054 p3=.033 -> .76 needs {1,4}
  p.top_p = 0.76f;
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 4}));
  p.top_p = 0.77f;
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 4, 2}));
  p = {};
  p.min_p = 0.3f;  // keeps p >= .3 * .402 = .121
  EXPECT_EQ(support(p), (std::set<int32_t>{1, 4, 2}));
  p = {};
  EXPECT_EQ(support(p).size(), 5u);
}

TEST(Sampler, PenaltiesAndBias) {
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{3, 10.0f}};
  Sampler biased(p, 5);
  EXPECT_EQ(draw(biased, logits5()), 3);

  p = {};
  p.temperature = 0;
  p.repetition_penalty = 2.0f;  // 3.0 -> 1.5 for token 1 (seen in the prompt)
  Sampler rep(p, 5);
  rep.set_prompt({1});
  EXPECT_EQ(draw(rep, logits5()), 4);
  std::vector<float> neg = {-1.0f, -1.5f, -3.0f, -4.0f, -5.0f};
  rep.set_prompt({0});  // negative logits are multiplied: -1 -> -2, below -1.5
  EXPECT_EQ(rep.sample(neg.data()), 1);

  p = {};
  p.temperature = 0;
  p.presence_penalty = 0.05f;
  p.frequency_penalty = 0.05f;
  Sampler pres(p, 5);
  pres.set_prompt({4});  // the prompt does not count for presence/frequency
  EXPECT_EQ(draw(pres, logits5()), 1);
  pres.accept(1);  // 3.0 - 0.05 - 0.05 = 2.9: tie with token 4 -> lower id 1
  EXPECT_EQ(draw(pres, logits5()), 1);
  pres.accept(1);  // 3.0 - 0.1 - 0.05 < 2.9
  EXPECT_EQ(draw(pres, logits5()), 4);
}

TEST(Sampler, LogprobsAreLogSoftmaxAfterPenalties) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 5);
  draw(s, logits5());
  double z = 0;
  for (float v : logits5()) z += std::exp(double(v));
  EXPECT_NEAR(s.last_logprobs()[1], 3.0 - std::log(z), 1e-5);
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  auto bad = [](auto tweak, const char* want) {
    SamplingParams p;
    tweak(p);
    try {
      Sampler s(p, 5);
      ADD_FAILURE() << "accepted " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  bad([](SamplingParams& p) { p.temperature = -1; }, "temperature");
  bad([](SamplingParams& p) { p.top_p = 0; }, "top_p");
  bad([](SamplingParams& p) { p.top_p = 1.5f; }, "top_p");
  bad([](SamplingParams& p) { p.top_k = -2; }, "top_k");
  bad([](SamplingParams& p) { p.min_p = 2; }, "min_p");
  bad([](SamplingParams& p) { p.repetition_penalty = 0; }, "repetition_penalty");
  bad([](SamplingParams& p) { p.presence_penalty = 3; }, "presence_penalty");
  bad([](SamplingParams& p) { p.frequency_penalty = NAN; }, "frequency_penalty");
  bad([](SamplingParams& p) { p.logit_bias = {{9, 1.0f}}; }, "logit_bias token 9");
}

TEST(StopMatcher, CatchesStopsSpanningTokens) {
  StopMatcher m({"</end>", "STOP"});
  std::string shown;
  for (const char* piece : {"Hello wor", "ld </", "en", "d> more"}) shown += m.push(piece);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "</end>");
  EXPECT_EQ(shown, "Hello world ");
  EXPECT_EQ(m.push("after"), "");
}

TEST(StopMatcher, ReleasesFalseStartsAndFlushes) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("a ST"), "a ");
  EXPECT_EQ(m.push("ART"), "START");
  EXPECT_EQ(m.push(" ST"), " ");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.flush(), "ST");
}

TEST(StopMatcher, EarliestStopWinsAndEmptyStopsIgnored) {
  StopMatcher m({"b", "", "abc"});
  EXPECT_EQ(m.push("xxabc"), "xx");  // "abc" starts before "b"
  EXPECT_EQ(m.matched(), "abc");
  StopMatcher none({});
  EXPECT_EQ(none.push("anything"), "anything");
}

}  // namespace
}  // namespace dsv3
