#include "runtime/draft_tuner.h"

#include <algorithm>

namespace dsv3::runtime {

double DraftTuner::Window::median() const {
  const int n = std::min(count, int(v.size()));
  if (n == 0) return 0;
  std::array<double, 9> s = v;
  std::sort(s.begin(), s.begin() + n);
  return n % 2 ? s[size_t(n / 2)] : 0.5 * (s[size_t(n / 2 - 1)] + s[size_t(n / 2)]);
}

size_t DraftTuner::bucket(int64_t n) {
  size_t b = 0;
  for (int64_t cap = 1; b + 1 < 6 && n > cap; cap *= 2) ++b;
  return b;
}

DraftTuner::Choice DraftTuner::choose(int64_t n) const {
  if (!auto_) return Choice::Draft;
  const Bucket& b = buckets_[bucket(n)];
  if (b.plain.count < kPlainSamples) return Choice::Measure;
  if (b.draft.count < kDraftSamples || b.plain_since_draft >= kRetryAfter) return Choice::Draft;
  return draft_rate(n) >= plain_rate(n) ? Choice::Draft : Choice::Off;
}

void DraftTuner::record(int64_t n, bool verified_drafts, double seconds, double tokens_per_seq) {
  Bucket& b = buckets_[bucket(n)];
  if (!verified_drafts) {
    b.plain.add(seconds);
    ++b.plain_since_draft;
    return;
  }
  if (b.plain_since_draft >= kRetryAfter) b.draft = b.tokens = Window{};  // measure afresh
  b.plain_since_draft = 0;
  b.draft.add(seconds);
  b.tokens.add(tokens_per_seq);
}

double DraftTuner::plain_rate(int64_t n) const {
  const double s = buckets_[bucket(n)].plain.median();
  return s > 0 ? 1.0 / s : 0;
}

double DraftTuner::draft_rate(int64_t n) const {
  const Bucket& b = buckets_[bucket(n)];
  const double s = b.draft.median();
  // Tokens per step: the mean over the window (acceptance is a rate, not noise).
  double tokens = 0;
  const int n_tok = std::min(b.tokens.count, int(b.tokens.v.size()));
  for (int i = 0; i < n_tok; ++i) tokens += b.tokens.v[size_t(i)];
  return s > 0 && n_tok > 0 ? tokens / n_tok / s : 0;
}

}  // namespace dsv3::runtime
