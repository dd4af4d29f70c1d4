#include "sampling/segment_constraint.h"

#include <algorithm>
#include <limits>

#include "base/error.h"

namespace dsv3 {

namespace {

// Longest completion searched for: beyond this a value is left to run into max_tokens.
constexpr size_t kMaxCompletionBytes = 1 << 14;

}  // namespace

Segment Segment::of_token(int32_t id) { return Segment{Kind::Token, id, {}, nullptr}; }
Segment Segment::of_text(std::string text) { return Segment{Kind::Text, -1, std::move(text), nullptr}; }
Segment Segment::of_json(std::shared_ptr<const JsonConstraint> c) { return Segment{Kind::Json, -1, {}, std::move(c)}; }

SegmentConstraint::SegmentConstraint(std::vector<SegmentPath> paths, std::shared_ptr<const TokenVocab> vocab,
                                     std::vector<int32_t> eos, size_t n_vocab, int64_t max_tokens, size_t unmasked)
    : paths_(std::move(paths)),
      vocab_(std::move(vocab)),
      eos_(std::move(eos)),
      n_vocab_(n_vocab),
      max_tokens_(max_tokens),
      unmasked_(unmasked) {
  if (paths_.empty() || !vocab_) fail("SegmentConstraint needs at least one path and a vocabulary");
  for (const SegmentPath& p : paths_)
    for (const Segment& s : p) {
      if (s.kind == Segment::Kind::Text && s.text.empty()) fail("SegmentConstraint: empty text segment");
      if (s.kind == Segment::Kind::Json && !s.json) fail("SegmentConstraint: JSON segment without a constraint");
      if (s.kind == Segment::Kind::Token && (s.token < 0 || size_t(s.token) >= n_vocab_))
        fail("SegmentConstraint: token id ", s.token, " outside the vocabulary");
    }
  for (int32_t id : eos_)
    if (id < 0 || size_t(id) >= n_vocab_) fail("SegmentConstraint: EOS id ", id, " outside the vocabulary");
  for (size_t p = 0; p < paths_.size(); ++p) {
    Branch b;
    b.path = p;
    enter(b);
    live_.push_back(std::move(b));
  }
}

void SegmentConstraint::enter(Branch& b) const {
  const SegmentPath& path = paths_[b.path];
  while (b.seg < path.size()) {
    const Segment& s = path[b.seg];
    if (s.kind == Segment::Kind::Text && b.off >= s.text.size()) {
      ++b.seg, b.off = 0;
      continue;
    }
    if (s.kind == Segment::Kind::Json && !b.json) b.json.emplace(s.json, vocab_, std::vector<int32_t>{});
    return;
  }
}

bool SegmentConstraint::advance(Branch& b, int32_t token) const {
  if (b.ended) return false;
  const SegmentPath& path = paths_[b.path];
  if (b.seg == path.size()) {
    if (std::find(eos_.begin(), eos_.end(), token) == eos_.end()) return false;
    b.ended = true;
    return true;
  }
  const Segment& s = path[b.seg];
  switch (s.kind) {
    case Segment::Kind::Token:
      if (token != s.token) return false;
      ++b.seg;
      enter(b);
      return true;
    case Segment::Kind::Text: {
      if (token < 0 || token >= vocab_->size()) return false;
      const std::string& bytes = vocab_->bytes(token);
      if (bytes.empty() || s.text.compare(b.off, bytes.size(), bytes) != 0 || b.off + bytes.size() > s.text.size())
        return false;
      b.off += bytes.size();
      enter(b);
      return true;
    }
    case Segment::Kind::Json:
      if (b.json->accept(token)) return true;
      if (!b.json->grammar().can_end()) return false;
      b.json.reset();
      ++b.seg;
      enter(b);
      return advance(b, token);
  }
  return false;
}

int64_t SegmentConstraint::tail_tokens(const Branch& b) const {
  const SegmentPath& path = paths_[b.path];
  int64_t n = 1;  // the end-of-sequence token
  for (size_t k = b.seg + 1; k < path.size(); ++k) {
    const Segment& s = path[k];
    if (s.kind == Segment::Kind::Token) n += 1;
    else if (s.kind == Segment::Kind::Text) n += int64_t(s.text.size());  // a token per byte at worst
    else n += 2;  // "{}"-sized; paths here never put two JSON values in a row
  }
  return n;
}

void SegmentConstraint::allow_text(std::string_view text, std::vector<uint8_t>& out) const {
  const auto& trie = vocab_->trie();
  const auto& order = vocab_->order();
  uint32_t node = 0;
  for (unsigned char ch : text) {
    const TokenVocab::TrieNode& nd = trie[node];
    uint32_t next = 0;
    for (uint32_t c = nd.first_child; c < nd.first_child + nd.n_children; ++c)
      if (trie[c].byte == ch) next = c;
    if (next == 0) return;
    node = next;
    for (uint32_t k = trie[node].tok_begin; k < trie[node].term_end; ++k) out[size_t(order[k])] = 1;
  }
}

void SegmentConstraint::allow_json(const Branch& b, std::vector<uint8_t>& out) const {
  std::vector<uint8_t> js;
  b.json->allowed(js);
  const json::GrammarState& g = b.json->grammar();
  if (g.can_end()) {  // the next segment may start instead
    Branch next;
    next.path = b.path;
    next.seg = b.seg + 1;
    enter(next);
    allow_segment(next, out);
  }
  auto take_all = [&] {
    for (size_t i = 0; i < js.size() && i < out.size(); ++i) out[i] |= js[i];
  };
  const int64_t room = max_tokens_ - taken_ - tail_tokens(b);  // tokens for the rest of the value
  std::string rest;
  if (!g.completion(rest, kMaxCompletionBytes)) return take_all();  // no budget control possible
  const int64_t spare = room - int64_t(rest.size());
  if (spare - 1 >= kCheckMargin) return take_all();
  if (spare >= 1) {
    // Keep the tokens after which the value still closes in the tokens left: plain text inside
    // a string value at once, others checked one by one, the first kMaxChecks of them in id
    // order (BPE ids rank merges by frequency); the rest wait until the value is closed.
    const bool in_string = g.in_string_value();
    std::string after;
    int checks = 0;
    for (size_t id = 0; id < js.size() && id < out.size(); ++id) {
      if (!js[id] || out[id]) continue;
      if (in_string && vocab_->plain(int32_t(id))) {
        out[id] = 1;  // more characters never lengthen the way out of a string
        continue;
      }
      if (++checks > kMaxChecks) continue;
      json::GrammarState t = g;
      if (t.feed(vocab_->bytes(int32_t(id))) && t.completion(after, size_t(room - 1))) out[id] = 1;
    }
  }
  // The start of the completion itself always fits when anything does (the greedy completion
  // from a state on its own path is the rest of the same text).
  if (!rest.empty()) {
    std::vector<uint8_t> prefix(out.size(), 0);
    allow_text(rest, prefix);
    for (size_t i = 0; i < out.size() && i < js.size(); ++i) out[i] |= prefix[i] & js[i];
  }
}

void SegmentConstraint::allow_segment(const Branch& b, std::vector<uint8_t>& out) const {
  if (b.ended) return;
  const SegmentPath& path = paths_[b.path];
  if (b.seg == path.size()) {
    for (int32_t id : eos_) out[size_t(id)] = 1;
    return;
  }
  const Segment& s = path[b.seg];
  switch (s.kind) {
    case Segment::Kind::Token: out[size_t(s.token)] = 1; return;
    case Segment::Kind::Text: allow_text(std::string_view(s.text).substr(b.off), out); return;
    case Segment::Kind::Json: {
      if (b.json) return allow_json(b, out);
      Branch fresh;  // a JSON segment reached through allow_json's look-ahead
      fresh.path = b.path, fresh.seg = b.seg;
      fresh.json.emplace(s.json, vocab_, std::vector<int32_t>{});
      return allow_json(fresh, out);
    }
  }
}

void SegmentConstraint::allowed(std::vector<uint8_t>& out) const {
  out.assign(n_vocab_, 0);
  for (const Branch& b : live_) allow_segment(b, out);
}

void SegmentConstraint::mask(float* logits) const {
  if (taken_ < int64_t(unmasked_)) return;
  thread_local std::vector<uint8_t> ok;
  allowed(ok);
  const float neg = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n_vocab_; ++i)
    if (!ok[i]) logits[i] = neg;
}

void SegmentConstraint::accept(int32_t token) {
  ++taken_;
  std::erase_if(live_, [&](Branch& b) { return !advance(b, token); });
}

bool SegmentConstraint::complete() const {
  return std::any_of(live_.begin(), live_.end(), [](const Branch& b) { return b.ended; });
}

}  // namespace dsv3
