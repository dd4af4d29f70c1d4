// Added tokens (special and not) are cut out of the text before any pre-tokenization, exactly
// as Hugging Face's AddedVocabulary does: first the tokens with normalized = false are matched
// in the raw text, then those with normalized = true in the (normalized) gaps between; each
// pass is a leftmost-longest, non-overlapping scan (Aho-Corasick LeftmostLongest there, a trie
// here), after which single_word / lstrip / rstrip and the split-special mode filter or widen
// the matches one by one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace dsv3::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

//! A piece of input: either text still to be pre-tokenized (id < 0) or one added token.
struct Segment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenSplitter {
 public:
  explicit AddedTokenSplitter(const std::vector<AddedToken>& tokens);

  //! Splits text (valid UTF-8) into segments covering it in order. skip_special: special tokens
  //! are not matched (Hugging Face's split_special_tokens / encode_special_tokens); a special
  //! token's match is still consumed by the scan, as there, and its text stays ordinary text.
  void split(std::string_view text, bool skip_special, std::vector<Segment>& out) const;

 private:
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
      int32_t token = -1;                              // index into tokens_ when a token ends here
    };
    std::vector<Node> nodes{1};
    bool first[256] = {};
    void add(const std::string& s, int32_t token);
    //! Longest token starting at text[pos], or -1; sets len.
    int32_t longest_at(std::string_view text, size_t pos, size_t& len) const;
  };
  struct Match {
    size_t start, end;
    int32_t token;
  };

  void pass(const Trie& trie, std::string_view text, bool skip_special, std::vector<Segment>& out) const;
  bool is_word_char_before(std::string_view text, size_t pos) const;
  bool is_word_char_at(std::string_view text, size_t pos) const;

  std::vector<AddedToken> tokens_;
  Trie raw_, normalized_;
  bool any_raw_ = false, any_normalized_ = false;
  Regex word_char_;  // Rust regex `\w`, for single_word
};

}  // namespace dsv3::tok
