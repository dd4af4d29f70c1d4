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

// The k most likely tokens of log-probabilities lp [V] (ties: lower id first).
std::vector<TokenLogprob> top_tokens(const std::vector<float>& lp, int64_t k) {
  const int64_t V = int64_t(lp.size());
  k = std::min(k, V);
  if (k <= 0) return {};  // scoring asks for none: no pass over the vocabulary
  std::vector<int32_t> ids(static_cast<size_t>(V));
  for (int32_t i = 0; i < int32_t(V); ++i) ids[size_t(i)] = i;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return lp[size_t(a)] != lp[size_t(b)] ? lp[size_t(a)] > lp[size_t(b)] : a < b;
  });
  std::vector<TokenLogprob> top;
  for (int64_t i = 0; i < k; ++i) top.push_back({ids[size_t(i)], lp[size_t(ids[size_t(i)])]});
  return top;
}
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

int64_t DraftStats::drafted_total() const {
  int64_t n = 0;
  for (int64_t d : drafted) n += d;
  return n;
}

int64_t DraftStats::accepted_total() const {
  int64_t n = 0;
  for (int64_t a : accepted) n += a;
  return n;
}

void DraftStats::add(const DraftStats& o) {
  steps += o.steps;
  if (drafted.size() < o.drafted.size()) drafted.resize(o.drafted.size(), 0);
  if (accepted.size() < o.accepted.size()) accepted.resize(o.accepted.size(), 0);
  for (size_t k = 0; k < o.drafted.size(); ++k) drafted[k] += o.drafted[k];
  for (size_t k = 0; k < o.accepted.size(); ++k) accepted[k] += o.accepted[k];
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
  // Speculative decoding: a drafting sequence keeps the MTP layer's rows (in its pages, beside
  // the main layers'; cache.mtp_rows() of them are final) and the drafts its next step verifies.
  bool draft_on = false;
  std::vector<int32_t> drafts, chunk;  // chunk: the verify step's tokens (last token, drafts)
  std::vector<float> mtp_hidden;       // the MTP block's output for the newest draft (chained drafts start there)
  DraftStats draft_stats;
  FinishInfo finish_info;  // set when done
  std::vector<TokenEvent> prompt_lp;  // GenRequest::prompt_logprobs so far
  Clock::time_point queued = Clock::now(), admitted, first_token;
};

Engine::Engine(const model::Model& model, const Tokenizer& tokenizer, ThreadPool& pool, EngineOptions opts,
               StepObserver observer)
    : model_(model), tok_(tokenizer), ws_(pool), opts_(opts), observer_(std::move(observer)),
      tuner_(opts.draft_auto) {
  const model::ModelConfig& c = model.config();
  if (opts_.draft < 0) fail("--draft must be auto or a number >= 0, got ", opts_.draft);
  if (opts_.draft > 0 && !model.has_mtp())
    fail("--draft ", opts_.draft, " needs the checkpoint's MTP module, and this model has none loaded "
         "(num_nextn_predict_layers is 0)");
  if (opts_.max_seqs < 1) fail("--max-seqs must be at least 1");
  if (opts_.ctx_size < 2) fail("--ctx-size must be at least 2");
  if (opts_.page_tokens < 1) fail("the page size must be at least 1 token");
  if (opts_.step_tokens < 1) fail("the step token budget must be at least 1");
  ws_.kernels.set_numerics(opts_.numerics);
  if (tokenizer.vocab_size() > c.vocab_size)
    fail("the tokenizer has ", tokenizer.vocab_size(), " tokens but the model only ", c.vocab_size,
         " embedding rows; they do not belong together");
  // A drafting engine keeps the MTP layer's latents in the same pages, as one more layer.
  const int64_t cache_layers = c.num_hidden_layers + (drafting() ? 1 : 0);
  const model::LatentType latent = model::latent_type_for(opts_.numerics);
  const uint64_t page_bytes = PagedLatentCache::page_bytes(cache_layers, c.latent_dim(), opts_.page_tokens, latent);
  int64_t pages;
  if (opts_.cache_bytes == 0) {
    pages = opts_.max_seqs * ((opts_.ctx_size + opts_.page_tokens - 1) / opts_.page_tokens);
  } else {
    if (opts_.cache_bytes < page_bytes)
      fail("--cache-mem ", opts_.cache_bytes, " bytes is less than one cache page (", page_bytes, " bytes: ",
           opts_.page_tokens, " tokens x ", cache_layers, " layers x ", c.latent_dim(), " ",
           model::latent_type_name(latent), " values)");
    pages = PagedLatentCache::pages_for_bytes(cache_layers, c.latent_dim(), opts_.page_tokens, opts_.cache_bytes,
                                              latent);
  }
  pool_ = std::make_unique<PagedLatentCache>(cache_layers, c.latent_dim(), opts_.page_tokens, pages, drafting(),
                                             latent);
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
  retire_done();
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
  s->sampler->set_logprobs(s->req.top_logprobs >= 0);
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
    if (drafting()) {
      int64_t decoding = 0;
      for (const auto& a : active_) decoding += a->cache.size() >= int64_t(a->req.prompt.size());
      s.draft_on = s.req.draft && tuner_.worth_starting(decoding);
    }
    // Prompt logprobs need every prompt row's logits: nothing cached is used.
    s.cached = s.req.prompt_logprobs >= 0 ? 0 : s.cache.attach_prefix(s.req.prompt, s.draft_on);
    s.cache.track_mtp(s.draft_on);
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
  f.stop_string = s.stops->matched();  // after the flush, which may complete one
  const auto now = Clock::now();
  f.prompt_tokens = int64_t(s.req.prompt.size());
  f.completion_tokens = s.generated;
  f.cached_tokens = s.cached;
  f.queue_seconds = seconds_between(s.queued, s.admitted.time_since_epoch().count() ? s.admitted : now);
  f.first_token_seconds = s.generated ? seconds_between(s.queued, s.first_token) : 0;
  f.total_seconds = seconds_between(s.queued, now);
  s.done = true;
  s.finish_info = std::move(f);  // given to the stream by retire_done(), with the step's draft counts
}

void Engine::retire_done() {
  // A finished sequence's pages go back only now: its last rows were committed after it
  // finished (so a chat's next turn finds them).
  for (auto& s : active_)
    if (s->done) {
      s->cache.clear();
      reserved_pages_ -= s->claim;
      s->claim = 0;
      s->finish_info.drafts = s->draft_stats;
      s->finish_info.prompt_logprobs = std::move(s->prompt_lp);
      {
        std::lock_guard lk(mu_);
        stats_.drafts.add(s->draft_stats);
      }
      s->stream->finish(std::move(s->finish_info));
    }
  std::erase_if(active_, [](const std::unique_ptr<Seq>& s) { return s->done; });
}

void Engine::reserve(Seq& s, int64_t n) {
  const int64_t before = s.cache.pages();
  // Cannot fail: admission set aside pages for the sequence's whole limit.
  DSV3_CHECK(s.cache.reserve(n), "the latent cache ran out of pages for an admitted sequence");
  const int64_t allocated = s.cache.pages() - before;
  s.claim -= allocated;
  reserved_pages_ -= allocated;
}

int32_t Engine::sample(Seq& s, float* logits, int64_t held) {
  const float kNegInf = -std::numeric_limits<float>::infinity();
  for (int32_t id : no_token_) logits[size_t(id)] = kNegInf;
  if (s.req.constraint) s.req.constraint->mask(logits);
  const int64_t V = model_.config().vocab_size;
  if (s.req.constraint && std::all_of(logits, logits + V, [&](float v) { return v == kNegInf; })) {
    finish(s, FinishReason::Stop);  // nothing may follow (a constraint is complete)
    return -1;
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
    return token;
  }
  TokenEvent ev;
  ev.token = token;
  if (s.req.top_logprobs >= 0) {
    const std::vector<float>& lp = s.sampler->last_logprobs();
    ev.logprob = lp[size_t(token)];
    ev.top = top_tokens(lp, s.req.top_logprobs);
  }
  ev.text = s.stops->push(s.detok->push(token));
  const bool stopped = s.stops->stopped();
  s.stream->push(std::move(ev));
  if (stopped) {
    finish(s, FinishReason::Stop);
  } else if (s.generated >= s.req.max_tokens || held + 1 > s.limit) {
    finish(s, FinishReason::Length);
  } else {
    s.tokens.push_back(token);
  }
  return token;
}

int64_t Engine::drafts_allowed(const Seq& s) const {
  if (!s.draft_on || s.done || s.forced_next < s.req.forced.size()) return 0;
  // The verify step holds the last token and the drafts; each accepted draft is a token.
  const int64_t held = int64_t(s.tokens.size());
  return std::max<int64_t>(0, std::min({opts_.draft, s.limit - held, s.req.max_tokens - s.generated - 1}));
}

int32_t Engine::draft_token(float* logits) const {
  // Drafts are the MTP module's argmax (q is one-hot): the rejection rule then reduces to
  // "sample the main model's token as without speculation; keep the draft if they agree",
  // which is also why a seed gives the same tokens with and without drafting.
  const float kNegInf = -std::numeric_limits<float>::infinity();
  for (int32_t id : no_token_) logits[size_t(id)] = kNegInf;
  const int64_t V = model_.config().vocab_size;
  int32_t best = 0;
  for (int32_t i = 1; i < int32_t(V); ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

// One sequence's share of a step: rows [row0, row0 + T) of the batch at positions start..,
// logit rows from logit0 (the trailing logit_rows of its T; the last sample_rows of them are
// sampled, the others give prompt logprobs).
struct Engine::StepItem {
  Seq* s;
  int64_t start, T, logit_rows, logit0, row0;
  bool decode;
  int64_t sample_rows;
  int64_t used = 0;  // leading rows whose latents stay (a verify step drops rejected drafts')
};

void Engine::score_prompt(StepItem& it, float* logits) {
  // Row r's logits give the log-probability of the prompt token after it.
  Seq& s = *it.s;
  const int64_t V = model_.config().vocab_size;
  std::vector<float> lp;
  for (int64_t r = 0; r < it.logit_rows - it.sample_rows; ++r) {
    const int64_t next = it.start + it.T - it.logit_rows + r + 1;
    if (next >= int64_t(s.req.prompt.size())) break;
    float* row = &logits[size_t((it.logit0 + r) * V)];
    for (int32_t id : no_token_) row[size_t(id)] = -std::numeric_limits<float>::infinity();
    log_softmax(row, int32_t(V), lp);
    TokenEvent ev;
    ev.token = s.req.prompt[size_t(next)];
    ev.logprob = lp[size_t(ev.token)];
    ev.top = top_tokens(lp, s.req.prompt_logprobs);
    s.prompt_lp.push_back(std::move(ev));
  }
}

void Engine::sample_rows(StepItem& it, float* logits) {
  // A verify step goes on while its drafts agree.
  Seq& s = *it.s;
  const int64_t V = model_.config().vocab_size;
  const int64_t n_drafts = it.decode ? it.T - 1 : 0;
  int64_t accepted = 0;
  for (int64_t r = 0; r < it.sample_rows; ++r) {
    const int64_t row = it.T - it.sample_rows + r;
    int32_t token = -1;
    try {
      token = sample(s, &logits[size_t((it.logit0 + it.logit_rows - it.sample_rows + r) * V)], it.start + row + 1);
    } catch (const std::exception& e) {
      finish(s, FinishReason::Error, e.what());
    }
    it.used = row + 1;
    const bool agrees = r < n_drafts && token == s.drafts[size_t(r)];
    accepted += agrees;
    if (s.done || !agrees) break;
  }
  if (n_drafts > 0) {
    DraftStats& d = s.draft_stats;
    ++d.steps;
    if (int64_t(d.drafted.size()) < n_drafts) d.drafted.resize(size_t(n_drafts), 0);
    if (int64_t(d.accepted.size()) < n_drafts) d.accepted.resize(size_t(n_drafts), 0);
    for (int64_t k = 0; k < n_drafts; ++k) d.drafted[size_t(k)] += 1;
    for (int64_t k = 0; k < accepted; ++k) d.accepted[size_t(k)] += 1;
  }
  s.drafts.clear();
}

void Engine::run_mtp(const std::vector<StepItem>& items, int64_t decoding, const model::ForwardOptions& fo) {
  // Rows for every drafting sequence's new positions, and drafts for the next step where the
  // tuner says drafting pays.
  const int64_t D = model_.config().hidden_size, V = model_.config().vocab_size;
  const int64_t mtp_layer = model_.config().num_hidden_layers;
  const DraftTuner::Choice choice = tuner_.choose(std::max<int64_t>(decoding, 1));
  if (choice == DraftTuner::Choice::Off)
    for (auto& s : active_)
      if (s->draft_on) {
        s->draft_on = false;
        s->cache.track_mtp(false);
      }
  std::vector<model::MtpSeq> mseqs;
  std::vector<Seq*> mwho;
  for (const StepItem& it : items) {
    Seq& s = *it.s;
    if (!s.draft_on || s.done) continue;
    DSV3_CHECK(s.cache.mtp_rows() == it.start, "the MTP rows of a sequence fell behind its main rows");
    s.mtp_hidden.resize(size_t(D));
    model::MtpSeq m;
    m.hidden = normed_.data() + it.row0 * D;
    m.next_tokens = s.tokens.data() + it.start + 1;
    m.T = it.used;
    m.start = it.start;
    m.cache = &s.cache;
    m.logit_rows = it.sample_rows > 0 && choice == DraftTuner::Choice::Draft && drafts_allowed(s) > 0 ? 1 : 0;
    m.block_out = s.mtp_hidden.data();
    mseqs.push_back(m);
    mwho.push_back(&s);
  }
  try {
    int64_t n_out = 0;
    for (const model::MtpSeq& m : mseqs) n_out += m.logit_rows;
    mtp_logits_.resize(size_t(std::max<int64_t>(n_out, 1) * V));
    if (!mseqs.empty()) model_.forward_mtp_batch(ws_, mseqs, mtp_layer, mtp_logits_.data(), fo);
    int64_t k = 0;
    std::vector<Seq*> chain;
    for (size_t i = 0; i < mseqs.size(); ++i) {
      Seq& s = *mwho[i];
      s.cache.seal(mseqs[i].start + mseqs[i].T);
      if (mseqs[i].logit_rows == 0) continue;
      s.drafts.push_back(draft_token(&mtp_logits_[size_t(k++ * V)]));
      reserve(s, s.cache.mtp_rows() + drafts_allowed(s));
      chain.push_back(&s);
    }
    // Further drafts chain the module on its own output and draft, over positions the next
    // verify step recomputes (their MTP rows are overwritten then).
    for (int64_t j = 1; !chain.empty(); ++j) {
      std::erase_if(chain, [&](Seq* s) { return int64_t(s->drafts.size()) >= drafts_allowed(*s); });
      if (chain.empty()) break;
      mseqs.clear();
      for (Seq* s : chain) {
        model::MtpSeq m;
        m.hidden = s->mtp_hidden.data();
        m.next_tokens = &s->drafts.back();
        m.T = 1;
        m.start = s->cache.mtp_rows() + j - 1;
        m.cache = &s->cache;
        m.block_out = s->mtp_hidden.data();
        mseqs.push_back(m);
      }
      mtp_logits_.resize(size_t(int64_t(chain.size()) * V));
      model_.forward_mtp_batch(ws_, mseqs, mtp_layer, mtp_logits_.data(), fo);
      for (size_t i = 0; i < chain.size(); ++i) chain[i]->drafts.push_back(draft_token(&mtp_logits_[i * size_t(V)]));
    }
  } catch (const std::exception& e) {
    for (Seq* s : mwho) finish(*s, FinishReason::Error, e.what());
  }
}

void Engine::step() {
  // Leave at once: cancelled sequences and ones that were asked for no tokens at all.
  for (auto& s : active_) {
    if (s->stream->cancelled()) {
      finish(*s, FinishReason::Cancelled);
    } else if (s->req.max_tokens == 0 && s->req.prompt_logprobs < 0) {
      finish(*s, FinishReason::Length);
    }
  }
  retire_done();
  if (active_.empty()) {
    std::lock_guard lk(mu_);
    stats_.active = 0;
    stats_.pages_in_use = pool_->pages_in_use();
    stats_.pages_cached = pool_->pages_cached();
    return;
  }

  // Decoding sequences first (their last token, and drafts to verify), then prompt chunks
  // under the budget.
  const int64_t D = model_.config().hidden_size, V = model_.config().vocab_size;
  std::vector<model::BatchSeq> batch;
  std::vector<StepItem> items;
  int64_t budget = opts_.step_tokens, rows = 0, n_logits = 0;
  bool any_mtp = false;
  auto add = [&](Seq& s, const int32_t* toks, int64_t n, int64_t logit_rows, int64_t sample_rows, bool decode) {
    const int64_t start = s.cache.size();
    reserve(s, start + n);
    model::BatchSeq b;
    b.tokens = toks;
    b.T = n;
    b.start = start;
    b.cache = &s.cache;
    b.want_logits = logit_rows > 0;
    b.logit_rows = std::max<int64_t>(logit_rows, 1);
    // Decode steps always attend in the absorbed form: a verify step of several tokens then
    // computes each exactly as a one-token step would (the invariance speculation needs).
    if (decode) b.attention = model::AttentionForm::Absorbed;
    batch.push_back(b);
    items.push_back(StepItem{&s, start, n, logit_rows, n_logits, rows, decode, sample_rows});
    rows += n;
    n_logits += logit_rows;
    any_mtp |= s.draft_on;
  };
  for (auto& s : active_)
    if (int64_t(s->tokens.size()) - s->cache.size() == 1 && s->cache.size() >= int64_t(s->req.prompt.size())) {
      s->chunk.assign(1, s->tokens.back());
      s->chunk.insert(s->chunk.end(), s->drafts.begin(), s->drafts.end());
      const int64_t n = int64_t(s->chunk.size());
      add(*s, s->chunk.data(), n, n, n, true);
      budget -= n;
    }
  for (auto& s : active_) {
    const int64_t left = int64_t(s->tokens.size()) - s->cache.size();
    if (s->cache.size() >= int64_t(s->req.prompt.size()) && left == 1) continue;  // added above
    const int64_t n = std::min(left, std::max<int64_t>(budget, batch.empty() ? opts_.step_tokens : 0));
    if (n <= 0) break;
    const int64_t start = s->cache.size();
    const bool last = start + n == int64_t(s->tokens.size());
    const int64_t sampled = last && s->req.max_tokens > 0 ? 1 : 0;
    add(*s, s->tokens.data() + start, n, s->req.prompt_logprobs >= 0 ? n : sampled, sampled, false);
    budget -= n;
  }
  if (any_mtp) {  // the MTP module takes the final-normed hidden states of a drafting sequence's rows
    normed_.resize(size_t(rows * D));
    for (size_t i = 0; i < items.size(); ++i)
      if (items[i].s->draft_on) batch[i].normed = normed_.data() + items[i].row0 * D;
  }

  std::vector<float>& logits = logits_;  // kept: half a megabyte per row at V3's vocabulary
  logits.resize(static_cast<size_t>(n_logits * V));
  const auto t0 = Clock::now();
  model::ForwardOptions fo;
  fo.attention = opts_.attention;
  try {
    model_.forward_batch(ws_, batch, logits.data(), fo);
  } catch (const std::exception& e) {
    for (const StepItem& it : items) finish(*it.s, FinishReason::Error, e.what());
    retire_done();
    return;
  }
  const double main_secs = seconds_between(t0, Clock::now());

  // Prompt logprobs, then the sampled rows, in order.
  for (StepItem& it : items) {
    it.used = it.T;
    if (it.logit_rows == 0) continue;
    score_prompt(it, logits.data());
    if (!it.decode && it.start + it.T == int64_t(it.s->tokens.size()) && it.s->req.max_tokens == 0) {
      finish(*it.s, FinishReason::Length);  // only the prompt's logprobs were asked for
      continue;
    }
    sample_rows(it, logits.data());
  }
  // (Not batch[i].tokens: sampling may have grown Seq::tokens and moved it.)
  for (const StepItem& it : items)
    it.s->cache.commit(it.decode ? it.s->chunk.data() : it.s->tokens.data() + it.start, it.used);
  int64_t decoding = 0, emitted = 0;
  bool all_verified = true, all_plain = true;
  for (const StepItem& it : items)
    if (it.decode) {
      ++decoding;
      emitted += it.used;
      (it.T > 1 ? all_plain : all_verified) = false;
    }

  const auto t1 = Clock::now();
  if (any_mtp) run_mtp(items, decoding, fo);
  const auto t2 = Clock::now();
  const double mtp_secs = seconds_between(t1, t2);
  // Only pure decode steps are timed: prompt rows would weigh on one side.
  if (drafting() && decoding > 0 && decoding == int64_t(items.size()) && (all_plain || all_verified))
    // A plain step's cost leaves out the MTP rows a drafting sequence keeps meanwhile.
    tuner_.record(decoding, all_verified, seconds_between(t0, all_verified ? t2 : t1), double(emitted) / double(decoding));
  const double secs = main_secs + mtp_secs;
  retire_done();
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
