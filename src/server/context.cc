#include "server/context.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <random>

#include "api/errors.h"
#include "base/error.h"

namespace dsv3::server {

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string random_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}() ^ (counter++ * 0x9e3779b97f4a7c15ull));
  static const char* digits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 62];
  return id;
}

ServeContext::ServeContext(const model::Model& m, const Tokenizer& t, runtime::Engine& e, ServerOptions o)
    : model(m), tok(t), engine(e), opts(std::move(o)), created(std::time(nullptr)) {
  if (!tok.chat_template().empty())
    chat = std::make_unique<api::ChatPromptBuilder>(tok.chat_template(), tok.bos_token(), tok.eos_token());
}

api::RequestLimits ServeContext::limits() const {
  api::RequestLimits l;
  l.max_n = opts.max_n;
  l.vocab_size = int32_t(model.config().vocab_size);
  return l;
}

void ServeContext::check_model(const std::string& name) const {
  if (!name.empty() && name != opts.model_name)
    throw api::ApiError(404, "The model '" + name + "' does not exist; this server serves '" + opts.model_name + "'.",
                        "invalid_request_error", "model", "model_not_found");
}

void ServeContext::check_fits(size_t n, const char* param, const char* what) const {
  if (int64_t(n) <= engine.max_prompt_tokens()) return;
  throw api::ApiError(400,
                      "This model's maximum context length is " + std::to_string(engine.options().ctx_size) +
                          " tokens; " + what + " " + std::to_string(n) +
                          " tokens (one more is needed for the answer).",
                      "invalid_request_error", param, "context_length_exceeded");
}

int64_t ServeContext::answer_tokens(size_t n, std::optional<int64_t> requested) const {
  const int64_t room = engine.options().ctx_size - int64_t(n);
  return std::min(requested.value_or(room), room);
}

runtime::GenRequest ServeContext::sequence(const api::CommonRequest& r, std::vector<int32_t> prompt, int64_t max_tokens,
                                           size_t choice) const {
  runtime::GenRequest g;
  g.prompt = std::move(prompt);
  g.sampling = r.sampling;
  if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + uint64_t(choice);
  g.max_tokens = max_tokens;
  g.stop = r.stop;
  g.ignore_eos = r.ignore_eos;
  g.draft = r.speculative;
  return g;
}

std::vector<std::shared_ptr<runtime::Stream>> ServeContext::submit_all(std::vector<runtime::GenRequest>& gens) {
  std::vector<std::shared_ptr<runtime::Stream>> out;
  try {
    for (auto& g : gens) out.push_back(engine.submit(std::move(g)));
  } catch (const Error& e) {
    for (auto& s : out) s->cancel();
    throw api::ApiError(400, e.what(), "invalid_request_error", "max_tokens");
  }
  return out;
}

void ServeContext::record(const runtime::FinishInfo& f) {
  metrics.add("dsv3_prompt_tokens_total", uint64_t(f.prompt_tokens));
  metrics.add("dsv3_cached_prompt_tokens_total", uint64_t(f.cached_tokens));
  metrics.add("dsv3_generation_tokens_total", uint64_t(f.completion_tokens));
  metrics.add("dsv3_sequences_finished_total", 1);
  metrics.add("dsv3_draft_steps_total", uint64_t(f.drafts.steps));
  metrics.add("dsv3_draft_tokens_total", uint64_t(f.drafts.drafted_total()));
  metrics.add("dsv3_draft_accepted_tokens_total", uint64_t(f.drafts.accepted_total()));
  if (!f.drafts.drafted.empty()) {
    metrics.add("dsv3_draft_first_tokens_total", uint64_t(f.drafts.drafted[0]));
    metrics.add("dsv3_draft_first_accepted_total", uint64_t(f.drafts.accepted[0]));
  }
  metrics.histogram("dsv3_queue_seconds").observe(f.queue_seconds);
  if (f.completion_tokens > 0) metrics.histogram("dsv3_time_to_first_token_seconds").observe(f.first_token_seconds);
  metrics.histogram("dsv3_request_duration_seconds").observe(f.total_seconds);
}

std::shared_ptr<const TokenVocab> ServeContext::vocab() {
  std::call_once(vocab_once_, [this] { vocab_ = std::make_shared<const TokenVocab>(tok); });
  return vocab_;
}

std::vector<int32_t> ServeContext::eos_ids() const {
  std::vector<int32_t> eos;
  if (tok.eos_id() >= 0) eos.push_back(tok.eos_id());
  for (int64_t e : model.config().eos_token_ids)
    if (std::find(eos.begin(), eos.end(), int32_t(e)) == eos.end()) eos.push_back(int32_t(e));
  return eos;
}

}  // namespace dsv3::server
