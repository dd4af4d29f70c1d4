#include "sampling/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/error.h"

namespace dsv3 {

void SamplingParams::validate(int32_t vocab) const {
  if (!(temperature >= 0.0f) || temperature > 100.0f) fail("temperature must be in [0, 100], got ", temperature);
  if (top_k < 0) fail("top_k must be >= 0, got ", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("top_p must be in (0, 1], got ", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail("min_p must be in [0, 1], got ", min_p);
  if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty))
    fail("repetition_penalty must be > 0, got ", repetition_penalty);
  if (!(std::fabs(presence_penalty) <= 2.0f)) fail("presence_penalty must be in [-2, 2], got ", presence_penalty);
  if (!(std::fabs(frequency_penalty) <= 2.0f)) fail("frequency_penalty must be in [-2, 2], got ", frequency_penalty);
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab) fail("logit_bias token ", id, " is outside the vocabulary [0, ", vocab, ")");
    if (!(std::fabs(bias) <= 100.0f)) fail("logit_bias for token ", id, " must be in [-100, 100], got ", bias);
  }
}

void log_softmax(const float* logits, int32_t vocab, std::vector<float>& out) {
  out.resize(size_t(vocab));
  float mx = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double z = 0;
  for (int32_t i = 0; i < vocab; ++i) z += std::exp(double(logits[i] - mx));
  const float lz = float(std::log(z)) + mx;
  for (int32_t i = 0; i < vocab; ++i) out[size_t(i)] = logits[i] - lz;
}

Sampler::Sampler(const SamplingParams& params, int32_t vocab)
    : p_(params),
      vocab_(vocab),
      rng_(params.seed ? *params.seed : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count())),
      prompt_counts_(size_t(vocab), 0),
      output_counts_(size_t(vocab), 0) {
  p_.validate(vocab);
}

void Sampler::set_prompt(const std::vector<int32_t>& prompt) {
  std::fill(prompt_counts_.begin(), prompt_counts_.end(), 0);
  for (int32_t t : prompt)
    if (t >= 0 && t < vocab_) ++prompt_counts_[size_t(t)];
}

void Sampler::accept(int32_t token) {
  if (token >= 0 && token < vocab_) ++output_counts_[size_t(token)];
}

void Sampler::apply_penalties(float* logits) const {
  for (const auto& [id, bias] : p_.logit_bias) logits[id] += bias;
  const bool rep = p_.repetition_penalty != 1.0f;
  const bool pres = p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f;
  if (!rep && !pres) return;
  for (int32_t i = 0; i < vocab_; ++i) {
    const int32_t out = output_counts_[size_t(i)];
    if (rep && (out || prompt_counts_[size_t(i)]))
      logits[i] = logits[i] > 0 ? logits[i] / p_.repetition_penalty : logits[i] * p_.repetition_penalty;
    if (pres && out) logits[i] -= p_.frequency_penalty * float(out) + p_.presence_penalty;
  }
}

int32_t Sampler::sample(float* logits) {
  apply_penalties(logits);
  if (want_logprobs_) log_softmax(logits, vocab_, logprobs_);

  if (p_.temperature == 0.0f || p_.top_k == 1) {
    int32_t best = 0;
    for (int32_t i = 1; i < vocab_; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  // Candidates sorted by logit (ties: lower id first, so the order is fully determined).
  order_.resize(size_t(vocab_));
  std::iota(order_.begin(), order_.end(), 0);
  const int32_t k = p_.top_k > 0 ? std::min(p_.top_k, vocab_) : vocab_;
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (k < vocab_) {
    std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), by_logit);
  } else {
    std::sort(order_.begin(), order_.end(), by_logit);
  }
  std::vector<double> probs(static_cast<size_t>(k));
  const double t = p_.temperature, top = double(logits[order_[0]]);
  double sum = 0;
  for (int32_t i = 0; i < k; ++i) sum += (probs[size_t(i)] = std::exp((double(logits[order_[size_t(i)]]) - top) / t));
  int32_t n = k;
  if (p_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
    double acc = 0;
    for (int32_t i = 0; i < n; ++i) {
      acc += probs[size_t(i)] / sum;
      if (acc >= double(p_.top_p)) {
        n = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.0f) {  // relative to the most likely token (probs[0] is its unnormalized 1)
    int32_t m = 1;
    while (m < n && probs[size_t(m)] >= double(p_.min_p) * probs[0]) ++m;
    n = m;
  }
  double mass = 0;
  for (int32_t i = 0; i < n; ++i) mass += probs[size_t(i)];
  const double u = double(rng_.next() >> 11) * (1.0 / 9007199254740992.0) * mass;
  double acc = 0;
  for (int32_t i = 0; i < n; ++i) {
    acc += probs[size_t(i)];
    if (u < acc) return order_[size_t(i)];
  }
  return order_[size_t(n - 1)];
}

}  // namespace dsv3
