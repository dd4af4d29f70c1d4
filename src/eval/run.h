// Running one task on a backend: perplexity over a text in windows, multiple choice by
// log-likelihood (accuracy and length-normalised accuracy, as lm-evaluation-harness computes
// them), and generation with exact-match or regex scoring.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "eval/backend.h"

namespace dsv3::eval {

struct TaskResult {
  std::string task;   // "perplexity", "choice" or "generation"
  std::string file;
  int64_t items = 0;  // windows, questions or prompts scored
  std::vector<std::pair<std::string, double>> metrics;
  double seconds = 0;
};

//! progress(done, total) after each batch.
using Progress = std::function<void(int64_t, int64_t)>;

struct PerplexityOptions {
  int64_t window = 0;       // tokens per window (0: the backend's context)
  int64_t stride = 0;       // tokens between window starts (0: window, no overlap)
  int64_t max_windows = 0;  // 0: the whole text
};

//! The text as one document (BOS where the tokenizer adds one, then its tokens), scored in
//! windows starting every `stride` tokens; each window scores the tokens no earlier window
//! scored, except its own first token (it has no context there). With stride < window every
//! token after the text's first is scored exactly once; with stride = window (the default)
//! these are the non-overlapping windows `dsv3 train` evaluates on, each scoring window - 1.
TaskResult run_perplexity(Backend& b, const std::string& path, const PerplexityOptions& o, const Progress& progress);
//! Each choice scored as the summed log-probability of its tokens after the context
//! (tokenized together, split at the context's own token count, as lm-evaluation-harness).
TaskResult run_choice(Backend& b, const std::string& path, const Progress& progress);
//! Greedy generation up to max_tokens or a stop string; right when the stripped output equals
//! a target, or when the item's regex matches in it.
TaskResult run_generation(Backend& b, const std::string& path, int64_t max_tokens, const Progress& progress);

}  // namespace dsv3::eval
