#include "sampling/token_mask.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <numeric>

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace dsv3 {

namespace {

// ok[p]: bytes s[p..] are plain string content: complete, valid UTF-8 characters other than
// controls, '"' and '\\' (what json_grammar accepts inside a string without changing state).
std::vector<uint8_t> plain_suffixes(const std::string& s) {
  const size_t n = s.size();
  std::vector<uint8_t> ok(n + 1, 0);
  ok[n] = 1;
  for (size_t p = n; p-- > 0;) {
    const uint8_t c = static_cast<uint8_t>(s[p]);
    if (c < 0x80) {
      ok[p] = c >= 0x20 && c != '"' && c != '\\' && ok[p + 1];
      continue;
    }
    size_t more = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) more = 1;
    else if (c == 0xE0) more = 2, lo = 0xA0;
    else if (c == 0xED) more = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) more = 2;
    else if (c == 0xF0) more = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) more = 3;
    else if (c == 0xF4) more = 3, hi = 0x8F;
    else continue;  // a continuation byte or an invalid lead: not a character start
    if (p + more >= n) continue;  // cut off by the token's end
    bool good = true;
    for (size_t k = 1; k <= more && good; ++k) {
      const uint8_t d = static_cast<uint8_t>(s[p + k]);
      good = k == 1 ? (d >= lo && d <= hi) : (d >= 0x80 && d <= 0xBF);
    }
    ok[p] = good && ok[p + more + 1];
  }
  return ok;
}

}  // namespace

TokenVocab::TokenVocab(const Tokenizer& tok) {
  const auto& impl = tok.impl();
  bytes_.resize(tok.vocab_size());
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (impl.kind[id] == Tokenizer::Impl::kVocab) bytes_[id] = impl.bytes[id];
  build();
}

TokenVocab::TokenVocab(std::vector<std::string> token_bytes) : bytes_(std::move(token_bytes)) { build(); }

void TokenVocab::build() {
  for (int32_t id = 0; id < size(); ++id)
    if (!bytes_[id].empty()) order_.push_back(id);
  std::sort(order_.begin(), order_.end(), [&](int32_t x, int32_t y) {
    return bytes_[x] != bytes_[y] ? bytes_[x] < bytes_[y] : x < y;
  });
  // Per token (in trie order), where its plain suffixes start.
  std::vector<std::vector<uint8_t>> plain(order_.size());
  auto char_starts = [](std::string_view s) {
    uint32_t n = 0;
    for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
    return n;
  };
  chars_.resize(order_.size());
  plain_.assign(bytes_.size(), 0);
  for (size_t i = 0; i < order_.size(); ++i) {
    const std::string& s = bytes_[order_[i]];
    plain[i] = plain_suffixes(s);
    plain_[size_t(order_[i])] = plain[i][0];
    max_len_ = std::max(max_len_, s.size());
    chars_[i] = static_cast<uint16_t>(std::min<uint32_t>(char_starts(s), 0xFFFF));
  }
  // Breadth-first, so each node's children are contiguous. A node at depth d covers the tokens
  // [tok_begin, tok_end) of order_, all sharing their first d bytes.
  struct Pending {
    uint32_t node, depth;
  };
  trie_.emplace_back();
  trie_[0].tok_end = static_cast<uint32_t>(order_.size());
  std::deque<Pending> queue = {{0, 0}};
  while (!queue.empty()) {
    const Pending p = queue.front();
    queue.pop_front();
    TrieNode& nd = trie_[p.node];
    const uint32_t e = nd.tok_end;
    uint32_t i = nd.tok_begin;
    bool all_plain = true;
    for (uint32_t k = nd.tok_begin; k < e; ++k) {
      const std::string& s = bytes_[order_[k]];
      all_plain = all_plain && plain[k][p.depth];
      nd.max_suffix = std::max<uint32_t>(nd.max_suffix, static_cast<uint32_t>(s.size() - p.depth));
    }
    nd.plain = all_plain;
    if (nd.tok_begin < e) nd.prefix_chars = char_starts(std::string_view(bytes_[order_[nd.tok_begin]]).substr(0, p.depth));
    while (i < e && bytes_[order_[i]].size() == p.depth) ++i;
    nd.term_end = i;
    const uint32_t first = static_cast<uint32_t>(trie_.size());
    uint16_t count = 0;
    while (i < e) {
      const uint8_t b = static_cast<uint8_t>(bytes_[order_[i]][p.depth]);
      uint32_t j = i;
      while (j < e && static_cast<uint8_t>(bytes_[order_[j]][p.depth]) == b) ++j;
      TrieNode child;
      child.byte = b;
      child.tok_begin = i;
      child.tok_end = j;
      queue.push_back({static_cast<uint32_t>(trie_.size()), p.depth + 1});
      trie_.push_back(child);
      ++count;
      i = j;
    }
    trie_[p.node].first_child = first;  // trie_ may have moved: no `nd` from here on
    trie_[p.node].n_children = count;
  }
}

JsonState::JsonState(std::shared_ptr<const JsonConstraint> constraint, std::shared_ptr<const TokenVocab> vocab,
                     std::vector<int32_t> eos_ids)
    : constraint_(std::move(constraint)), vocab_(std::move(vocab)), eos_(std::move(eos_ids)) {
  if (!constraint_ || !vocab_) fail("JsonState needs a constraint and a vocabulary");
  for (int32_t id : eos_)
    if (id < 0) fail("JsonState: negative EOS id ", id);
  grammar_ = json::GrammarState(*constraint_);
  path_.resize(vocab_->max_token_bytes() + 1);
}

bool JsonState::is_eos(int32_t id) const { return std::find(eos_.begin(), eos_.end(), id) != eos_.end(); }

void JsonState::walk(uint32_t node, size_t depth) const {
  const auto& trie = vocab_->trie();
  const auto& order = vocab_->order();
  const auto& chars = vocab_->char_starts();
  std::vector<uint8_t>& out = *out_;
  const TokenVocab::TrieNode& nd = trie[node];
  for (uint32_t ci = nd.first_child; ci < nd.first_child + nd.n_children; ++ci) {
    const TokenVocab::TrieNode& ch = trie[ci];
    json::GrammarState& next = path_[depth + 1];
    if (!path_[depth].step(ch.byte, next)) continue;
    // Inside a string, below a node whose every suffix is plain text: a token fits exactly when
    // its remaining characters do, so the subtree needs no grammar steps.
    const uint32_t budget = ch.plain ? next.plain_string_budget() : 0;
    if (budget > 0) {
      if (budget >= ch.max_suffix) {
        for (uint32_t k = ch.tok_begin; k < ch.tok_end; ++k) out[order[k]] = 1;
      } else {
        for (uint32_t k = ch.tok_begin; k < ch.tok_end; ++k)
          if (chars[k] - ch.prefix_chars <= budget) out[order[k]] = 1;
      }
      continue;
    }
    for (uint32_t k = ch.tok_begin; k < ch.term_end; ++k) out[order[k]] = 1;
    if (ch.n_children) walk(ci, depth + 1);
  }
}

void JsonState::allowed(std::vector<uint8_t>& out) const {
  size_t n = vocab_->size();
  for (int32_t id : eos_) n = std::max(n, static_cast<size_t>(id) + 1);
  out.assign(n, 0);
  if (ended_) return;
  if (!grammar_.finished()) {
    path_[0] = grammar_;
    out_ = &out;
    walk(0, 0);
    out_ = nullptr;
  }
  const bool any = std::find(out.begin(), out.end(), 1) != out.end();
  if (!any || grammar_.can_end())
    for (int32_t id : eos_) out[id] = 1;
}

void JsonState::mask(float* logits, size_t n) const {
  thread_local std::vector<uint8_t> ok;
  allowed(ok);
  const float neg = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i)
    if (i >= ok.size() || !ok[i]) logits[i] = neg;
}

bool JsonState::accept(int32_t token) {
  if (ended_) return false;
  if (is_eos(token)) {
    if (!grammar_.can_end()) return false;
    ended_ = true;
    return true;
  }
  if (token < 0 || token >= vocab_->size() || vocab_->bytes(token).empty()) return false;
  return grammar_.feed(vocab_->bytes(token));
}

bool JsonState::accept_text(std::string_view bytes) {
  if (ended_) return false;
  return grammar_.feed(bytes);
}

}  // namespace dsv3
