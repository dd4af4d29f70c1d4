#include "server/metrics.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <tuple>

namespace dsv3::server {
namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// HELP texts of the counters and histograms this server keeps.
const std::map<std::string, std::string>& help() {
  static const std::map<std::string, std::string> h = {
      {"dsv3_prompt_tokens_total", "Prompt tokens of admitted sequences."},
      {"dsv3_cached_prompt_tokens_total", "Prompt tokens served from the prefix cache instead of computed."},
      {"dsv3_generation_tokens_total", "Tokens generated."},
      {"dsv3_sequences_finished_total", "Sequences (choices) finished."},
      {"dsv3_draft_steps_total", "Speculative decoding: verify steps that checked MTP drafts."},
      {"dsv3_draft_tokens_total", "Speculative decoding: tokens drafted by the MTP module."},
      {"dsv3_draft_accepted_tokens_total", "Speculative decoding: drafted tokens the main model accepted."},
      {"dsv3_draft_first_tokens_total", "Speculative decoding: first drafts (one per verify step)."},
      {"dsv3_draft_first_accepted_total", "Speculative decoding: first drafts accepted (their ratio is the acceptance rate)."},
      {"dsv3_time_to_first_token_seconds", "From request arrival to its first generated token."},
      {"dsv3_request_duration_seconds", "From request arrival to its last generated token."},
      {"dsv3_queue_seconds", "Time sequences waited for admission."},
      {"dsv3_batch_size", "Sequences per engine step."},
      {"dsv3_step_tokens", "Tokens (decode plus prompt chunks) per engine step."},
      {"dsv3_step_seconds", "Duration of one engine step."},
  };
  return h;
}

}  // namespace

void Histogram::observe(double v) {
  std::lock_guard lk(mu_);
  const size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  std::lock_guard lk(mu_);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + num(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics() {
  const std::vector<double> latency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  histograms_["dsv3_time_to_first_token_seconds"] = std::make_unique<Histogram>(latency);
  histograms_["dsv3_request_duration_seconds"] = std::make_unique<Histogram>(latency);
  histograms_["dsv3_queue_seconds"] = std::make_unique<Histogram>(latency);
  histograms_["dsv3_step_seconds"] = std::make_unique<Histogram>(latency);
  histograms_["dsv3_batch_size"] = std::make_unique<Histogram>(std::vector<double>{1, 2, 4, 8, 16, 32, 64});
  histograms_["dsv3_step_tokens"] =
      std::make_unique<Histogram>(std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048});
  for (const auto& [name, text] : help())
    if (!histograms_.count(name)) counters_[name] = 0;
}

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard lk(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::add(const std::string& counter, uint64_t n) {
  std::lock_guard lk(mu_);
  counters_[counter] += n;
}

Histogram& Metrics::histogram(const std::string& name) {
  std::lock_guard lk(mu_);
  auto& h = histograms_[name];
  if (!h) h = std::make_unique<Histogram>(std::vector<double>{1, 10, 100});
  return *h;
}

void Metrics::gauge(const std::string& name, const std::string& help_text, std::function<double()> read,
                    bool monotonic) {
  std::lock_guard lk(mu_);
  gauges_.emplace_back(name, help_text, std::move(read), monotonic);
}

std::string Metrics::render() const {
  std::lock_guard lk(mu_);
  std::string out;
  out += "# HELP dsv3_requests_total HTTP requests by endpoint and status code.\n";
  out += "# TYPE dsv3_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += "dsv3_requests_total{endpoint=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  for (const auto& [name, n] : counters_) {
    auto h = help().find(name);
    out += "# HELP " + name + " " + (h == help().end() ? name : h->second) + "\n";
    out += "# TYPE " + name + " counter\n" + name + " " + std::to_string(n) + "\n";
  }
  for (const auto& [name, text, read, monotonic] : gauges_) {
    out += "# HELP " + name + " " + text + "\n# TYPE " + name + (monotonic ? " counter\n" : " gauge\n");
    out += name + " " + num(read()) + "\n";
  }
  for (const auto& [name, h] : histograms_) {
    auto t = help().find(name);
    out += "# HELP " + name + " " + (t == help().end() ? name : t->second) + "\n";
    out += "# TYPE " + name + " histogram\n";
    h->render(name, out);
  }
  return out;
}

}  // namespace dsv3::server
