// Byte-level BPE merges by rank, as Hugging Face's BPE model applies them: starting from one
// symbol per byte, repeatedly merge the adjacent pair with the lowest merge rank (leftmost on a
// tie) until no adjacent pair has a merge. Works on token ids throughout: the pair table maps
// (left id, right id) to (rank, merged id), so encoding never builds or hashes vocab strings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsv3::tok {

//! One merge rule in id space: left + right -> result, applied in order of rank (its index).
struct Merge {
  int32_t left, right, result;
};

class Bpe {
 public:
  //! byte_ids[b]: id of the single-byte token for byte b, or -1 if the vocab lacks it (such bytes
  //! become unk_id, or are dropped when unk_id < 0, as in Hugging Face). merges in rank order; a
  //! pair listed twice keeps its last rank, like the HashMap Hugging Face builds.
  //! whole_words (ignore_merges): raw bytes -> id for words looked up whole before merging.
  Bpe(const std::vector<int32_t>& byte_ids, const std::vector<Merge>& merges, int32_t unk_id,
      std::unordered_map<std::string, int32_t> whole_words = {});
  ~Bpe();
  Bpe(const Bpe&) = delete;
  Bpe& operator=(const Bpe&) = delete;

  //! Appends the ids of one pre-token (raw bytes) to out. Thread-safe; words seen before are
  //! answered from a bounded cache.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  //! The merge loops; kAuto picks by word length. All must give the same ids (tested):
  //! kScan: array scan, O(n^2), fastest for short words; kHeap: binary heap, O(n log n);
  //! kRadix: radix heap, faster still for long words, valid only when is_monotone().
  enum class MergeLoop { kAuto, kScan, kHeap, kRadix };
  //! Appends the ids of one word, bypassing the cache.
  void merge_word(std::string_view bytes, std::vector<int32_t>& out, MergeLoop loop = MergeLoop::kAuto) const;
  //! Every merge's inputs are produced only by lower-ranked merges (checked at construction).
  bool is_monotone() const { return monotone_; }

 private:
  struct PairTable;
  struct Cache;
  int32_t pair_rank(int32_t left, int32_t right, int32_t& result) const;
  template <typename Queue>
  void merge_with_queue(std::vector<int32_t>& ids, Queue& q, std::vector<int32_t>& out) const;

  std::vector<int32_t> byte_ids_;
  std::vector<Merge> merges_;  // by rank: what a heap entry's rank must still find at its position
  int32_t unk_id_;
  bool monotone_ = false;
  std::unordered_map<std::string, int32_t> whole_words_;
  std::unique_ptr<PairTable> pairs_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace dsv3::tok
