// UTF-8 helpers for the tokenizer: validation, lossy decoding with U+FFFD exactly as Rust's
// String::from_utf8_lossy (which Hugging Face decode uses), and the "complete prefix" test the
// streaming detokenizer needs. Header-only: these sit on the hot path of encode and decode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsv3::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

//! What the bytes at the front of a buffer are.
struct Step {
  enum Kind { Valid, Invalid, Incomplete } kind;
  size_t len;  //!< Valid: sequence length; Invalid: maximal ill-formed subpart; Incomplete: all bytes
};

//! Classifies the sequence at p[0, n) (n > 0). Invalid lengths follow the Unicode "maximal subpart"
//! rule (one U+FFFD per maximal prefix of a well-formed sequence), which is what from_utf8_lossy
//! and the WHATWG decoder implement, so lossy output matches Hugging Face byte for byte.
inline Step step(const uint8_t* p, size_t n) {
  const uint8_t b = p[0];
  if (b < 0x80) return {Step::Valid, 1};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;  // no overlong forms
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {Step::Invalid, 1};
  }
  for (size_t k = 1; k < need; ++k) {
    if (k >= n) return {Step::Incomplete, n};
    const uint8_t c = p[k];
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return {Step::Invalid, k};
  }
  return {Step::Valid, need};
}

//! True if s is well-formed UTF-8.
inline bool valid(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) { ++i; continue; }
    const Step st = step(p + i, n - i);
    if (st.kind != Step::Valid) return false;
    i += st.len;
  }
  return true;
}

//! Appends the lossy decoding of s to out. With final = false, a trailing sequence that is
//! incomplete but could still become valid is left unconsumed; returns the bytes consumed.
inline size_t append_lossy(std::string& out, std::string_view s, bool final = true) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    if (p[i] < 0x80) { out.push_back(char(p[i])); ++i; continue; }
    const Step st = step(p + i, n - i);
    if (st.kind == Step::Valid) {
      out.append(s.data() + i, st.len);
    } else if (st.kind == Step::Invalid || final) {
      out.append(kReplacement);
    } else {
      return i;  // incomplete tail: wait for more bytes
    }
    i += st.len;
  }
  return n;
}

//! The lossy decoding of s (every maximal ill-formed subpart becomes U+FFFD).
inline std::string lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_lossy(out, s, true);
  return out;
}

//! Appends the UTF-8 encoding of code point cp (cp must be a scalar value).
inline void append_codepoint(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

//! Decodes the code point at s[i] of valid UTF-8 and advances i past it.
inline uint32_t next_codepoint(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t b = p[i];
  if (b < 0x80) { i += 1; return b; }
  if (b < 0xE0) { const uint32_t c = ((b & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu); i += 2; return c; }
  if (b < 0xF0) {
    const uint32_t c = ((b & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) | (p[i + 2] & 0x3Fu);
    i += 3;
    return c;
  }
  const uint32_t c =
      ((b & 0x07u) << 18) | ((p[i + 1] & 0x3Fu) << 12) | ((p[i + 2] & 0x3Fu) << 6) | (p[i + 3] & 0x3Fu);
  i += 4;
  return c;
}

//! Unicode White_Space (what Rust's char::is_whitespace and regex `\s` mean).
inline bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace dsv3::utf8
