// Learning a byte-level BPE vocabulary from text: count the pre-tokens ("words") of a corpus as
// encoding will split it, then repeatedly merge the most frequent adjacent pair of symbols.
//
//   WordCounter counter(pretok, &splitter);
//   counter.add_text(text);                 // any number of times, from any number of counters
//   BpeModel model = train_bpe(counter.counts(), {.max_merges = 4000});
//
// The merge loop is incremental: pair counts live in a hash map, each pair keeps the list of
// words it occurs in, and a max-heap holds (count, pair) entries that go stale as counts drop
// and are refreshed when they reach the top. A merge touches only the words containing its pair.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/pretokenizer.h"

namespace dsv3::tok {

//! Lookup by string_view without building a std::string for every piece counted.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using WordCounts = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

//! Counts pre-tokens the way Tokenizer::encode produces them: invalid UTF-8 becomes U+FFFD, added
//! tokens are cut out first (and not counted, so no merge ever spans or learns them), the rest
//! is split by the pre-tokenizer. Not thread-safe; give each thread its own and merge them.
class WordCounter {
 public:
  //! Both must outlive the counter; splitter may be null (no added tokens).
  WordCounter(const PreTokenizer& pretok, const AddedTokenSplitter* splitter)
      : pretok_(pretok), splitter_(splitter) {}

  //! Counts the words of text, one document or a piece of one cut at safe_cut_before().
  void add_text(std::string_view text);
  //! Adds other's counts to this one's and empties other.
  void merge_from(WordCounter& other);

  const WordCounts& counts() const { return counts_; }
  int64_t total_words() const { return total_; }

 private:
  const PreTokenizer& pretok_;
  const AddedTokenSplitter* splitter_;
  WordCounts counts_;
  int64_t total_ = 0;
  std::vector<Segment> segments_;
  std::vector<std::string_view> pieces_;
};

//! A cut of text (a byte offset > from, <= text.size()) where counting the two sides separately
//! gives exactly the words of counting the whole with the DeepSeek-V3 pre-tokenizer: right after
//! a line feed that is followed by printable ASCII other than a space. None of V3's patterns lets
//! a piece run from a line break into such a character, and no V3 added token holds a line break.
//! Returns the first such cut after `from`, or text.size() when there is none.
size_t safe_cut_after(std::string_view text, size_t from);

struct BpeTrainerOptions {
  size_t max_merges = 0;
  //! A pair seen fewer times than this in the corpus is never merged (training stops there).
  int64_t min_frequency = 2;
  //! Called now and then with (merges so far, max_merges), and once at the end.
  std::function<void(size_t, size_t)> progress;
};

struct BpeModel {
  //! Raw bytes of every symbol: [0, 256) the single bytes, ordered by the code point of their
  //! byte-level spelling (printable ASCII first, as in GPT-2 and DeepSeek-V3 vocabularies); then
  //! one symbol per merge, in merge order.
  std::vector<std::string> symbols;
  //! Merge k joins symbols[left] and symbols[right] into symbols[256 + k].
  struct Merge {
    int32_t left, right;
    int64_t count;  //!< occurrences of the pair in the corpus when it was merged
  };
  std::vector<Merge> merges;
  int64_t unique_words = 0;
};

//! Learns up to options.max_merges merges from word counts. Each step merges the pair with the
//! highest count; among pairs with equal counts the one whose left symbol's raw bytes are
//! smallest (unsigned bytewise), then whose right symbol's are, wins. The result depends only on
//! the counts (not on the map's order), so the same corpus always gives the same model.
//! Stops early when no pair reaches options.min_frequency.
BpeModel train_bpe(const WordCounts& words, const BpeTrainerOptions& options);

}  // namespace dsv3::tok
