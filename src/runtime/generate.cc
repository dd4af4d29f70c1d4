#include "runtime/generate.h"

#include <chrono>

#include "base/error.h"

namespace dsv3::runtime {

EngineOptions single_sequence_options(int64_t ctx_size) {
  EngineOptions o;
  o.max_seqs = 1;
  o.ctx_size = ctx_size;
  o.page_tokens = 1;
  o.step_tokens = ctx_size;
  o.attention = model::AttentionForm::Auto;
  o.own_thread = false;
  return o;
}

GenerateResult generate(Engine& engine, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                        const std::function<void(const std::string&)>& on_text, const std::atomic<bool>* cancel) {
  GenRequest req;
  req.prompt = prompt;
  req.sampling = opts.sampling;
  req.max_tokens = opts.max_tokens;
  req.stop = opts.stop;
  req.ignore_eos = opts.ignore_eos;
  const std::shared_ptr<Stream> stream = engine.submit(std::move(req));

  GenerateResult r;
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    if (on_text) on_text(s);
  };
  // An engine without a thread of its own is stepped here; one with a thread is waited on.
  const bool drive = !engine.options().own_thread;
  for (;;) {
    if (cancel && cancel->load() && !stream->cancelled()) stream->cancel();
    if (drive) engine.run_step();
    TokenEvent ev;
    if (stream->next(ev, std::chrono::milliseconds(drive ? 0 : 50))) {
      r.tokens.push_back(ev.token);
      emit(ev.text);
      continue;
    }
    if (const std::optional<FinishInfo> f = stream->finished()) {
      if (f->reason == FinishReason::Error) fail(f->error);
      emit(f->tail);
      r.finish_reason = f->reason;
      r.prompt_tokens = f->prompt_tokens;
      r.reused_tokens = f->cached_tokens;
      r.completion_tokens = f->completion_tokens;
      r.drafts = f->drafts;
      // No token: the whole run after admission was prefill.
      const double first = f->completion_tokens > 0 ? f->first_token_seconds : f->total_seconds;
      r.prefill_seconds = first - f->queue_seconds;
      r.decode_seconds = f->total_seconds - first;
      return r;
    }
  }
}

}  // namespace dsv3::runtime
