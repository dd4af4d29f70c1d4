#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace dsv3::tok {

void WordCounter::add_text(std::string_view text) {
  std::string repaired;
  if (!utf8::valid(text)) {  // as encode: the pre-tokenizer's regexes need valid UTF-8
    repaired = utf8::lossy(text);
    text = repaired;
  }
  segments_.clear();
  if (splitter_) {
    splitter_->split(text, false, segments_);
  } else {
    segments_.push_back({text, -1});
  }
  for (const Segment& s : segments_) {
    if (s.id >= 0) continue;
    pieces_.clear();
    pretok_.split(s.text, pieces_);
    for (std::string_view p : pieces_) {
      auto it = counts_.find(p);
      if (it == counts_.end()) it = counts_.emplace(std::string(p), 0).first;
      ++it->second;
    }
    total_ += int64_t(pieces_.size());
  }
}

void WordCounter::merge_from(WordCounter& other) {
  if (counts_.empty()) {
    counts_.swap(other.counts_);
  } else {
    for (auto& [word, n] : other.counts_) counts_[word] += n;
  }
  total_ += other.total_;
  other.counts_.clear();
  other.total_ = 0;
}

size_t safe_cut_after(std::string_view text, size_t from) {
  for (size_t i = text.find('\n', from); i != std::string_view::npos; i = text.find('\n', i + 1)) {
    if (i + 1 < text.size() && text[i + 1] > 0x20 && text[i + 1] < 0x7F) return i + 1;
  }
  return text.size();
}

namespace {

using PairKey = uint64_t;
PairKey pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t left_of(PairKey k) { return int32_t(k >> 32); }
int32_t right_of(PairKey k) { return int32_t(k & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct HeapEntry {
  int64_t count;
  PairKey pair;
};

class Trainer {
 public:
  Trainer(const WordCounts& counts, const BpeTrainerOptions& options) : options_(options) {
    init_symbols();
    init_words(counts);
    init_pairs();
  }

  BpeModel run() {
    BpeModel model;
    model.unique_words = int64_t(words_.size());
    const size_t report_every = std::max<size_t>(1, options_.max_merges / 20);
    while (model.merges.size() < options_.max_merges && !heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      const auto it = pair_counts_.find(top.pair);
      const int64_t now = it == pair_counts_.end() ? 0 : it->second;
      if (now != top.count) {  // stale: counts only fall, so re-file it under what it is now
        if (now > 0) heap_.push({now, top.pair});
        continue;
      }
      if (now < options_.min_frequency) break;
      model.merges.push_back({left_of(top.pair), right_of(top.pair), now});
      merge(top.pair);
      if (options_.progress && model.merges.size() % report_every == 0)
        options_.progress(model.merges.size(), options_.max_merges);
    }
    if (options_.progress) options_.progress(model.merges.size(), options_.max_merges);
    model.symbols = std::move(symbols_);
    return model;
  }

 private:
  void init_symbols() {
    std::vector<int> order(256);
    for (int b = 0; b < 256; ++b) order[size_t(b)] = b;
    std::sort(order.begin(), order.end(), [](int x, int y) { return kByteToCodepoint[size_t(x)] < kByteToCodepoint[size_t(y)]; });
    for (int i = 0; i < 256; ++i) {
      byte_symbol_[size_t(order[size_t(i)])] = i;
      symbols_.push_back(std::string(1, char(order[size_t(i)])));
    }
  }

  void init_words(const WordCounts& counts) {
    // Sorted, so every container below is filled in the same order whatever the map's order.
    std::vector<const WordCounts::value_type*> sorted;
    sorted.reserve(counts.size());
    for (const auto& e : counts) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
    words_.reserve(sorted.size());
    for (const auto* e : sorted) {
      Word w;
      w.count = e->second;
      for (unsigned char c : e->first) w.symbols.push_back(byte_symbol_[c]);
      words_.push_back(std::move(w));
    }
    stamp_.assign(words_.size(), -1);
  }

  void init_pairs() {
    for (uint32_t wi = 0; wi < words_.size(); ++wi) {
      const Word& w = words_[wi];
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) add_pair(pair_key(w.symbols[i], w.symbols[i + 1]), w.count, wi);
    }
    for (const auto& [pair, count] : pair_counts_) heap_.push({count, pair});
  }

  void add_pair(PairKey p, int64_t count, uint32_t word) {
    pair_counts_[p] += count;
    std::vector<uint32_t>& where = pair_words_[p];
    if (where.empty() || where.back() != word) where.push_back(word);
  }

  void remove_pair(PairKey p, int64_t count) {
    const auto it = pair_counts_.find(p);
    DSV3_CHECK(it != pair_counts_.end() && it->second >= count);
    it->second -= count;
  }

  // Replaces every occurrence of `pair` (left to right, non-overlapping) in the words holding it
  // and moves the counts of the neighbouring pairs over to the new symbol.
  void merge(PairKey pair) {
    const int32_t a = left_of(pair), b = right_of(pair);
    const int32_t merged = int32_t(symbols_.size());
    symbols_.push_back(symbols_[size_t(a)] + symbols_[size_t(b)]);
    const int64_t step = int64_t(symbols_.size());
    merging_ = pair;
    std::vector<uint32_t> where = std::move(pair_words_[pair]);
    pair_words_.erase(pair);
    pair_counts_.erase(pair);
    touched_.clear();
    std::vector<int32_t> out;
    for (uint32_t wi : where) {
      if (stamp_[wi] == step) continue;  // listed twice
      stamp_[wi] = step;
      Word& w = words_[wi];
      const std::vector<int32_t>& s = w.symbols;
      out.clear();
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          // The left neighbour is what precedes in the new spelling, so in "a b a b" the second
          // merge sees the first's result and the pair (merged, a) it created is taken back.
          if (!out.empty()) {
            shift_pair(pair_key(out.back(), a), pair_key(out.back(), merged), w.count, wi);
          }
          if (i + 2 < s.size()) shift_pair(pair_key(b, s[i + 2]), pair_key(merged, s[i + 2]), w.count, wi);
          out.push_back(merged);
          i += 2;
        } else {
          out.push_back(s[i]);
          ++i;
        }
      }
      w.symbols.assign(out.begin(), out.end());
    }
    // Only pairs with the new symbol can have grown; file each once under its final count.
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    for (PairKey p : touched_) {
      const auto it = pair_counts_.find(p);
      if (it != pair_counts_.end() && it->second > 0) heap_.push({it->second, p});
    }
  }

  // One occurrence of `from` (a pair next to a merge site) becomes one of `to`. `from` may be
  // the pair being merged (in "a a a" merging (a, a), the second a's pair with the third), whose
  // counts are already gone.
  void shift_pair(PairKey from, PairKey to, int64_t count, uint32_t word) {
    if (from != merging_) remove_pair(from, count);
    add_pair(to, count, word);
    touched_.push_back(to);
  }

  // Heap order: higher count first; on a tie the smaller (left bytes, right bytes) first.
  struct Less {
    const std::vector<std::string>* symbols;
    bool operator()(const HeapEntry& x, const HeapEntry& y) const {
      if (x.count != y.count) return x.count < y.count;
      const std::string& xl = (*symbols)[size_t(left_of(x.pair))];
      const std::string& yl = (*symbols)[size_t(left_of(y.pair))];
      if (const int c = compare_bytes(xl, yl); c != 0) return c > 0;
      return compare_bytes((*symbols)[size_t(right_of(x.pair))], (*symbols)[size_t(right_of(y.pair))]) > 0;
    }
    static int compare_bytes(const std::string& x, const std::string& y) {
      // memcmp compares unsigned bytes (std::string's char may be signed).
      const int c = std::memcmp(x.data(), y.data(), std::min(x.size(), y.size()));
      return c != 0 ? c : (x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0);
    }
  };

  const BpeTrainerOptions& options_;
  int32_t byte_symbol_[256] = {};
  std::vector<std::string> symbols_;
  std::vector<Word> words_;
  std::vector<int64_t> stamp_;  // per word: the merge step that last rewrote it
  std::unordered_map<PairKey, int64_t> pair_counts_;
  std::unordered_map<PairKey, std::vector<uint32_t>> pair_words_;  // may list words that lost the pair
  std::vector<PairKey> touched_;
  PairKey merging_ = 0;
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, Less> heap_{Less{&symbols_}};
};

}  // namespace

BpeModel train_bpe(const WordCounts& words, const BpeTrainerOptions& options) {
  return Trainer(words, options).run();
}

}  // namespace dsv3::tok
