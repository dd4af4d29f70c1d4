// A PCRE2 regex (UTF + UCP, JIT-compiled) with the semantics Hugging Face tokenizers gets from
// Oniguruma for pre-tokenizer patterns. Two differences are rewritten away before compiling:
// `\s` (PCRE2's also matches U+180E; Oniguruma's is exactly Unicode White_Space, so it becomes
// an explicit White_Space class), and the Unicode version (PCRE2 10.42 has Unicode 14 tables,
// Oniguruma 16: \p{L}, \p{M}, \p{N}, \p{P}, \p{S} get the code points assigned since, see
// unicode_delta.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace dsv3::tok {

//! `pattern` as PCRE2 must see it: `\s` / `\S` as explicit White_Space classes, and the major
//! categories \p{L} \p{M} \p{N} \p{P} \p{S} (and \P{..}) widened by unicode_delta.h. Inside a
//! character class the additions are spliced in; a negated form inside a class has no
//! class-internal spelling and is rejected with an error. Exposed for tests.
std::string rewrite_for_pcre2(const std::string& pattern);

class Regex {
 public:
  //! Compiles `pattern` (literal = true: match the string itself). Throws dsv3::Error naming the
  //! pattern and the PCRE2 message on failure.
  explicit Regex(const std::string& pattern, bool literal = false);

  //! Calls on_match(start, end) (byte offsets into s) for each successive non-overlapping match,
  //! leftmost first, exactly as the onig crate's find_iter (which Hugging Face uses) reports them.
  //! s must be valid UTF-8 (it is not re-checked). Thread-safe: per-thread match state.
  template <typename F>
  void for_each_match(std::string_view s, F&& on_match) const {
    // Mirrors the onig crate's FindMatches: an empty match right where the previous match
    // ended is rejected and the search moves on by one character.
    size_t last_end = 0, start = 0, end = 0, last_match_end = size_t(-1);
    while (last_end <= s.size() && next(s, last_end, start, end)) {
      if (start == end && end == last_match_end) {
        last_end += char_len(s, last_end);
        continue;
      }
      last_end = last_match_end = end;
      on_match(start, end);
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
