#include "chat/jinja_text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dsv3::jinja {

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int n = 0;
  char32_t cp = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    n = 1, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 2, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 3, cp = b0 & 0x07;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + size_t(n) >= s.size()) {  // truncated sequence
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k <= n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += size_t(n) + 1;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

std::vector<std::string> split_code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    next_code_point(s, i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

size_t utf16_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) n += next_code_point(s, i) >= 0x10000 ? 2 : 1;
  return n;
}

bool is_js_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

size_t js_space_at(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size()) {
    size_t k = j;
    if (!is_js_space(next_code_point(s, k))) break;
    j = k;
  }
  return j - i;
}

std::string_view js_trim_start(std::string_view s) { return s.substr(js_space_at(s, 0)); }

std::string_view js_trim_end(std::string_view s) {
  // Walk forward remembering where the last non-space code point ended (UTF-8 is not safely
  // walkable backwards when it may be invalid).
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    if (!is_js_space(next_code_point(s, i))) end = i;
  }
  return s.substr(0, end);
}

std::string_view js_trim(std::string_view s) { return js_trim_end(js_trim_start(s)); }

namespace {

// Lower-case mapping of one code point; returns false when the code point has none.
bool lower_cp(char32_t c, std::string& out) {
  char32_t r = 0;
  if (c >= 'A' && c <= 'Z') r = c + 32;
  else if (c >= 0xC0 && c <= 0xDE && c != 0xD7) r = c + 32;
  else if (c == 0x130) return out += "i\xCC\x87", true;  // İ -> i + combining dot above
  else if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
    r = (c % 2 == 0) ? c + 1 : 0;
  else if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) r = (c % 2 == 1) ? c + 1 : 0;
  else if (c == 0x178) r = 0xFF;
  else if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) r = c + 32;
  else if (c == 0x386) r = 0x3AC;
  else if (c >= 0x388 && c <= 0x38A) r = c + 37;
  else if (c == 0x38C) r = 0x3CC;
  else if (c == 0x38E || c == 0x38F) r = c + 63;
  else if (c >= 0x410 && c <= 0x42F) r = c + 32;
  else if (c >= 0x400 && c <= 0x40F) r = c + 80;
  else if (c >= 0xFF21 && c <= 0xFF3A) r = c + 32;
  if (!r) return false;
  append_utf8(out, r);
  return true;
}

bool upper_cp(char32_t c, std::string& out) {
  char32_t r = 0;
  if (c >= 'a' && c <= 'z') r = c - 32;
  else if (c >= 0xE0 && c <= 0xFE && c != 0xF7) r = c - 32;
  else if (c == 0xDF) return out += "SS", true;
  else if (c == 0xFF) r = 0x178;
  else if (c == 0xB5) r = 0x39C;
  else if (c == 0x131) r = 'I';
  else if (c == 0x17F) r = 'S';
  else if ((c >= 0x101 && c <= 0x12F) || (c >= 0x133 && c <= 0x137) || (c >= 0x14B && c <= 0x177))
    r = (c % 2 == 1) ? c - 1 : 0;
  else if ((c >= 0x13A && c <= 0x148) || (c >= 0x17A && c <= 0x17E)) r = (c % 2 == 0) ? c - 1 : 0;
  else if (c == 0x3C2) r = 0x3A3;
  else if (c >= 0x3B1 && c <= 0x3C9) r = c - 32;
  else if (c == 0x3AC) r = 0x386;
  else if (c >= 0x3AD && c <= 0x3AF) r = c - 37;
  else if (c == 0x3CC) r = 0x38C;
  else if (c == 0x3CD || c == 0x3CE) r = c - 63;
  else if (c >= 0x430 && c <= 0x44F) r = c - 32;
  else if (c >= 0x450 && c <= 0x45F) r = c - 80;
  else if (c >= 0xFF41 && c <= 0xFF5A) r = c - 32;
  if (!r) return false;
  append_utf8(out, r);
  return true;
}

template <typename F>
std::string map_case(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = next_code_point(s, i);
    if (!f(c, out)) out.append(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::string to_upper(std::string_view s) { return map_case(s, upper_cp); }
std::string to_lower(std::string_view s) { return map_case(s, lower_cp); }

std::string js_number_to_string(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x == 0) return "0";
  std::string sign = x < 0 ? "-" : "";
  // Shortest round-trip digits, as ECMAScript's Number::toString requires.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(x), std::chars_format::scientific);
  const std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  const int k = int(digits.size());
  const int n = std::atoi(sci.c_str() + e + 1) + 1;  // value = 0.digits * 10^n
  if (k <= n && n <= 21) return sign + digits + std::string(size_t(n - k), '0');
  if (0 < n && n <= 21) return sign + digits.substr(0, size_t(n)) + "." + digits.substr(size_t(n));
  if (-6 < n && n <= 0) return sign + "0." + std::string(size_t(-n), '0') + digits;
  std::string out = sign + digits.substr(0, 1);
  if (k > 1) {
    out += '.';
    out.append(digits, 1);
  }
  out += (n - 1 >= 0) ? "e+" : "e-";
  out += std::to_string(std::abs(n - 1));
  return out;
}

std::string js_float_to_string(double x) {
  if (x == 0 && std::signbit(x)) return "-0.0";
  if (std::isfinite(x) && std::floor(x) == x) {
    if (std::fabs(x) >= 1e21) return js_number_to_string(x);  // toFixed falls back to toString
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.1f", x);
    return buf;
  }
  return js_number_to_string(x);
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  static const char* hex = "0123456789abcdef";
  auto unit = [&](unsigned u) {
    out += "\\u";
    for (int sh = 12; sh >= 0; sh -= 4) out += hex[(u >> sh) & 0xF];
  };
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const size_t start = i;
    const char32_t c = next_code_point(s, i);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (c < 0x20) {
      unit(unsigned(c));
    } else if (ensure_ascii && c >= 0x7F) {
      if (c >= 0x10000) {
        unit(0xD800 + ((c - 0x10000) >> 10));
        unit(0xDC00 + ((c - 0x10000) & 0x3FF));
      } else {
        unit(unsigned(c));
      }
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += '"';
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the longest StrDecimalLiteral prefix of s (digits [. digits] [e[+-]digits], or
// .digits ...), without sign; 0 if none.
size_t decimal_prefix(std::string_view s) {
  size_t i = 0, int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && is_digit(s[j])) ++j, ++frac_digits;
    if (int_digits || frac_digits) i = j;
  }
  if (!int_digits && !frac_digits) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    const size_t d = j;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j > d) i = j;
  }
  return i;
}

double to_double(std::string_view s) { return std::strtod(std::string(s).c_str(), nullptr); }

}  // namespace

double js_parse_int(std::string_view s, bool& ok) {
  s = js_trim_start(s);
  double sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (s[0] == '-') sign = -1;
    s.remove_prefix(1);
  }
  size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  ok = n > 0;
  return ok ? sign * to_double(s.substr(0, n)) : 0;
}

double js_parse_float(std::string_view s, bool& ok) {
  s = js_trim_start(s);
  double sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    if (s[0] == '-') sign = -1;
    s.remove_prefix(1);
  }
  ok = true;
  if (s.substr(0, 8) == "Infinity") return sign * HUGE_VAL;
  const size_t n = decimal_prefix(s);
  ok = n > 0;
  return ok ? sign * to_double(s.substr(0, n)) : 0;
}

double js_string_to_number(std::string_view s) {
  s = js_trim(s);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0') {
    const int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : (s[1] == 'b' || s[1] == 'B') ? 2 : 0;
    if (base) {
      double v = 0;
      for (size_t i = 2; i < s.size(); ++i) {
        const char c = s[i];
        const int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
        if (d >= base) return NAN;
        v = v * base + d;
      }
      return v;
    }
  }
  double sign = 1;
  std::string_view body = s;
  if (body[0] == '+' || body[0] == '-') {
    if (body[0] == '-') sign = -1;
    body.remove_prefix(1);
  }
  if (body == "Infinity") return sign * HUGE_VAL;
  const size_t n = decimal_prefix(body);
  if (n == 0 || n != body.size()) return NAN;
  return sign * to_double(body);
}

}  // namespace dsv3::jinja
