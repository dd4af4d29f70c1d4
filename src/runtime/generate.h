// One prompt run to the end on the engine, with its text streamed to a callback: what
// `dsv3 generate` and every turn of `dsv3 chat` do. The engine does the work (prefix reuse,
// sampling, stop strings, EOS, limits), so these commands and `dsv3 serve` share one
// generation loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "sampling/sampler.h"

namespace dsv3::runtime {

struct GenerateOptions {
  SamplingParams sampling;
  int64_t max_tokens = 256;
  std::vector<std::string> stop;   // stop strings (not shown)
  bool ignore_eos = false;
};

struct GenerateResult {
  std::string text;                // everything shown
  std::vector<int32_t> tokens;     // generated ids that produced events (an ending EOS is not one)
  FinishReason finish_reason = FinishReason::Stop;
  int64_t prompt_tokens = 0;       // prompt length
  int64_t reused_tokens = 0;       // prompt tokens whose latents were found in the cache
  int64_t completion_tokens = 0;   // sampled tokens, an ending EOS included
  double prefill_seconds = 0;      // admission to the first token
  double decode_seconds = 0;       // first token to the end
  DraftStats drafts;               // speculative decoding's verify steps and acceptance
};

//! Engine settings for one interactive sequence with a context of ctx_size tokens: the
//! whole prompt in one step, the attention form picked per prompt step (naive for a long
//! prompt; decode steps always attend in the absorbed form), one-token cache pages, so a chat's next turn reuses every token
//! of the conversation so far (all but the last prompt token, which is recomputed for its
//! logits), and no engine thread: generate() runs the steps on the caller's thread.
EngineOptions single_sequence_options(int64_t ctx_size);

//! Runs `prompt` on `engine` until EOS, a stop string, max_tokens, the context limit or
//! *cancel (checked between steps). An engine without its own thread is stepped on the
//! calling thread. on_text receives visible text as it is produced
//! (complete UTF-8 only). Throws dsv3::Error when the engine refuses the prompt (empty, or
//! not shorter than the context) or the step fails.
GenerateResult generate(Engine& engine, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                        const std::function<void(const std::string&)>& on_text,
                        const std::atomic<bool>* cancel = nullptr);

}  // namespace dsv3::runtime
