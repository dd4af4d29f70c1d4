#include "runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "sampling/stop.h"

namespace dsv3::runtime {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "?";
}

bool Stream::next(TokenEvent& ev, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (!cv_.wait_for(lk, timeout, [&] { return !events_.empty() || done_.has_value(); })) return false;
  if (events_.empty()) return false;
  ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

std::optional<FinishInfo> Stream::finished() {
  std::lock_guard lk(mu_);
  if (!events_.empty()) return std::nullopt;
  return done_;
}

void Stream::push(TokenEvent ev) {
  {
    std::lock_guard lk(mu_);
    events_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

void Stream::finish(FinishInfo info) {
  {
    std::lock_guard lk(mu_);
    done_ = std::move(info);
  }
  cv_.notify_all();
}

struct Engine::Seq {
  Seq(GenRequest r, PagedLatentCache& pool) : req(std::move(r)), cache(pool) {}
  GenRequest req;
  std::shared_ptr<Stream> stream = std::make_shared<Stream>();
  PagedSequence cache;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamDecoder> detok;
  std::unique_ptr<StopMatcher> stops;
  std::vector<int32_t> tokens;  // prompt, then every generated token still to be fed
  int64_t generated = 0, cached = 0, limit = 0;  // limit: tokens the sequence may hold
  int64_t claim = 0;            // pages it may still allocate (counted in reserved_pages_)
  size_t forced_next = 0;
  bool done = false;
  Clock::time_point queued = Clock::now(), admitted, first_token;
};

Engine::Engine(const model::Model& model, const Tokenizer& tokenizer, ThreadPool& pool, EngineOptions opts,
               StepObserver observer)
    : model_(model), tok_(tokenizer), ws_(pool), opts_(opts), observer_(std::move(observer)) {
  const model::ModelConfig& c = model.config();
  if (opts_.max_seqs < 1) fail("--max-seqs must be at least 1");
  if (opts_.ctx_size < 2) fail("--ctx-size must be at least 2");
  if (opts_.page_tokens < 1) fail("the page size must be at least 1 token");
  if (opts_.step_tokens < 1) fail("the step token budget must be at least 1");
  ws_.kernels.set_numerics(opts_.numerics);
  if (tokenizer.vocab_size() > c.vocab_size)
    fail("the tokenizer has ", tokenizer.vocab_size(), " tokens but the model only ", c.vocab_size,
         " embedding rows; they do not belong together");
  const uint64_t page_bytes = PagedLatentCache::page_bytes(c.num_hidden_layers, c.latent_dim(), opts_.page_tokens);
  int64_t pages;
  if (opts_.cache_bytes == 0) {
    pages = opts_.max_seqs * ((opts_.ctx_size + opts_.page_tokens - 1) / opts_.page_tokens);
  } else {
    if (opts_.cache_bytes < page_bytes)
      fail("--cache-mem ", opts_.cache_bytes, " bytes is less than one cache page (", page_bytes, " bytes: ",
           opts_.page_tokens, " tokens x ", c.num_hidden_layers, " layers x ", c.latent_dim(), " floats)");
    pages = PagedLatentCache::pages_for_bytes(c.num_hidden_layers, c.latent_dim(), opts_.page_tokens,
                                              opts_.cache_bytes);
  }
  pool_ = std::make_unique<PagedLatentCache>(c.num_hidden_layers, c.latent_dim(), opts_.page_tokens, pages);
  for (int32_t id = 0; id < int32_t(c.vocab_size); ++id)
    if (!tokenizer.is_valid_id(id)) no_token_.push_back(id);
  stats_.pages_total = pages;
  stats_.page_bytes = page_bytes;
  stats_.cache_bytes = pool_->bytes();
  if (opts_.own_thread) thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& s : active_) finish(*s, FinishReason::Cancelled);
  for (auto& s : queue_) {
    FinishInfo f;
    f.reason = FinishReason::Cancelled;
    s->stream->finish(f);
  }
}

int64_t Engine::pages_needed(const Seq& s) const {
  return (s.limit + opts_.page_tokens - 1) / opts_.page_tokens;
}

std::shared_ptr<Stream> Engine::submit(GenRequest req) {
  const int64_t n = int64_t(req.prompt.size());
  if (n == 0) fail("the prompt is empty");
  if (n > max_prompt_tokens())
    fail("the prompt has ", n, " tokens but the context holds ", opts_.ctx_size, " (prompt + at least one new token)");
  if (req.max_tokens < 0) fail("max tokens must be >= 0");
  for (int32_t t : req.prompt)
    if (t < 0 || t >= model_.config().vocab_size)
      fail("token id ", t, " is outside the vocabulary [0, ", model_.config().vocab_size, ")");
  auto s = std::make_unique<Seq>(std::move(req), *pool_);
  s->limit = std::min<int64_t>(n + std::max<int64_t>(s->req.max_tokens, 1), opts_.ctx_size);
  if (pages_needed(*s) > pool_->total_pages())
    fail("the request needs ", s->limit, " tokens of cache but --cache-mem holds only ",
         pool_->total_pages() * opts_.page_tokens);
  s->sampler = std::make_unique<Sampler>(s->req.sampling, int32_t(model_.config().vocab_size));
  s->sampler->set_prompt(s->req.prompt);
  s->detok = std::make_unique<StreamDecoder>(tok_, s->req.skip_special);
  s->stops = std::make_unique<StopMatcher>(s->req.stop);
  s->tokens = s->req.prompt;
  auto stream = s->stream;
  {
    std::lock_guard lk(mu_);
    queue_.push_back(std::move(s));
    stats_.queued = int64_t(queue_.size());
  }
  cv_.notify_all();
  return stream;
}

void Engine::set_step_observer(StepObserver observer) {
  std::lock_guard lk(mu_);
  observer_ = std::move(observer);
}

EngineStats Engine::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

bool Engine::is_eos(int32_t id) const {
  if (id == tok_.eos_id()) return true;
  const auto& e = model_.config().eos_token_ids;
  return std::find(e.begin(), e.end(), int64_t(id)) != e.end();
}

bool Engine::run_step() {
  DSV3_CHECK(!opts_.own_thread, "run_step() on an engine that runs its own thread");
  {
    std::lock_guard lk(mu_);
    if (queue_.empty() && active_.empty()) return false;
  }
  admit();
  step();
  return true;
}

void Engine::loop() {
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || !active_.empty(); });
      if (stop_) return;
    }
    admit();
    step();
  }
}

void Engine::admit() {
  std::lock_guard lk(mu_);
  while (!queue_.empty()) {
    Seq& s = *queue_.front();
    if (s.stream->cancelled()) {
      FinishInfo f;
      f.reason = FinishReason::Cancelled;
      f.prompt_tokens = int64_t(s.req.prompt.size());
      f.queue_seconds = seconds_between(s.queued, Clock::now());
      s.stream->finish(f);
      queue_.pop_front();
      continue;
    }
    if (int64_t(active_.size()) >= opts_.max_seqs) break;
    // Attach cached prefix pages first: they lower what the sequence must allocate. Admit
    // only if every admitted sequence can still grow to its limit (no preemption needed).
    s.cached = s.cache.attach_prefix(s.req.prompt);
    const int64_t need = pages_needed(s) - s.cache.pages();
    if (pool_->pages_available() - reserved_pages_ < need) {
      s.cache.clear();
      s.cached = 0;
      break;  // first come, first served: later requests wait too
    }
    s.claim = need;
    reserved_pages_ += need;
    s.admitted = Clock::now();
    stats_.prompt_tokens += s.req.prompt.size();
    stats_.cached_prompt_tokens += uint64_t(s.cached);
    active_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  stats_.queued = int64_t(queue_.size());
  stats_.active = int64_t(active_.size());
}

void Engine::finish(Seq& s, FinishReason reason, const std::string& error) {
  FinishInfo f;
  f.reason = reason;
  f.error = error;
  if (reason != FinishReason::Error && !s.stops->stopped()) {
    try {
      f.tail = s.stops->push(s.detok->flush()) + s.stops->flush();
    } catch (const std::exception&) {
    }
  }
  const auto now = Clock::now();
  f.prompt_tokens = int64_t(s.req.prompt.size());
  f.completion_tokens = s.generated;
  f.cached_tokens = s.cached;
  f.queue_seconds = seconds_between(s.queued, s.admitted.time_since_epoch().count() ? s.admitted : now);
  f.first_token_seconds = s.generated ? seconds_between(s.queued, s.first_token) : 0;
  f.total_seconds = seconds_between(s.queued, now);
  s.cache.clear();
  reserved_pages_ -= s.claim;
  s.claim = 0;
  s.done = true;
  s.stream->finish(std::move(f));
}

void Engine::sample(Seq& s, float* logits) {
  const float kNegInf = -std::numeric_limits<float>::infinity();
  for (int32_t id : no_token_) logits[size_t(id)] = kNegInf;
  if (s.req.constraint) s.req.constraint->mask(logits);
  const int64_t V = model_.config().vocab_size;
  if (s.req.constraint && std::all_of(logits, logits + V, [&](float v) { return v == kNegInf; })) {
    finish(s, FinishReason::Stop);  // nothing may follow (a constraint is complete)
    return;
  }
  int32_t token = s.sampler->sample(logits);
  if (s.forced_next < s.req.forced.size()) token = s.req.forced[s.forced_next++];
  s.sampler->accept(token);
  if (s.req.constraint) s.req.constraint->accept(token);
  if (s.generated++ == 0) s.first_token = Clock::now();
  {
    std::lock_guard lk(mu_);
    ++stats_.generated_tokens;
  }
  if (!s.req.ignore_eos && is_eos(token) && s.forced_next >= s.req.forced.size()) {
    finish(s, FinishReason::Stop);
    return;
  }
  TokenEvent ev;
  ev.token = token;
  if (s.req.top_logprobs >= 0) {
    const std::vector<float>& lp = s.sampler->last_logprobs();
    ev.logprob = lp[size_t(token)];
    const int64_t k = std::min<int64_t>(s.req.top_logprobs, V);
    std::vector<int32_t> ids(static_cast<size_t>(V));
    for (int32_t i = 0; i < int32_t(V); ++i) ids[size_t(i)] = i;
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
      return lp[size_t(a)] != lp[size_t(b)] ? lp[size_t(a)] > lp[size_t(b)] : a < b;
    });
    for (int64_t i = 0; i < k; ++i) ev.top.push_back({ids[size_t(i)], lp[size_t(ids[size_t(i)])]});
  }
  ev.text = s.stops->push(s.detok->push(token));
  const bool stopped = s.stops->stopped();
  s.stream->push(std::move(ev));
  if (stopped) {
    finish(s, FinishReason::Stop);
  } else if (s.generated >= s.req.max_tokens || s.cache.size() + 1 > s.limit) {
    finish(s, FinishReason::Length);
  } else {
    s.tokens.push_back(token);
  }
}

void Engine::step() {
  // Leave at once: cancelled sequences and ones that were asked for no tokens at all.
  for (auto& s : active_) {
    if (s->stream->cancelled()) {
      finish(*s, FinishReason::Cancelled);
    } else if (s->req.max_tokens == 0) {
      finish(*s, FinishReason::Length);
    }
  }
  std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->done; });
  if (active_.empty()) {
    std::lock_guard lk(mu_);
    stats_.active = 0;
    stats_.pages_in_use = pool_->pages_in_use();
    stats_.pages_cached = pool_->pages_cached();
    return;
  }

  // Decoding sequences first (one token each), then prompt chunks under the budget.
  std::vector<model::BatchSeq> batch;
  std::vector<Seq*> who;
  int64_t budget = opts_.step_tokens;
  auto add = [&](Seq& s, int64_t n) {
    const int64_t start = s.cache.size(), before = s.cache.pages();
    // Cannot fail: admission set aside pages for the sequence's whole limit.
    DSV3_CHECK(s.cache.reserve(start + n), "the latent cache ran out of pages for an admitted sequence");
    const int64_t allocated = s.cache.pages() - before;
    s.claim -= allocated;
    reserved_pages_ -= allocated;
    model::BatchSeq b;
    b.tokens = s.tokens.data() + start;
    b.T = n;
    b.start = start;
    b.cache = &s.cache;
    b.want_logits = start + n == int64_t(s.tokens.size());
    batch.push_back(b);
    who.push_back(&s);
  };
  for (auto& s : active_)
    if (int64_t(s->tokens.size()) - s->cache.size() == 1 && s->cache.size() >= int64_t(s->req.prompt.size())) {
      add(*s, 1);
      --budget;
    }
  for (auto& s : active_) {
    const int64_t left = int64_t(s->tokens.size()) - s->cache.size();
    if (s->cache.size() >= int64_t(s->req.prompt.size()) && left == 1) continue;  // added above
    const int64_t n = std::min(left, std::max<int64_t>(budget, batch.empty() ? opts_.step_tokens : 0));
    if (n <= 0) break;
    add(*s, n);
    budget -= n;
  }
  int64_t rows = 0, with_logits = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    rows += batch[i].T;
    with_logits += batch[i].want_logits;
  }

  const int64_t V = model_.config().vocab_size;
  std::vector<float>& logits = logits_;  // kept: half a megabyte per row at V3's vocabulary
  logits.resize(static_cast<size_t>(with_logits * V));
  const auto t0 = Clock::now();
  model::ForwardOptions fo;
  fo.attention = opts_.attention;
  try {
    model_.forward_batch(ws_, batch, logits.data(), fo);
  } catch (const std::exception& e) {
    for (Seq* s : who) finish(*s, FinishReason::Error, e.what());
    std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->done; });
    return;
  }
  const double secs = seconds_between(t0, Clock::now());
  for (size_t i = 0; i < batch.size(); ++i) who[i]->cache.commit(batch[i].tokens, batch[i].T);
  int64_t k = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].want_logits) continue;
    Seq& s = *who[i];
    try {
      sample(s, &logits[size_t(k * V)]);
    } catch (const std::exception& e) {
      finish(s, FinishReason::Error, e.what());
    }
    ++k;
  }
  std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->done; });
  std::unique_lock lk(mu_);
  if (observer_) {  // called without the lock: it may read stats()
    StepObserver ob = observer_;
    lk.unlock();
    ob(int64_t(batch.size()), rows, secs);
    lk.lock();
  }
  ++stats_.steps;
  stats_.active = int64_t(active_.size());
  stats_.pages_in_use = pool_->pages_in_use();
  stats_.pages_cached = pool_->pages_cached();
  stats_.reuse_hits = pool_->reuse_hits();
}

}  // namespace dsv3::runtime
