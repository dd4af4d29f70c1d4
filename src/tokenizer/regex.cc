#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "base/error.h"
#include "tokenizer/unicode_delta.h"

namespace dsv3::tok {
namespace {

// Unicode White_Space, spelled as class ranges (U+0009..U+000D, space, NEL, NBSP, ...).
constexpr std::string_view kWhiteSpace =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

// Match state is per thread so that one compiled Regex (inside a const Tokenizer) can serve
// many threads; the JIT stack grows on demand so long whitespace or letter runs cannot
// overflow the 32 KiB default.
struct ThreadState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadState() {
    md = pcre2_match_data_create(1, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    if (!md || !mctx || !stack) fail("PCRE2: out of memory creating match state");
    pcre2_jit_stack_assign(mctx, nullptr, stack);
  }
  ~ThreadState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState ts;
  return ts;
}

// Code points PCRE2's Unicode 14 tables lack for a one-letter general category, or nullptr.
const char* unicode_delta(std::string_view category) {
  if (category == "L") return kUnicodeDeltaL;
  if (category == "M") return kUnicodeDeltaM;
  if (category == "N") return kUnicodeDeltaN;
  if (category == "P") return kUnicodeDeltaP;
  if (category == "S") return kUnicodeDeltaS;
  return nullptr;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::string rewrite_for_pcre2(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 64);
  bool in_class = false;
  size_t i = 0;
  const size_t n = p.size();
  while (i < n) {
    const char c = p[i];
    if (c == '\\' && i + 1 < n) {
      const char d = p[i + 1];
      if (d == 's') {
        // Appended piecewise: GCC 12 mis-warns (-Wrestrict) on chained std::string operator+.
        if (!in_class) out += '[';
        out += kWhiteSpace;
        if (!in_class) out += ']';
      } else if (d == 'S') {
        if (in_class) fail("regex '", p, "': \\S inside a character class is not supported");
        out += "[^";
        out += kWhiteSpace;
        out += ']';
      } else if ((d == 'p' || d == 'P') && i + 2 < n) {
        // \pX or \p{X}: a major general category gets the code points PCRE2 does not know yet.
        size_t len = 3;
        std::string name(1, p[i + 2]);
        if (p[i + 2] == '{') {
          const size_t close = p.find('}', i + 3);
          if (close == std::string::npos) fail("regex '", p, "': unterminated \\", d, "{");
          name = p.substr(i + 3, close - i - 3);
          len = close - i + 1;
        }
        const char* extra = unicode_delta(name);
        if (!extra) {
          out.append(p, i, len);
        } else {
          if (d == 'P' && in_class) fail("regex '", p, "': \\P{", name, "} inside a character class is not supported");
          if (!in_class) out += d == 'p' ? "[" : "[^";
          out += "\\p{";
          out += name;
          out += '}';
          out += extra;
          if (!in_class) out += ']';
        }
        i += len;
        continue;
      } else if (d == 'Q') {  // \Q...\E quotes everything up to \E verbatim
        const size_t e = p.find("\\E", i + 2);
        const size_t stop = e == std::string::npos ? n : e + 2;
        out.append(p, i, stop - i);
        i = stop;
        continue;
      } else {
        out += c;
        out += d;
      }
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < n && p[i] == '^') out += p[i++];
      if (i < n && p[i] == ']') out += p[i++];  // a leading ']' is a literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {  // POSIX [:name:]
      const size_t e = p.find(":]", i + 2);
      const size_t stop = e == std::string::npos ? n : e + 2;
      out.append(p, i, stop - i);
      i = stop;
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  const std::string source = literal ? pattern : rewrite_for_pcre2(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  // PCRE2_LITERAL admits no UCP (a literal has no classes for it to affect).
  const uint32_t options = PCRE2_UTF | PCRE2_NO_UTF_CHECK | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(), options, &err,
                                   &err_off, nullptr);
  if (!code) fail("regex '", pattern, "' does not compile (PCRE2 at offset ", err_off, "): ", pcre2_message(err));
  code_ = std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
  // JIT is an optimisation only: if it is unavailable pcre2_match interprets the same pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
}

size_t Regex::char_len(std::string_view s, size_t i) {
  if (i >= s.size()) return 1;
  const auto b = static_cast<uint8_t>(s[i]);
  return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

bool Regex::next(std::string_view s, size_t pos, size_t& start, size_t& end) const {
  ThreadState& ts = thread_state();
  auto* code = static_cast<pcre2_code*>(code_.get());
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, PCRE2_NO_UTF_CHECK,
                             ts.md, ts.mctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail("regex '", pattern_, "' failed on a ", s.size(), "-byte input: ", pcre2_message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ts.md);
  start = ov[0];
  end = ov[1];
  return true;
}

bool Regex::full_match(std::string_view s) const {
  ThreadState& ts = thread_state();
  auto* code = static_cast<pcre2_code*>(code_.get());
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0,
                             PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED | PCRE2_ENDANCHORED, ts.md, ts.mctx);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail("regex '", pattern_, "' failed: ", pcre2_message(rc));
  return true;
}

}  // namespace dsv3::tok
