// The paged latent cache: page accounting, prefix registration and reuse, LRU eviction, and
// a batched forward over paged sequences that matches each sequence run alone bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "base/error.h"
#include "model/model.h"
#include "model/testgen.h"
#include "runtime/paged_cache.h"
#include "test_util.h"

namespace dsv3 {
namespace {

std::vector<int32_t> iota_tokens(int n, int first = 1) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

TEST(PagedCache, AllocatesUntilFullThenFails) {
  runtime::PagedLatentCache pool(2, 3, 4, 3);
  runtime::PagedSequence a(pool), b(pool);
  EXPECT_TRUE(a.reserve(5));  // two pages
  EXPECT_EQ(pool.pages_in_use(), 2);
  EXPECT_FALSE(b.reserve(8));  // would need two more
  EXPECT_EQ(pool.pages_in_use(), 2);
  EXPECT_TRUE(b.reserve(4));
  EXPECT_EQ(pool.pages_available(), 0);
  a.clear();
  EXPECT_EQ(pool.pages_available(), 2);
  EXPECT_EQ(pool.pages_cached(), 0);  // nothing was committed, so nothing is kept
}

TEST(PagedCache, RowsOfDifferentPagesAndLayersDoNotOverlap) {
  runtime::PagedLatentCache pool(3, 5, 4, 4);
  runtime::PagedSequence s(pool);
  ASSERT_TRUE(s.reserve(16));
  for (int64_t l = 0; l < 3; ++l)
    for (int64_t p = 0; p < 16; ++p)
      for (int i = 0; i < 5; ++i) s.row(l, p)[i] = float(l * 1000 + p * 10 + i);
  for (int64_t l = 0; l < 3; ++l)
    for (int64_t p = 0; p < 16; ++p)
      for (int i = 0; i < 5; ++i) ASSERT_EQ(s.row(l, p)[i], float(l * 1000 + p * 10 + i));
}

// A BF16 pool: the same layout in half the bytes, walked by rows_bf16; fp32 access refused.
TEST(PagedCache, Bf16PoolHoldsHalfTheBytes) {
  runtime::PagedLatentCache pool(3, 5, 4, 4, false, model::LatentType::BF16);
  EXPECT_EQ(pool.bytes() * 2, runtime::PagedLatentCache(3, 5, 4, 4).bytes());
  EXPECT_EQ(runtime::PagedLatentCache::pages_for_bytes(3, 5, 4, 1000, model::LatentType::BF16), 8);
  runtime::PagedSequence s(pool);
  ASSERT_TRUE(s.reserve(16));
  for (int64_t l = 0; l < 3; ++l)
    for (int64_t p = 0; p < 16; ++p)
      for (int i = 0; i < 5; ++i) s.row_bf16(l, p)[i] = uint16_t(l * 1000 + p * 10 + i);
  std::vector<const uint16_t*> rows(16);
  for (int64_t l = 0; l < 3; ++l) {
    s.rows_bf16(l, 16, rows.data());
    for (int64_t p = 0; p < 16; ++p)
      for (int i = 0; i < 5; ++i) ASSERT_EQ(rows[size_t(p)][i], uint16_t(l * 1000 + p * 10 + i));
  }
  EXPECT_THROW(s.row(0, 0), Error);
}

TEST(PagedCache, FullPagesAreReusedByASharedPrefix) {
  runtime::PagedLatentCache pool(1, 2, 4, 8);
  const auto prompt = iota_tokens(10);
  {
    runtime::PagedSequence a(pool);
    ASSERT_TRUE(a.reserve(10));
    for (int64_t p = 0; p < 10; ++p) a.row(0, p)[0] = float(p);
    a.commit(prompt.data(), 10);
  }
  EXPECT_EQ(pool.pages_in_use(), 0);
  EXPECT_EQ(pool.pages_cached(), 2);  // the two full pages; the partial third was freed

  runtime::PagedSequence b(pool);
  auto longer = prompt;
  longer.push_back(99);
  EXPECT_EQ(b.attach_prefix(longer), 8);
  EXPECT_EQ(b.row(0, 7)[0], 7.0f);
  EXPECT_EQ(pool.reuse_hits(), 2u);

  // The last prompt token is always recomputed: a prompt of exactly 8 reuses one page.
  runtime::PagedSequence c(pool);
  EXPECT_EQ(c.attach_prefix(iota_tokens(8)), 4);
  // A different first page shares nothing, even if later tokens match.
  auto other = prompt;
  other[0] = 77;
  runtime::PagedSequence d(pool);
  EXPECT_EQ(d.attach_prefix(other), 0);
}

TEST(PagedCache, EvictsLeastRecentlyUsedTailsFirst) {
  runtime::PagedLatentCache pool(1, 1, 2, 3);
  const auto prompt = iota_tokens(6);
  {
    runtime::PagedSequence a(pool);
    ASSERT_TRUE(a.reserve(6));
    a.commit(prompt.data(), 6);
  }
  EXPECT_EQ(pool.pages_cached(), 3);
  runtime::PagedSequence b(pool);
  ASSERT_TRUE(b.reserve(2));  // evicts one cached page: the tail, not the prefix
  runtime::PagedSequence c(pool);
  EXPECT_EQ(c.attach_prefix(iota_tokens(7)), 4);
}

TEST(PagedCache, DuplicatePagesStayPrivate) {
  runtime::PagedLatentCache pool(1, 1, 2, 8);
  const auto t = iota_tokens(4);
  runtime::PagedSequence a(pool), b(pool);
  ASSERT_TRUE(a.reserve(4));
  ASSERT_TRUE(b.reserve(4));
  a.commit(t.data(), 4);
  b.commit(t.data(), 4);  // same prefix computed twice at once
  b.clear();
  EXPECT_EQ(pool.pages_cached(), 0);  // b's copies were not registered, so they are free
  a.clear();
  EXPECT_EQ(pool.pages_cached(), 2);
}

class BatchForwardTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BatchForwardTest, EachSequenceMatchesItsSoloRunBitForBit) {
  testutil::TempDir dir("batch");
  model::make_test_model(model::TestModelOptions{GetParam(), "fp8", 5, 1, dir.str(), false});
  const model::Model m = model::Model::load(dir.str());
  const int64_t V = m.config().vocab_size;
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 5, 9, 200, 3, 7, 7, 12, 40}, {2, 8}, {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3}, {11}};
  model::ForwardOptions fo;
  fo.attention = model::AttentionForm::Absorbed;
  model::Workspace ws(testutil::pool());

  // Alone: a contiguous cache, prompt then 3 greedy-free fixed decode tokens.
  std::vector<std::vector<float>> solo;
  for (const auto& p : prompts) {
    model::KvCache c = m.new_cache(64);
    std::vector<float> l(static_cast<size_t>(V));
    model::ForwardOptions last = fo;
    last.last_only = true;
    m.forward(ws, p.data(), int64_t(p.size()), c, l.data(), last);
    solo.push_back(l);
    for (int32_t tok : {4, 6, 8}) {
      m.forward(ws, &tok, 1, c, l.data(), fo);
      solo.push_back(l);
    }
  }
  // Together: paged (page 4, so sequences straddle pages), prompts split in uneven chunks
  // and mixed with other sequences' decode steps.
  runtime::PagedLatentCache pool(m.config().num_hidden_layers, m.config().latent_dim(), 4, 64);
  std::vector<std::unique_ptr<runtime::PagedSequence>> seqs;
  for (size_t i = 0; i < prompts.size(); ++i) seqs.push_back(std::make_unique<runtime::PagedSequence>(pool));
  std::vector<std::vector<float>> got(prompts.size() * 4);
  std::vector<size_t> fed(prompts.size(), 0), steps(prompts.size(), 0);
  const int32_t dec[3] = {4, 6, 8};
  for (int round = 0; round < 20; ++round) {
    std::vector<model::BatchSeq> batch;
    std::vector<size_t> who;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (steps[i] == 4) continue;
      runtime::PagedSequence& s = *seqs[i];
      model::BatchSeq b;
      b.start = s.size();
      b.cache = &s;
      if (fed[i] < prompts[i].size()) {
        const size_t n = std::min<size_t>(prompts[i].size() - fed[i], size_t(1 + (round + i) % 5));
        b.tokens = prompts[i].data() + fed[i];
        b.T = int64_t(n);
        b.want_logits = fed[i] + n == prompts[i].size();
      } else {
        b.tokens = &dec[steps[i] - 1];
        b.T = 1;
        b.want_logits = true;
      }
      ASSERT_TRUE(s.reserve(b.start + b.T));
      batch.push_back(b);
      who.push_back(i);
    }
    if (batch.empty()) break;
    std::vector<float> logits(static_cast<size_t>(V) * batch.size());
    m.forward_batch(ws, batch, logits.data(), fo);
    size_t k = 0;
    for (size_t j = 0; j < batch.size(); ++j) {
      const size_t i = who[j];
      seqs[i]->commit(batch[j].tokens, batch[j].T);
      if (fed[i] < prompts[i].size()) fed[i] += size_t(batch[j].T);
      if (batch[j].want_logits) {
        got[i * 4 + steps[i]].assign(logits.begin() + long(k * V), logits.begin() + long((k + 1) * V));
        ++steps[i];
        ++k;
      }
    }
  }
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), solo[i].size()) << i;
    EXPECT_EQ(0, std::memcmp(got[i].data(), solo[i].data(), got[i].size() * sizeof(float))) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, BatchForwardTest, ::testing::Values("tiny", "tiny-noq"));

}  // namespace
}  // namespace dsv3
