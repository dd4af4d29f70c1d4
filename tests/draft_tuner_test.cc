// --draft auto's decisions (runtime/draft_tuner.h): measure a plain step first, then drafting,
// keep whichever yields more tokens per second, per batch size, robust to outlier steps, and
// try drafting again after a long plain stretch.
#include <gtest/gtest.h>

#include "runtime/draft_tuner.h"

namespace dsv3::runtime {
namespace {

using Choice = DraftTuner::Choice;

TEST(DraftTunerTest, ForcedDraftingAlwaysDrafts) {
  DraftTuner t(/*automatic=*/false);
  EXPECT_EQ(t.choose(1), Choice::Draft);
  for (int i = 0; i < 20; ++i) t.record(1, false, 0.001, 1);
  for (int i = 0; i < 20; ++i) t.record(1, true, 0.010, 1.1);
  EXPECT_EQ(t.choose(1), Choice::Draft);
  EXPECT_TRUE(t.worth_starting(0));
}

TEST(DraftTunerTest, MeasuresThenKeepsTheFasterWay) {
  DraftTuner t(true);
  EXPECT_EQ(t.choose(1), Choice::Measure);
  for (int i = 0; i < DraftTuner::kPlainSamples; ++i) t.record(1, false, i == 0 ? 0.050 : 0.010, 1);  // one outlier
  EXPECT_NEAR(t.plain_rate(1), 100.0, 1e-9);
  EXPECT_EQ(t.choose(1), Choice::Draft);
  // A verify step costs 1.5 plain steps and yields 1.8 tokens: drafting pays.
  for (int i = 0; i < DraftTuner::kDraftSamples; ++i) t.record(1, true, 0.015, 1.8);
  EXPECT_NEAR(t.draft_rate(1), 120.0, 1e-9);
  EXPECT_EQ(t.choose(1), Choice::Draft);
  EXPECT_TRUE(t.worth_starting(0));
  // Other batch sizes are measured on their own.
  EXPECT_EQ(t.choose(8), Choice::Measure);
  // Acceptance drops (1.2 tokens per step): plain is faster now.
  for (int i = 0; i < 9; ++i) t.record(1, true, 0.015, 1.2);
  EXPECT_EQ(t.choose(1), Choice::Off);
  EXPECT_FALSE(t.worth_starting(0));
  // After a long plain stretch drafting is tried again, measured afresh.
  for (int i = 0; i < DraftTuner::kRetryAfter; ++i) t.record(1, false, 0.010, 1);
  EXPECT_EQ(t.choose(1), Choice::Draft);
  t.record(1, true, 0.012, 1.9);
  EXPECT_EQ(t.choose(1), Choice::Draft);  // one sample is not yet a verdict
  EXPECT_NEAR(t.draft_rate(1), 1.9 / 0.012, 1e-6);
}

}  // namespace
}  // namespace dsv3::runtime
