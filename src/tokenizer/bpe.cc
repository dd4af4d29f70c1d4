#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <mutex>

#include "base/error.h"

namespace dsv3::tok {

// Open-addressing hash table (linear probing) from a packed (left, right) id pair to its rank
// and merged id: one cache line per probe instead of std::unordered_map's node chasing, since
// the merge loop does little else than look pairs up.
struct Bpe::PairTable {
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0, result = 0;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  std::vector<Slot> slots;
  uint64_t mask = 0;

  static uint64_t key_of(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  static uint64_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
  }
  explicit PairTable(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;  // load factor <= 1/2 keeps probe runs short
    slots.resize(cap);
    mask = cap - 1;
  }
  void put(uint64_t key, int32_t rank, int32_t result) {
    for (uint64_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == kEmpty || slots[i].key == key) {
        slots[i] = {key, rank, result};
        return;
      }
    }
  }
  const Slot* get(uint64_t key) const {
    for (uint64_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (slots[i].key == key) return &slots[i];
      if (slots[i].key == kEmpty) return nullptr;
    }
  }
};

// Words repeat a lot in real text; caching their ids skips the merge loop. Sharded so threads
// encoding concurrently rarely meet on a lock; bounded, and once a shard is full it stops
// inserting (as Hugging Face's cache does) rather than evicting.
struct Bpe::Cache {
  static constexpr size_t kShards = 64, kPerShard = 8192, kMaxWordBytes = 256;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> map;
  };
  Shard shards[kShards];
};

Bpe::Bpe(const std::vector<int32_t>& byte_ids, const std::vector<Merge>& merges, int32_t unk_id,
         std::unordered_map<std::string, int32_t> whole_words)
    : byte_ids_(byte_ids),
      merges_(merges),
      unk_id_(unk_id),
      whole_words_(std::move(whole_words)),
      pairs_(std::make_unique<PairTable>(merges.size())),
      cache_(std::make_unique<Cache>()) {
  byte_ids_.resize(256, -1);
  for (size_t r = 0; r < merges.size(); ++r)
    pairs_->put(PairTable::key_of(merges[r].left, merges[r].right), int32_t(r), merges[r].result);
  // Monotone ranks: every token a merge consumes is produced only by lower-ranked merges (true of
  // any trained merge list). Then a merge only ever creates pairs of higher rank than its own,
  // which is what lets the radix heap (a monotone queue) replace the binary one.
  auto effective = [&](size_t r) {
    return pairs_->get(PairTable::key_of(merges[r].left, merges[r].right))->rank == int32_t(r);
  };
  std::unordered_map<int32_t, int32_t> made_by;  // token -> highest rank of a merge producing it
  for (size_t r = 0; r < merges.size(); ++r)
    if (effective(r)) made_by[merges[r].result] = int32_t(r);
  auto maker = [&](int32_t token) {
    const auto it = made_by.find(token);
    return it == made_by.end() ? -1 : it->second;
  };
  monotone_ = true;
  for (size_t r = 0; r < merges.size() && monotone_; ++r)
    if (effective(r) && (maker(merges[r].left) >= int32_t(r) || maker(merges[r].right) >= int32_t(r)))
      monotone_ = false;
}

Bpe::~Bpe() = default;

int32_t Bpe::pair_rank(int32_t left, int32_t right, int32_t& result) const {
  const PairTable::Slot* s = pairs_->get(PairTable::key_of(left, right));
  if (!s) return INT32_MAX;
  result = s->result;
  return s->rank;
}

namespace {

// Min-priority queues of (rank << 32 | position) keys for the long-word merge loop.
struct BinaryHeap {
  std::vector<uint64_t> v;
  void clear() { v.clear(); }
  bool empty() const { return v.empty(); }
  void push(uint64_t x) {
    v.push_back(x);
    std::push_heap(v.begin(), v.end(), std::greater<>());
  }
  uint64_t pop() {
    std::pop_heap(v.begin(), v.end(), std::greater<>());
    const uint64_t x = v.back();
    v.pop_back();
    return x;
  }
};

// Radix heap: a monotone priority queue (no key pushed may be below the last one popped). Keys
// live in buckets by the highest bit in which they differ from the last popped key; a pop only
// redistributes one bucket, so each key moves O(1) times on average instead of sifting through
// log n levels with unpredictable branches.
struct RadixHeap {
  std::vector<uint64_t> b[65];
  uint64_t last = 0;
  size_t n = 0;
  static int bucket(uint64_t x, uint64_t last) { return x == last ? 0 : 64 - __builtin_clzll(x ^ last); }
  void clear() {
    for (auto& v : b) v.clear();
    last = 0;
    n = 0;
  }
  bool empty() const { return n == 0; }
  void push(uint64_t x) {
    b[bucket(x, last)].push_back(x);
    ++n;
  }
  uint64_t pop() {
    if (b[0].empty()) {
      int i = 1;
      while (b[i].empty()) ++i;
      last = *std::min_element(b[i].begin(), b[i].end());
      for (uint64_t x : b[i]) b[bucket(x, last)].push_back(x);
      b[i].clear();
    }
    --n;
    const uint64_t x = b[0].back();
    b[0].pop_back();
    return x;
  }
};

}  // namespace

template <typename Queue>
void Bpe::merge_with_queue(std::vector<int32_t>& ids, Queue& q, std::vector<int32_t>& out) const {
  // A doubly linked list of symbols, as Hugging Face's Word::merge_all: the queue yields the
  // lowest (rank, position) pair, leftmost on equal ranks; an entry made stale by an earlier
  // merge is recognised on pop (its position no longer holds the rank's pair) and skipped.
  thread_local std::vector<int32_t> prev, next;
  const size_t n = ids.size();
  prev.resize(n);
  next.resize(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }
  int32_t res = 0;
  auto push = [&](int32_t pos) {
    const int32_t r = pair_rank(ids[size_t(pos)], ids[size_t(next[size_t(pos)])], res);
    if (r != INT32_MAX) q.push((uint64_t(uint32_t(r)) << 32) | uint32_t(pos));
  };
  q.clear();
  for (size_t i = 0; i + 1 < n; ++i) push(int32_t(i));
  constexpr int32_t kDead = -2;  // prev[] of a symbol merged into its left neighbour
  while (!q.empty()) {
    const uint64_t top = q.pop();
    const auto r = int32_t(top >> 32), p = int32_t(uint32_t(top));
    const int32_t nx = next[size_t(p)];
    if (prev[size_t(p)] == kDead || nx < 0) continue;
    const Merge& mg = merges_[size_t(r)];
    if (ids[size_t(p)] != mg.left || ids[size_t(nx)] != mg.right) continue;
    ids[size_t(p)] = mg.result;
    prev[size_t(nx)] = kDead;
    next[size_t(p)] = next[size_t(nx)];
    if (next[size_t(p)] >= 0) prev[size_t(next[size_t(p)])] = p;
    if (prev[size_t(p)] >= 0) push(prev[size_t(p)]);
    if (next[size_t(p)] >= 0) push(p);
  }
  for (int32_t i = 0; i >= 0; i = next[size_t(i)]) out.push_back(ids[size_t(i)]);
}

void Bpe::merge_word(std::string_view bytes, std::vector<int32_t>& out, MergeLoop loop) const {
  // Scratch reused across calls (per thread): this runs once per distinct word, often enough
  // that allocating here would show.
  thread_local std::vector<int32_t> ids, rank, result;
  thread_local BinaryHeap binary_heap;
  thread_local RadixHeap radix_heap;

  // Initial symbols: one per byte. A byte without a token becomes unk (or is dropped).
  ids.clear();
  for (unsigned char b : bytes) {
    const int32_t id = byte_ids_[b] >= 0 ? byte_ids_[b] : unk_id_;
    if (id >= 0) ids.push_back(id);
  }
  const size_t n = ids.size();
  if (n <= 1) {
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  if (loop == MergeLoop::kAuto) loop = n < 64 ? MergeLoop::kScan : monotone_ ? MergeLoop::kRadix : MergeLoop::kHeap;
  if (loop == MergeLoop::kRadix) {
    DSV3_CHECK(monotone_, "the radix-heap merge loop needs merges whose inputs come from lower ranks");
    merge_with_queue(ids, radix_heap, out);
    return;
  }
  if (loop == MergeLoop::kHeap) {
    merge_with_queue(ids, binary_heap, out);
    return;
  }

  // Array scan: rank[i] is the rank of pair (ids[i], ids[i+1]); each step merges the minimum
  // (leftmost on ties) and refreshes only the two neighbouring ranks. O(n^2) worst case but
  // with tiny constants, which wins for the short words that make up most text.
  rank.resize(n - 1);
  result.resize(n - 1);
  for (size_t i = 0; i + 1 < n; ++i) rank[i] = pair_rank(ids[i], ids[i + 1], result[i]);
  size_t m = n;
  for (;;) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < m; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT32_MAX) break;
    ids[best] = result[best];
    ids.erase(ids.begin() + long(best) + 1);
    rank.erase(rank.begin() + long(best));
    result.erase(result.begin() + long(best));
    --m;
    if (m == 1) break;
    if (best > 0) rank[best - 1] = pair_rank(ids[best - 1], ids[best], result[best - 1]);
    if (best + 1 < m) rank[best] = pair_rank(ids[best], ids[best + 1], result[best]);
  }
  out.insert(out.end(), ids.begin(), ids.begin() + long(m));
}

void Bpe::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.size() == 1) {  // most common case after pre-tokenization: no merge possible
    const int32_t id = byte_ids_[uint8_t(bytes[0])] >= 0 ? byte_ids_[uint8_t(bytes[0])] : unk_id_;
    if (id >= 0) out.push_back(id);
    return;
  }
  if (!whole_words_.empty()) {
    const auto it = whole_words_.find(std::string(bytes));
    if (it != whole_words_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (bytes.size() > Cache::kMaxWordBytes) {  // as Hugging Face: long words are not cached
    merge_word(bytes, out);
    return;
  }
  const size_t h = Cache::Hash{}(bytes);
  Cache::Shard& shard = cache_->shards[(h >> 7) % Cache::kShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    const auto it = shard.map.find(bytes);
    if (it != shard.map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(bytes, out);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() < Cache::kPerShard)
    shard.map.emplace(std::string(bytes), std::vector<int32_t>(out.begin() + long(first), out.end()));
}

}  // namespace dsv3::tok
