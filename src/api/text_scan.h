// Helpers the streaming parsers share: how much of a text's tail must wait because it could
// still become a marker, and where a cut leaves whole UTF-8 sequences.
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <string_view>

namespace dsv3::api::detail {

inline bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

//! Length of the longest tail of `text` that is a proper prefix of one of `markers`.
inline size_t partial_marker_suffix(std::string_view text, std::initializer_list<std::string_view> markers) {
  size_t best = 0;
  for (std::string_view m : markers) {
    for (size_t len = std::min(text.size(), m.size() - 1); len > best; --len)
      if (text.substr(text.size() - len) == m.substr(0, len)) {
        best = len;
        break;
      }
  }
  return best;
}

//! `cut`, moved back so that text[0, cut) does not end inside a UTF-8 sequence that later
//! bytes could still complete (invalid bytes are not held: waiting cannot fix them).
inline size_t utf8_safe_cut(std::string_view text, size_t cut) {
  for (size_t back = 1; back <= 3 && back <= cut; ++back) {
    const unsigned char c = static_cast<unsigned char>(text[cut - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const size_t need = c >= 0xF0 ? (c <= 0xF4 ? 4 : 1) : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 1;
    return need > back ? cut - back : cut;
  }
  return cut;
}

}  // namespace dsv3::api::detail
