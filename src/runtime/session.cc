#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "base/error.h"
#include "sampling/stop.h"

namespace dsv3::runtime {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Session::Session(const model::Model& model, const Tokenizer& tokenizer, int64_t ctx_size)
    : model_(model), tok_(tokenizer), cache_(model.new_cache(ctx_size)) {
  if (tokenizer.vocab_size() > model.config().vocab_size)
    fail("the tokenizer has ", tokenizer.vocab_size(), " tokens but the model only ", model.config().vocab_size,
         " embedding rows; they do not belong together");
  for (int32_t id = 0; id < int32_t(model.config().vocab_size); ++id)
    if (!tokenizer.is_valid_id(id)) no_token_.push_back(id);
}

void Session::reset() {
  cache_.clear();
  cached_.clear();
}

bool Session::is_eos(int32_t id) const {
  if (id == tok_.eos_id()) return true;
  const auto& e = model_.config().eos_token_ids;
  return std::find(e.begin(), e.end(), int64_t(id)) != e.end();
}

GenerateResult Session::generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                                 const std::function<void(const std::string&)>& on_text,
                                 const std::atomic<bool>* cancel) {
  if (prompt.empty()) fail("the prompt is empty");
  if (int64_t(prompt.size()) >= cache_.capacity())
    fail("the prompt has ", prompt.size(), " tokens but the context holds ", cache_.capacity(),
         " (raise --ctx-size)");
  if (opts.max_tokens < 0) fail("max tokens must be >= 0");
  GenerateResult r;
  r.prompt_tokens = int64_t(prompt.size());
  const int32_t V = int32_t(model_.config().vocab_size);
  Sampler sampler(opts.sampling, V);
  sampler.set_prompt(prompt);

  // Reuse the cached prefix; at least the last prompt token is recomputed for its logits.
  size_t common = 0;
  while (common < cached_.size() && common + 1 < prompt.size() && cached_[common] == prompt[common]) ++common;
  cache_.set_size(int64_t(common));
  cached_.resize(common);
  r.reused_tokens = int64_t(common);

  std::vector<float> logits(static_cast<size_t>(V));
  auto t0 = std::chrono::steady_clock::now();
  model_.forward(prompt.data() + common, int64_t(prompt.size() - common), cache_, logits.data(), nullptr, {},
                 /*last_only=*/true);
  cached_.insert(cached_.end(), prompt.begin() + long(common), prompt.end());
  r.prefill_seconds = seconds_since(t0);

  StreamDecoder detok(tok_, /*skip_special=*/true);
  StopMatcher stops(opts.stop);
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };
  t0 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  for (int64_t n = 0; n < opts.max_tokens; ++n) {
    if (cancel && cancel->load()) {
      r.finish_reason = "cancelled";
      break;
    }
    // Padding rows of the embedding are not tokens: never sample them.
    for (int32_t id : no_token_) logits[size_t(id)] = -std::numeric_limits<float>::infinity();
    const int32_t next = sampler.sample(logits.data());
    sampler.accept(next);
    r.tokens.push_back(next);
    if (!opts.ignore_eos && is_eos(next)) {
      r.finish_reason = "stop";
      break;
    }
    emit(stops.push(detok.push(next)));
    if (stops.stopped()) {
      r.finish_reason = "stop";
      break;
    }
    if (n + 1 == opts.max_tokens) break;
    if (cache_.size() + 1 > cache_.capacity()) break;  // context full: finish as "length"
    model_.forward(&next, 1, cache_, logits.data());
    cached_.push_back(next);
  }
  if (!stops.stopped()) emit(stops.push(detok.flush()) + stops.flush());
  r.decode_seconds = seconds_since(t0);
  return r;
}

}  // namespace dsv3::runtime
