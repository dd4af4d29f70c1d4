// The generation engine: one thread owns the model (and the thread pool it runs on) and runs
// continuous batching. Every step runs the next token of each decoding sequence together
// with chunks of pending prompts (under a token budget), so weights are read once per step
// for all of them; requests join between steps and finished or cancelled ones leave at once.
// Latents live in a paged cache under a memory budget; prompts that share a prefix with
// cached pages skip recomputing it. It is the one generation loop: `dsv3 serve` runs many
// sequences on it, `dsv3 generate` and `dsv3 chat` one (runtime/generate.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kernels/numerics.h"
#include "model/model.h"
#include "runtime/draft_tuner.h"
#include "runtime/paged_cache.h"
#include "sampling/sampler.h"
#include "sampling/token_constraint.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::runtime {

//! One sequence to generate (one choice of a request).
struct GenRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = 256;        // generated tokens at most (also bounded by the context)
  std::vector<std::string> stop;   // stop strings (not shown)
  bool ignore_eos = false;
  bool draft = true;               // may use speculative decoding (when the engine drafts)
  bool skip_special = true;        // special tokens decode to nothing
  int top_logprobs = -1;           // -1: no logprobs; else the chosen token's and this many others'
  //! -1: none. Else every prompt token's log-probability given the tokens before it (from the
  //! second token on) and this many alternatives, in FinishInfo::prompt_logprobs: what
  //! likelihood evaluation asks for (echo with logprobs). The prompt is then computed whole
  //! (no cached prefix), and max_tokens may be 0.
  int prompt_logprobs = -1;
  std::vector<int32_t> forced;     // tokens forced at the start of the answer (shown, counted)
  std::unique_ptr<TokenConstraint> constraint;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

//! What one generated token produced.
struct TokenEvent {
  int32_t token = 0;
  std::string text;  // visible text this token completed (may be empty; stop strings held back)
  float logprob = 0;
  std::vector<TokenLogprob> top;
};

//! Why a sequence ended. Servers map it to their API's words in one place
//! (server/openai_names.h for the OpenAI API).
enum class FinishReason {
  Stop,       // an end-of-sequence token, a stop string, or a completed constraint
  Length,     // max_tokens or the context is used up
  Cancelled,  // the client went away or asked to stop
  Error,      // the step failed; FinishInfo::error says why
};

//! "stop", "length", "cancelled" or "error", for logs and tests.
const char* finish_reason_name(FinishReason r);

//! Speculative decoding's record: verify steps that checked drafts, and per draft position k
//! how many steps drafted it and how many accepted it together with every draft before it.
struct DraftStats {
  int64_t steps = 0;
  std::vector<int64_t> drafted, accepted;
  int64_t drafted_total() const;
  int64_t accepted_total() const;
  void add(const DraftStats& o);
};

struct FinishInfo {
  FinishReason reason = FinishReason::Stop;
  std::string error;   // for FinishReason::Error
  std::string tail;    // visible text released at the end (after the last token event)
  std::string stop_string;  // the stop string that ended it ("" when none did)
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  double queue_seconds = 0, first_token_seconds = 0, total_seconds = 0;
  DraftStats drafts;
  //! With GenRequest::prompt_logprobs: prompt tokens 1 .. n-1 (token, logprob, top; no text).
  std::vector<TokenEvent> prompt_logprobs;
};

//! The channel between the engine and whoever waits for one sequence's output.
class Stream {
 public:
  //! Waits up to `timeout` for the next token event; false when none arrived (check
  //! finished()). Events come in order; after the last one, finished() holds.
  bool next(TokenEvent& ev, std::chrono::milliseconds timeout);
  //! The finish record once the sequence is done and every event was taken.
  std::optional<FinishInfo> finished();
  //! Asks the engine to stop this sequence (a client went away); it leaves at the next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Engine side.
  void push(TokenEvent ev);
  void finish(FinishInfo info);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  std::optional<FinishInfo> done_;
  std::atomic<bool> cancelled_{false};
};

struct EngineOptions {
  int64_t max_seqs = 8;          // sequences decoding at once; more wait in the queue
  int64_t ctx_size = 4096;       // prompt + output tokens per sequence
  int64_t page_tokens = 16;
  uint64_t cache_bytes = 0;      // latent cache budget; 0: enough for max_seqs full contexts
  int64_t step_tokens = 256;     // prompt tokens per step, shared by pending prefills
  //! Prompt steps' attention; fixed, so batching never changes results. Decode and verify
  //! steps always attend in the absorbed form.
  model::AttentionForm attention = model::AttentionForm::Absorbed;
  //! true: the engine runs its steps on a thread of its own (serving: requests arrive from
  //! other threads at any time). false: the caller runs them with run_step() (generate and
  //! chat: one sequence, and no thread hand-off per token).
  bool own_thread = true;
  //! How the forward pass computes (kernels/numerics.h); the commands default to bf16.
  kernels::Numerics numerics = kernels::Numerics::Fp32;
  //! Speculative decoding with the checkpoint's MTP module: drafts per verify step (0: off).
  //! Output is the main model's either way (greedy: the same tokens; sampling: the same
  //! tokens for the same seed). Needs a model with its MTP module loaded.
  int64_t draft = 0;
  //! Measure and draft only while it pays, per batch size (runtime/draft_tuner.h).
  bool draft_auto = false;
};

struct EngineStats {
  int64_t queued = 0, active = 0;
  int64_t pages_total = 0, pages_in_use = 0, pages_cached = 0;
  uint64_t cache_bytes = 0, page_bytes = 0;
  uint64_t steps = 0, prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  uint64_t reuse_hits = 0;
  DraftStats drafts;  // every finished sequence's
};

class Engine {
 public:
  //! Observes each step: the number of sequences and of tokens it ran, and its duration.
  using StepObserver = std::function<void(int64_t seqs, int64_t tokens, double seconds)>;

  //! The engine's thread is the only user of `pool` until the engine is destroyed.
  Engine(const model::Model& model, const Tokenizer& tokenizer, ThreadPool& pool, EngineOptions opts,
         StepObserver observer = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  //! Queues a sequence. Throws dsv3::Error when it can never run (empty prompt, prompt not
  //! shorter than the context, or more cache than the whole budget).
  std::shared_ptr<Stream> submit(GenRequest req);
  EngineStats stats() const;
  void set_step_observer(StepObserver observer);
  const EngineOptions& options() const { return opts_; }
  //! Tokens the prompt may have so that at least one token can be generated.
  int64_t max_prompt_tokens() const { return opts_.ctx_size - 1; }
  //! Without own_thread: admits what is queued and runs one step on the calling thread (which
  //! then owns the pool); returns false when nothing was left to do.
  bool run_step();

 private:
  struct Seq;
  struct StepItem;
  void loop();
  void admit();
  void step();
  int32_t sample(Seq& s, float* logits, int64_t held);
  void score_prompt(StepItem& it, float* logits);
  void sample_rows(StepItem& it, float* logits);
  void run_mtp(const std::vector<StepItem>& items, int64_t decoding, const model::ForwardOptions& fo);
  void finish(Seq& s, FinishReason reason, const std::string& error = "");
  void retire_done();
  void reserve(Seq& s, int64_t n);
  int64_t drafts_allowed(const Seq& s) const;
  int32_t draft_token(float* logits) const;
  bool drafting() const { return opts_.draft > 0; }
  int64_t pages_needed(const Seq& s) const;
  bool is_eos(int32_t id) const;

  const model::Model& model_;
  const Tokenizer& tok_;
  model::Workspace ws_;        // engine thread only
  std::vector<float> logits_;  // engine thread only
  std::vector<float> normed_, mtp_logits_;  // engine thread only: the MTP module's inputs and outputs
  EngineOptions opts_;
  StepObserver observer_;
  DraftTuner tuner_;  // engine thread only
  std::unique_ptr<PagedLatentCache> pool_;
  std::vector<int32_t> no_token_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Seq>> queue_;
  bool stop_ = false;
  std::vector<std::unique_ptr<Seq>> active_;  // engine thread only
  int64_t reserved_pages_ = 0;                // pages admitted sequences may still claim
  EngineStats stats_;                         // guarded by mu_
  std::thread thread_;
};

}  // namespace dsv3::runtime
