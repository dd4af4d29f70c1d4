// Evaluation tasks as files describe them (docs/eval.md): perplexity over a text file in
// windows, multiple choice by log-likelihood, and generation scored by exact match or a
// regular expression. Loading checks every line and names the first bad one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsv3::eval {

//! One multiple-choice question: the context, the choices (continuations) and the right one.
struct ChoiceItem {
  std::string context;
  std::vector<std::string> choices;
  int64_t answer = 0;
};

//! One generation prompt: it is right when the output (stripped) equals one of `targets`, or,
//! with a regex, when the regex matches somewhere in the output.
struct GenItem {
  std::string prompt;
  std::vector<std::string> targets;
  std::string regex;
  std::vector<std::string> stop;  // default: a newline
};

//! JSONL: {"context": str, "choices": [str, ...], "answer": index}.
std::vector<ChoiceItem> load_choice_items(const std::string& path);
//! JSONL: {"prompt": str, "target": str | "targets": [str], "regex": str?, "stop": [str]?}.
std::vector<GenItem> load_gen_items(const std::string& path);

}  // namespace dsv3::eval
