#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace dsv3::tok {

void AddedTokenSplitter::Trie::add(const std::string& s, int32_t token) {
  if (s.empty()) return;  // Hugging Face ignores empty added tokens
  first[uint8_t(s[0])] = true;
  int32_t node = 0;
  for (unsigned char c : s) {
    auto& next = nodes[size_t(node)].next;
    auto it = std::lower_bound(next.begin(), next.end(), std::pair<uint8_t, int32_t>(c, -1));
    if (it != next.end() && it->first == c) {
      node = it->second;
    } else {
      const auto child = int32_t(nodes.size());
      next.insert(it, {c, child});
      nodes.emplace_back();
      node = child;
    }
  }
  // The same content twice keeps the first token (its id is what the vocab maps it to anyway).
  if (nodes[size_t(node)].token < 0) nodes[size_t(node)].token = token;
}

int32_t AddedTokenSplitter::Trie::longest_at(std::string_view text, size_t pos, size_t& len) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& next = nodes[size_t(node)].next;
    const uint8_t c = uint8_t(text[i]);
    auto it = std::lower_bound(next.begin(), next.end(), std::pair<uint8_t, int32_t>(c, -1));
    if (it == next.end() || it->first != c) break;
    node = it->second;
    if (nodes[size_t(node)].token >= 0) {
      best = nodes[size_t(node)].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

AddedTokenSplitter::AddedTokenSplitter(const std::vector<AddedToken>& tokens)
    : tokens_(tokens), word_char_("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]") {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    if (t.content.empty()) continue;
    // The normalizers we accept are the identity, so a normalized token matches its own text.
    (t.normalized ? normalized_ : raw_).add(t.content, int32_t(i));
    (t.normalized ? any_normalized_ : any_raw_) = true;
  }
}

bool AddedTokenSplitter::is_word_char_before(std::string_view text, size_t pos) const {
  if (pos == 0) return false;
  size_t b = pos - 1;
  while (b > 0 && (uint8_t(text[b]) & 0xC0) == 0x80) --b;
  return word_char_.full_match(text.substr(b, pos - b));
}

bool AddedTokenSplitter::is_word_char_at(std::string_view text, size_t pos) const {
  if (pos >= text.size()) return false;
  size_t e = pos;
  utf8::next_codepoint(text, e);
  return word_char_.full_match(text.substr(pos, e - pos));
}

void AddedTokenSplitter::pass(const Trie& trie, std::string_view text, bool skip_special,
                              std::vector<Segment>& out) const {
  const size_t n = text.size();
  size_t start_offset = 0, pos = 0;
  while (pos < n) {
    if (!trie.first[uint8_t(text[pos])]) {
      ++pos;
      continue;
    }
    size_t len = 0;
    const int32_t t = trie.longest_at(text, pos, len);
    if (t < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + len;
    pos = stop;  // the scan consumes the match even if the checks below then drop it
    const AddedToken& tok = tokens_[size_t(t)];
    if (skip_special && tok.special) continue;
    if (tok.single_word) {
      const bool start_space = start == 0 || !is_word_char_before(text, start);
      const bool stop_space = stop == n || !is_word_char_at(text, stop);
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {  // swallow the whitespace run before the token (not before start_offset)
      size_t i = start_offset, run = start_offset;
      while (i < start) {
        if (!utf8::is_white_space(utf8::next_codepoint(text, i))) run = i;
      }
      start = std::max(run, start_offset);
    }
    if (tok.rstrip) {  // swallow the whitespace run after it; scanning resumes past it
      size_t i = stop;
      while (i < n) {
        size_t j = i;
        if (!utf8::is_white_space(utf8::next_codepoint(text, j))) break;
        i = j;
      }
      stop = pos = i;
    }
    if (start_offset < start) out.push_back({text.substr(start_offset, start - start_offset), -1});
    out.push_back({text.substr(start, stop - start), tok.id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({text.substr(start_offset), -1});
}

void AddedTokenSplitter::split(std::string_view text, bool skip_special, std::vector<Segment>& out) const {
  if (text.empty()) return;
  if (!any_raw_ && !any_normalized_) {
    out.push_back({text, -1});
    return;
  }
  if (!any_normalized_) {
    pass(raw_, text, skip_special, out);
    return;
  }
  std::vector<Segment> first;
  if (any_raw_) {
    pass(raw_, text, skip_special, first);
  } else {
    first.push_back({text, -1});
  }
  for (const Segment& s : first) {
    if (s.id >= 0) {
      out.push_back(s);
    } else {
      pass(normalized_, s.text, skip_special, out);
    }
  }
}

}  // namespace dsv3::tok
