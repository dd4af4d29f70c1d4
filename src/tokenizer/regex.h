// A PCRE2 regex (UTF + UCP, JIT-compiled) with the semantics Hugging Face tokenizers gets from
// Oniguruma for pre-tokenizer patterns. The one known difference is `\s`: with UCP, PCRE2's `\s`
// also matches U+180E (MONGOLIAN VOWEL SEPARATOR, a space in Unicode < 6.3), while Oniguruma's
// `\s` is exactly Unicode White_Space. The constructor therefore rewrites `\s` / `\S` into
// explicit White_Space classes before compiling.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace dsv3::tok {

//! `\s` and `\S` in `pattern` replaced by explicit Unicode White_Space classes (inside a
//! character class `\s` becomes the bare ranges; `\S` inside a class is rejected with an error,
//! as it has no class-internal spelling). Exposed for tests.
std::string rewrite_whitespace_classes(const std::string& pattern);

class Regex {
 public:
  //! Compiles `pattern` (literal = true: match the string itself). Throws dsv3::Error naming the
  //! pattern and the PCRE2 message on failure.
  explicit Regex(const std::string& pattern, bool literal = false);

  //! Calls on_match(start, end) (byte offsets into s) for each successive non-overlapping match,
  //! leftmost first, as Oniguruma's find_iter does (an empty match advances by one character).
  //! s must be valid UTF-8 (it is not re-checked). Thread-safe: per-thread match state.
  template <typename F>
  void for_each_match(std::string_view s, F&& on_match) const {
    size_t pos = 0, start = 0, end = 0;
    while (pos <= s.size() && next(s, pos, start, end)) {
      on_match(start, end);
      pos = end > start ? end : end + char_len(s, end);
    }
  }

  //! True if the whole of s matches (anchored at both ends).
  bool full_match(std::string_view s) const;

  const std::string& pattern() const { return pattern_; }

 private:
  bool next(std::string_view s, size_t pos, size_t& start, size_t& end) const;
  static size_t char_len(std::string_view s, size_t i);

  std::string pattern_;
  std::shared_ptr<void> code_;  // pcre2_code_8, freed by pcre2_code_free
};

}  // namespace dsv3::tok
