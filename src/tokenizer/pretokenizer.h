// The pre-tokenizer: a sequence of regex Split steps, each applied to every piece the previous
// step produced (so a later pattern never sees across an earlier cut, lookaheads included),
// with Hugging Face's delimiter behaviours. The final ByteLevel step of byte-level tokenizers
// only respells bytes, which the BPE stage does on the fly, so it is not a step here (its
// use_regex form adds the GPT-2 split pattern as one more step).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace dsv3::tok {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct SplitStep {
  Regex regex;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
};

class PreTokenizer {
 public:
  void add(SplitStep step) { steps_.push_back(std::move(step)); }
  size_t size() const { return steps_.size(); }

  //! Appends the non-empty pieces of text (valid UTF-8), in order, to out. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  std::vector<SplitStep> steps_;
};

//! The pattern the ByteLevel pre-tokenizer uses when use_regex is true (GPT-2's).
inline constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

}  // namespace dsv3::tok
