#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "chat/jinja_text.h"

namespace dsv3::jinja {

std::string where(const std::string& name, Pos pos) {
  return name + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col) + ": ";
}

namespace {

// Text after preprocessing, with the offset in the original source of every byte (and one
// more entry for the end), so tokens report where they were written.
struct Mapped {
  std::string s;
  std::vector<uint32_t> off;

  void push(char c, uint32_t o) {
    s += c;
    off.push_back(o);
  }
  void truncate(size_t n) {
    s.resize(n);
    off.resize(n);
  }
};

bool at(std::string_view s, size_t i, std::string_view what) { return s.substr(i, what.size()) == what; }

// True when s[i] starts a line for JavaScript's multiline ^ (after \n \r U+2028 U+2029).
bool line_start(std::string_view s, size_t i) {
  if (i == 0) return true;
  const char p = s[i - 1];
  if (p == '\n' || p == '\r') return true;
  return i >= 3 && (at(s, i - 3, "\xE2\x80\xA8") || at(s, i - 3, "\xE2\x80\xA9"));
}

// template.replace(/^[ \t]*({[#%-])/gm, "$1")
Mapped lstrip_blocks(const Mapped& in) {
  Mapped out;
  const std::string& s = in.s;
  for (size_t i = 0; i < s.size();) {
    if (line_start(s, i)) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-')) {
        out.push(s[j], in.off[j]);
        out.push(s[j + 1], in.off[j + 1]);
        i = j + 2;
        continue;
      }
    }
    out.push(s[i], in.off[i]);
    ++i;
  }
  out.off.push_back(in.off.back());
  return out;
}

// template.replace(/([#%-]})\n/g, "$1")
Mapped trim_blocks(const Mapped& in) {
  Mapped out;
  const std::string& s = in.s;
  for (size_t i = 0; i < s.size();) {
    if ((s[i] == '#' || s[i] == '%' || s[i] == '-') && at(s, i + 1, "}\n")) {
      out.push(s[i], in.off[i]);
      out.push(s[i + 1], in.off[i + 1]);
      i += 3;
      continue;
    }
    out.push(s[i], in.off[i]);
    ++i;
  }
  out.off.push_back(in.off.back());
  return out;
}

// Length of a {%-? \s* (end)?generation \s* -?%} tag at s[i] (0 if none); lstrip / rstrip
// tell whether it has the - markers.
size_t generation_tag(std::string_view s, size_t i, bool& lstrip, bool& rstrip) {
  if (!at(s, i, "{%")) return 0;
  size_t j = i + 2;
  lstrip = j < s.size() && s[j] == '-';
  if (lstrip) ++j;
  j += js_space_at(s, j);
  if (at(s, j, "end")) j += 3;
  if (!at(s, j, "generation")) return 0;
  j += 10;
  j += js_space_at(s, j);
  rstrip = j < s.size() && s[j] == '-';
  if (rstrip) ++j;
  if (!at(s, j, "%}")) return 0;
  return j + 2 - i;
}

// transformers' {% generation %} / {% endgeneration %} markers are removed, with the
// whitespace around them when they carry - markers.
Mapped strip_generation_tags(const Mapped& in) {
  const std::string& s = in.s;
  if (s.find("generation") == std::string::npos) return in;
  Mapped out;
  size_t ws_start = std::string::npos;  // where the whitespace run before i began in `out`
  for (size_t i = 0; i < s.size();) {
    bool lstrip = false, rstrip = false;
    if (const size_t n = generation_tag(s, i, lstrip, rstrip)) {
      if (lstrip && ws_start != std::string::npos) out.truncate(ws_start);
      i += n;
      const size_t after = js_space_at(s, i);
      if (!rstrip)
        for (size_t k = i; k < i + after; ++k) out.push(s[k], in.off[k]);
      i += after;
      ws_start = std::string::npos;
      continue;
    }
    const size_t sp = js_space_at(s, i);
    const size_t len = sp ? sp : 1;
    if (sp && ws_start == std::string::npos) ws_start = out.s.size();
    if (!sp) ws_start = std::string::npos;
    for (size_t k = i; k < i + len; ++k) out.push(s[k], in.off[k]);
    i += len;
  }
  out.off.push_back(in.off.back());
  return out;
}

Mapped preprocess(const std::string& source) {
  Mapped m;
  m.s = source;
  m.off.resize(source.size() + 1);
  for (size_t i = 0; i <= source.size(); ++i) m.off[i] = uint32_t(i);
  if (!m.s.empty() && m.s.back() == '\n') {
    m.s.pop_back();
    m.off.erase(m.off.end() - 2);  // keep the end sentinel
  }
  return strip_generation_tags(trim_blocks(lstrip_blocks(m)));
}

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : source_(source), name_(name) {
    for (size_t i = 0; i < source.size(); ++i)
      if (source[i] == '\n') line_starts_.push_back(uint32_t(i + 1));
    m_ = preprocess(source);
  }

  std::vector<Token> run() {
    const std::string& src = m_.s;
    while (c_ < src.size()) {
      const Tok last = tokens_.empty() ? Tok::End : tokens_.back().type;
      if (tokens_.empty() || last == Tok::CloseStmt || last == Tok::CloseExpr || last == Tok::Comment) {
        const size_t start = c_;
        while (c_ < src.size() && !(src[c_] == '{' && c_ + 1 < src.size() &&
                                    (src[c_ + 1] == '%' || src[c_ + 1] == '{' || src[c_ + 1] == '#')))
          ++c_;
        if (c_ > start) {
          push(Tok::Text, src.substr(start, c_ - start), start);
          continue;
        }
      }
      if (at(src, c_, "{#")) {
        lex_comment();
        continue;
      }
      if (at(src, c_, "{%-") || at(src, c_, "{{-")) {
        strip_trailing_whitespace();
        const bool stmt = src[c_ + 1] == '%';
        push(stmt ? Tok::OpenStmt : Tok::OpenExpr, stmt ? "{%" : "{{", c_);
        if (!stmt) curly_depth_ = 0;
        c_ += 3;
        continue;
      }
      c_ += js_space_at(src, c_);
      if (c_ >= src.size()) break;
      if (at(src, c_, "-%}") || at(src, c_, "-}}")) {
        const bool stmt = src[c_ + 1] == '%';
        push(stmt ? Tok::CloseStmt : Tok::CloseExpr, stmt ? "%}" : "}}", c_);
        c_ += 3;
        c_ += js_space_at(src, c_);
        continue;
      }
      lex_token();
    }
    tokens_.push_back(Token{Tok::End, "", pos_at(c_)});
    return std::move(tokens_);
  }

 private:
  Pos pos_at(size_t i) {
    const uint32_t off = m_.off[std::min(i, m_.off.size() - 1)];
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), off);
    const uint32_t line_start = it == line_starts_.begin() ? 0 : *(it - 1);
    const int line = int(it - line_starts_.begin()) + 1;
    // Tokens come in source order, so continue counting columns from the previous one.
    size_t k = line_start;
    int col = 1;
    if (cache_line_ == line && cache_off_ <= off) k = cache_off_, col = cache_col_;
    while (k < off) {
      next_code_point(source_, k);
      ++col;
    }
    cache_line_ = line, cache_off_ = k, cache_col_ = col;
    return Pos{line, col};
  }

  [[noreturn]] void error(size_t i, const std::string& msg) { fail(where(name_, pos_at(i)), msg); }

  void push(Tok t, std::string value, size_t i) { tokens_.push_back(Token{t, std::move(value), pos_at(i)}); }

  void strip_trailing_whitespace() {
    if (tokens_.empty() || tokens_.back().type != Tok::Text) return;
    std::string& v = tokens_.back().value;
    v.resize(js_trim_end(v).size());
    if (v.empty()) tokens_.pop_back();
  }

  void lex_comment() {
    const std::string& src = m_.s;
    const size_t start = c_;
    c_ += 2;
    const bool strip_before = c_ < src.size() && src[c_] == '-';
    if (strip_before) ++c_;
    const size_t end = src.find("#}", c_);
    if (end == std::string::npos) error(start, "unclosed comment: missing '#}'");
    std::string comment = src.substr(c_, end - c_);
    const bool strip_after = !comment.empty() && comment.back() == '-';
    if (strip_after) comment.pop_back();
    if (strip_before) strip_trailing_whitespace();
    push(Tok::Comment, std::move(comment), start);
    c_ = end + 2;
    if (strip_after) c_ += js_space_at(src, c_);
  }

  static bool is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  std::string digits() {
    const size_t start = c_;
    while (c_ < m_.s.size() && is_digit(m_.s[c_])) ++c_;
    return m_.s.substr(start, c_ - start);
  }

  void lex_token() {
    const std::string& src = m_.s;
    const size_t start = c_;
    const char ch = src[c_];
    if (ch == '-' || ch == '+') {
      const Tok last = tokens_.empty() ? Tok::Text : tokens_.back().type;
      if (last == Tok::Text) error(c_, std::string("unexpected character '") + ch + "'");
      if (last != Tok::Ident && last != Tok::Number && last != Tok::String && last != Tok::RParen &&
          last != Tok::RBracket) {
        ++c_;  // a sign in front of an operand: (-1), [-1], not -x
        std::string num = digits();
        if (!num.empty() && c_ + 1 < src.size() && src[c_] == '.' && is_digit(src[c_ + 1])) {
          ++c_;
          num += '.';
          num += digits();
        }
        push(num.empty() ? Tok::Unary : Tok::Number, std::string(1, ch) + num, start);
        return;
      }
    }
    static const std::pair<const char*, Tok> table[] = {
        {"{%", Tok::OpenStmt},    {"%}", Tok::CloseStmt},      {"{{", Tok::OpenExpr},       {"}}", Tok::CloseExpr},
        {"(", Tok::LParen},       {")", Tok::RParen},          {"{", Tok::LBrace},          {"}", Tok::RBrace},
        {"[", Tok::LBracket},     {"]", Tok::RBracket},        {",", Tok::Comma},           {".", Tok::Dot},
        {":", Tok::Colon},        {"|", Tok::Pipe},            {"<=", Tok::Comparison},     {">=", Tok::Comparison},
        {"==", Tok::Comparison},  {"!=", Tok::Comparison},     {"<", Tok::Comparison},      {">", Tok::Comparison},
        {"+", Tok::Additive},     {"-", Tok::Additive},        {"~", Tok::Additive},        {"**", Tok::Power},
        {"*", Tok::Multiplicative}, {"//", Tok::Multiplicative}, {"/", Tok::Multiplicative}, {"%", Tok::Multiplicative},
        {"=", Tok::Equals},
    };
    for (const auto& [seq, type] : table) {
      if (type == Tok::CloseExpr && curly_depth_ > 0) continue;  // }} closing a dict literal
      if (!at(src, c_, seq)) continue;
      push(type, seq, start);
      if (type == Tok::OpenExpr) curly_depth_ = 0;
      if (type == Tok::LBrace) ++curly_depth_;
      if (type == Tok::RBrace) --curly_depth_;
      c_ += std::string_view(seq).size();
      return;
    }
    if (ch == '\'' || ch == '"') {
      push(Tok::String, lex_string(ch), start);
      return;
    }
    if (is_digit(ch)) {
      std::string num = digits();
      if ((tokens_.empty() || tokens_.back().type != Tok::Dot) && c_ + 1 < src.size() && src[c_] == '.' && is_digit(src[c_ + 1])) {
        ++c_;
        num += '.';
        num += digits();
      }
      push(Tok::Number, num, start);
      return;
    }
    if (is_word(ch)) {
      while (c_ < src.size() && is_word(src[c_])) ++c_;
      push(Tok::Ident, src.substr(start, c_ - start), start);
      return;
    }
    size_t k = c_;
    next_code_point(src, k);
    error(c_, "unexpected character '" + src.substr(c_, k - c_) + "'");
  }

  std::string lex_string(char quote) {
    const std::string& src = m_.s;
    const size_t start = c_++;
    std::string out;
    char32_t pending_high = 0;  // a \uD800-\uDBFF escape waiting for its low half
    auto flush_high = [&] {
      if (pending_high) append_utf8(out, 0xFFFD);
      pending_high = 0;
    };
    while (true) {
      if (c_ >= src.size()) error(start, "unterminated string literal");
      const char ch = src[c_];
      if (ch == quote) break;
      if (ch != '\\') {
        flush_high();
        out += ch;
        ++c_;
        continue;
      }
      if (++c_ >= src.size()) error(start, "unterminated string literal");
      const char e = src[c_++];
      if (e == 'x' || e == 'u') {
        const size_t len = e == 'x' ? 2 : 4;
        const std::string hex = src.substr(c_, len);
        if (hex.size() != len || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
          error(c_ - 2, "invalid hexadecimal escape sequence \\" + std::string(1, e) + hex);
        const auto unit = char32_t(std::stoul(hex, nullptr, 16));
        c_ += len;
        if (unit >= 0xDC00 && unit <= 0xDFFF && pending_high) {
          append_utf8(out, 0x10000 + ((pending_high - 0xD800) << 10) + (unit - 0xDC00));
          pending_high = 0;
        } else {
          flush_high();
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            pending_high = unit;
          } else {
            append_utf8(out, unit);
          }
        }
        continue;
      }
      flush_high();
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        default: error(c_ - 2, std::string("unknown escape sequence \\") + e);
      }
    }
    flush_high();
    ++c_;  // closing quote
    return out;
  }

  const std::string& source_;
  const std::string& name_;
  std::vector<uint32_t> line_starts_;
  Mapped m_;
  size_t c_ = 0;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;
  int cache_line_ = 0, cache_col_ = 1;
  size_t cache_off_ = 0;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source, const std::string& name) {
  return Lexer(source, name).run();
}

}  // namespace dsv3::jinja
