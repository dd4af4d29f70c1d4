#include "train/passkey_data.h"

#include <algorithm>
#include <string>

#include "base/error.h"
#include "base/passkey_text.h"
#include "base/rng.h"

namespace dsv3::train {
namespace {

// The answer as generation after the question produces it: the question is a prompt of
// its own, so the answer is tokenized on its own too.
std::string answer(const std::string& key) { return " " + key + "."; }

// Longest needle / answer, in tokens, over any five-digit key: a byte-level tokenizer may
// spell a key in up to five tokens.
int64_t worst_case_tokens(const Tokenizer& tok, bool needle) {
  const std::string key = "98765";
  return int64_t(tok.encode(needle ? passkey_text::needle(key) : answer(key)).size()) + (needle ? 10 : 5);
}

}  // namespace

PasskeyExamples::PasskeyExamples(const Tokenizer& tok, double fraction, int64_t window, uint64_t seed)
    : tok_(tok), fraction_(fraction), window_(window), seed_(seed),
      // As the evaluation tokenizes its prompts: BOS first where the tokenizer adds one.
      intro_(tok.encode(passkey_text::kIntro, tok.add_bos_by_default())),
      question_(tok.encode(passkey_text::kQuestion)) {
  const int64_t fixed =
      int64_t(intro_.size() + question_.size()) + worst_case_tokens(tok, true) + worst_case_tokens(tok, false);
  if (window < fixed + 16)
    fail("data.passkey_fraction needs windows of at least ", fixed + 16, " tokens (the instruction, needle, question ",
         "and answer take ", fixed, "); seq_len + 1 is ", window);
}

uint64_t PasskeyExamples::mix(int64_t step, int64_t k, uint64_t salt) const {
  Rng r(seed_ ^ (uint64_t(step) * 0x9e3779b97f4a7c15ull) ^ (uint64_t(k) * 0xc2b2ae3d27d4eb4full) ^ salt);
  return r.next();
}

bool PasskeyExamples::picks(int64_t step, int64_t k) const {
  return fraction_ > 0 && double(mix(step, k, 0x5041) >> 11) * 0x1.0p-53 < fraction_;
}

const int32_t* PasskeyExamples::make(const int32_t* haystack, int64_t step, int64_t k) {
  Rng r(mix(step, k, 0x4b4559));
  const std::string key = std::to_string(10000 + r.below(90000));
  const std::vector<int32_t> needle = tok_.encode(passkey_text::needle(key));
  const std::vector<int32_t> ans = tok_.encode(answer(key));
  const int64_t filler =
      window_ - int64_t(intro_.size() + needle.size() + question_.size() + ans.size());  // >= 16 (constructor)
  const int64_t at = int64_t(r.below(uint64_t(filler) + 1));  // haystack tokens before the needle
  out_.clear();
  out_.insert(out_.end(), intro_.begin(), intro_.end());
  out_.insert(out_.end(), haystack, haystack + at);
  out_.insert(out_.end(), needle.begin(), needle.end());
  out_.insert(out_.end(), haystack + at, haystack + filler);
  out_.insert(out_.end(), question_.begin(), question_.end());
  out_.insert(out_.end(), ans.begin(), ans.end());
  // Prediction i is of token i + 1: the answer's tokens are the last ans.size().
  mask_.assign(size_t(window_ - 1), 0);
  std::fill(mask_.end() - int64_t(ans.size()), mask_.end(), uint8_t(1));
  return out_.data();
}

}  // namespace dsv3::train
