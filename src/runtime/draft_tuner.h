// When speculative decoding pays: `--draft auto` measures, per batch size, what a plain
// decode step costs, what a verify step with drafts plus the drafting costs, and how many
// tokens a verify step yields per sequence, and drafts only while that is faster. A forced
// `--draft N` always drafts. The engine asks before it drafts and reports every decode step.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace dsv3::runtime {

class DraftTuner {
 public:
  enum class Choice {
    Draft,    // draft for the next step
    Measure,  // not this time: a plain step is still to be timed (drafting sequences stay on)
    Off,      // measured slower: drafting sequences stop drafting for good
  };

  explicit DraftTuner(bool automatic) : auto_(automatic) {}

  //! What the sequences decoding next step (n of them) should do.
  Choice choose(int64_t n) const;
  //! Whether a sequence admitted now, with n others decoding, should keep MTP rows and draft.
  bool worth_starting(int64_t n) const { return !auto_ || choose(n + 1) != Choice::Off; }

  //! A decode step of n sequences and no prompt rows: whether every sequence verified drafts,
  //! the step's seconds (with the drafting it did for the next step) and the tokens it yielded
  //! per sequence.
  void record(int64_t n, bool verified_drafts, double seconds, double tokens_per_seq);

  //! Tokens per second per sequence each way, as measured for n sequences (0: not yet).
  double plain_rate(int64_t n) const;
  double draft_rate(int64_t n) const;

  static constexpr int kPlainSamples = 3, kDraftSamples = 5;
  //! After this many plain steps, a batch size where drafting did not pay is tried again
  //! (by sequences that start then): acceptance depends on the text.
  static constexpr int kRetryAfter = 1024;

 private:
  // The median of the latest samples: step times on a busy machine have outliers (the first
  // decode step after a prompt takes twice as long), which a mean would carry along.
  struct Window {
    std::array<double, 9> v{};
    int count = 0;
    void add(double x) { v[size_t(count++ % int(v.size()))] = x; }
    double median() const;
  };
  struct Bucket {
    Window plain, draft, tokens;  // plain step seconds; verify + drafting seconds; tokens per step
    int plain_since_draft = 0;
  };
  static size_t bucket(int64_t n);

  bool auto_;
  std::array<Bucket, 6> buckets_{};  // 1, 2, 3-4, 5-8, 9-16, more sequences
};

}  // namespace dsv3::runtime
