// `dsv3 generate --batch FILE`: data distillation's first half. Every prompt of a JSONL file
// is answered `samples` times on one engine (continuous batching, as `serve` runs), each
// answer is checked (exact match against the line's targets, its regex, a script, or not at
// all), and the accepted ones are written as chat conversations, ready to be SFT data
// (data.format "chat"). See docs/training.md, "Distillation".
//
// Input lines: {"messages": [...]} or {"prompt": "text"} (a user turn), with what the check
// reads: "targets" (or "target": a string or a list) for exact, "regex" for regex. Output
// lines: {"messages": [... the prompt's messages, {"role": "assistant", "content": answer}]}.
#pragma once

#include <cstdint>
#include <string>

#include "apps/textgen.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "threading/pool.h"

namespace dsv3::app {

struct BatchOptions {
  std::string in, out;
  int64_t samples = 1;          // answers per prompt
  std::string check = "none";   // none | exact | regex | script
  std::string check_script;     // with check "script": a shell command; the answer's JSON on stdin, exit 0 accepts
  runtime::EngineOptions engine;  // max_seqs (sequences decoded together), ctx_size, numerics, drafting
  runtime::GenerateOptions gen;
  bool progress = true;
};

//! Runs the batch; prints a summary (prompts, answers, accepted, tokens/s) on stderr.
//! Throws dsv3::Error for unreadable input (naming file:line) or an unwritable output.
void run_batch(const TextModel& tm, const BatchOptions& o, ThreadPool& pool);

}  // namespace dsv3::app
