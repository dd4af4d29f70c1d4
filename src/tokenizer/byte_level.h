// GPT-2's byte-to-unicode table, which byte-level BPE vocabularies (DeepSeek-V3's included) use to
// spell arbitrary bytes as printable characters: printable Latin-1 bytes stand for themselves,
// the other 68 bytes map to U+0100.. in byte order. Vocab strings are in this spelling; text is
// not, so the encoder works on raw bytes and only the loader and decoder translate.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/utf8.h"

namespace dsv3::tok {

namespace detail {
constexpr bool byte_is_printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }
constexpr std::array<uint16_t, 256> make_byte_to_cp() {
  std::array<uint16_t, 256> t{};
  int extra = 0;
  for (int b = 0; b < 256; ++b) t[b] = uint16_t(byte_is_printable(b) ? b : 256 + extra++);
  return t;
}
}  // namespace detail

inline constexpr std::array<uint16_t, 256> kByteToCodepoint = detail::make_byte_to_cp();

//! The byte a code point stands for in the byte-level alphabet, or -1 if it is not in it.
inline int byte_of_codepoint(uint32_t cp) {
  if (cp < 256) return detail::byte_is_printable(int(cp)) ? int(cp) : -1;
  if (cp >= 256 + 68) return -1;
  for (int b = 0; b < 256; ++b)
    if (kByteToCodepoint[b] == cp) return b;
  return -1;
}

//! Byte-level spelling of raw bytes (what a vocab string looks like).
inline std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) utf8::append_codepoint(out, kByteToCodepoint[b]);
  return out;
}

//! Raw bytes spelled by a byte-level token (valid UTF-8), or nullopt if some character is not in
//! the byte-level alphabet (Hugging Face's ByteLevel decoder then keeps the token's own bytes).
inline std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const int b = byte_of_codepoint(utf8::next_codepoint(token, i));
    if (b < 0) return std::nullopt;
    out.push_back(char(b));
  }
  return out;
}

}  // namespace dsv3::tok
