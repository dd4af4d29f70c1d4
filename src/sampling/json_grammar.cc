#include "sampling/json_grammar.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace dsv3::json {

// Frame fields by kind:
//   kRoot     phase 0: before the value, 1: after it.
//   kObject   phase 0: after '{', 1: key being read (a kKey frame is on top), 2: after a key,
//             3: after ':', 4: after a value, 5: after ','. c: the key just read (its index in
//             the node's keys, or kExtraKey). mask: keys written or unusable.
//   kArray    phase 0: after '[', 1: after an item, 2: after ','. a: items written.
//   kString   phase: string lexer state below; a: code points so far.
//   kKey      phase: string lexer state; node: the object's node; [a, b): the declared keys
//             still matching the bytes so far, c: bytes matched (opening quote included).
//   kNumber   phase: number lexer state below; u0: integers only; u1: exponent digits; a: bytes
//             so far.
//   kLiteral  node: the kEnum node; [a, b): literals still matching, c: bytes matched.
namespace {

constexpr uint32_t kExtraKey = 0xFFFFFFFFu;

enum class Lex { kBad, kCont, kNewChar, kClose };

bool is_ws(int b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }
bool is_digit(int b) { return b >= '0' && b <= '9'; }
bool is_hex(int b) { return is_digit(b) || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); }

Lex string_byte(Frame& f, int b) {
  if (b == kEndOfText) return Lex::kBad;
  switch (f.phase) {
    case kNormal:
      if (b == '"') return Lex::kClose;
      if (b == '\\') return f.phase = kEscape, Lex::kNewChar;
      if (b < 0x20) return Lex::kBad;
      if (b < 0x80) return Lex::kNewChar;
      // UTF-8 lead bytes, with the first continuation byte's range excluding overlong forms,
      // UTF-16 surrogates and code points above U+10FFFF.
      f.u1 = 0x80, f.u2 = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) f.u0 = 0;
      else if (b == 0xE0) f.u0 = 1, f.u1 = 0xA0;
      else if (b == 0xED) f.u0 = 1, f.u2 = 0x9F;
      else if (b >= 0xE1 && b <= 0xEF) f.u0 = 1;
      else if (b == 0xF0) f.u0 = 2, f.u1 = 0x90;
      else if (b >= 0xF1 && b <= 0xF3) f.u0 = 2;
      else if (b == 0xF4) f.u0 = 2, f.u2 = 0x8F;
      else return Lex::kBad;
      f.phase = kUtf8;
      return Lex::kNewChar;
    case kUtf8:
      if (b < f.u1 || b > f.u2) return Lex::kBad;
      if (f.u0 == 0) f.phase = kNormal;
      else --f.u0, f.u1 = 0x80, f.u2 = 0xBF;
      return Lex::kCont;
    case kEscape:
      if (b == 'u') return f.phase = kU1, Lex::kCont;
      if (std::strchr("\"\\/bfnrt", b) && b != 0) return f.phase = kNormal, Lex::kCont;
      return Lex::kBad;
    case kU1:
      if (!is_hex(b)) return Lex::kBad;
      f.phase = (b == 'd' || b == 'D') ? kU2AfterD : kU2;
      return Lex::kCont;
    case kU2AfterD:
      if (is_digit(b)) f.phase = b <= '7' ? kU3 : kH3;
      else if (b == 'a' || b == 'b' || b == 'A' || b == 'B') f.phase = kH3;
      else return Lex::kBad;  // c-f: a low surrogate with no high one before it (or not hex)
      return Lex::kCont;
    case kU2: case kU3: case kH3: case kL3:
      if (!is_hex(b)) return Lex::kBad;
      ++f.phase;
      return Lex::kCont;
    case kU4: case kL4:
      if (!is_hex(b)) return Lex::kBad;
      f.phase = kNormal;
      return Lex::kCont;
    case kH4:
      if (!is_hex(b)) return Lex::kBad;
      f.phase = kLowBackslash;
      return Lex::kCont;
    case kLowBackslash:
      if (b != '\\') return Lex::kBad;
      return f.phase = kLowU, Lex::kCont;
    case kLowU:
      if (b != 'u') return Lex::kBad;
      return f.phase = kL1, Lex::kCont;
    case kL1:
      if (b != 'd' && b != 'D') return Lex::kBad;
      return f.phase = kL2, Lex::kCont;
    case kL2:
      if (!((b >= 'c' && b <= 'f') || (b >= 'C' && b <= 'F'))) return Lex::kBad;
      return f.phase = kL3, Lex::kCont;
  }
  return Lex::kBad;
}
static_assert(kU2 + 1 == kU3 && kU3 + 1 == kU4 && kH3 + 1 == kH4 && kL3 + 1 == kL4);

// Number lexer: 0 after '-', 1 after a leading 0, 2 in integer digits, 3 after '.', 4 in
// fraction digits, 5 after 'e', 6 after the exponent's sign, 7 in exponent digits.
enum class Num { kBad, kTaken, kEnd };

Num number_byte(Frame& f, int b) {
  const bool int_only = f.u0 != 0;
  const uint32_t room = kMaxNumberBytes - f.a;  // bytes that may still be added
  auto to = [&](uint8_t phase) { f.phase = phase, ++f.a; return Num::kTaken; };
  const bool frac = b == '.' && !int_only && room >= 2;
  const bool exp = (b == 'e' || b == 'E') && !int_only && room >= 2;
  switch (f.phase) {
    case 0: return b == '0' ? to(1) : (is_digit(b) ? to(2) : Num::kBad);
    case 1: return frac ? to(3) : exp ? to(5) : Num::kEnd;
    case 2: return is_digit(b) && room >= 1 ? to(2) : frac ? to(3) : exp ? to(5) : Num::kEnd;
    case 3: return is_digit(b) ? to(4) : Num::kBad;
    case 4: return is_digit(b) && room >= 1 ? to(4) : exp ? to(5) : Num::kEnd;
    case 5: return (b == '+' || b == '-') && room >= 2 ? to(6) : is_digit(b) ? (++f.u1, to(7)) : Num::kBad;
    case 6: return is_digit(b) ? (++f.u1, to(7)) : Num::kBad;
    case 7: return is_digit(b) && room >= 1 && f.u1 < kMaxExponentDigits ? (++f.u1, to(7)) : Num::kEnd;
  }
  return Num::kBad;
}

// Narrows the sorted strings [lo, hi) that share their first `off` bytes to those whose byte at
// `off` is b. Returns false when none does.
bool narrow(const std::vector<std::string>& s, uint32_t& lo, uint32_t& hi, uint32_t off, int b) {
  auto key = [&](uint32_t i) { return s[i].size() > off ? int(uint8_t(s[i][off])) : -1; };
  uint32_t l = lo, h = hi;
  while (l < h) {  // first index with key >= b
    const uint32_t m = l + (h - l) / 2;
    if (key(m) < b) l = m + 1; else h = m;
  }
  uint32_t e = l;
  h = hi;
  while (e < h) {  // first index with key > b
    const uint32_t m = e + (h - e) / 2;
    if (key(m) <= b) e = m + 1; else h = m;
  }
  if (l == e) return false;
  lo = l, hi = e;
  return true;
}

uint64_t bits_below(uint32_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

}  // namespace

class Stepper {
 public:
  Stepper(GrammarState& out, int byte) : out_(out), f_(out.frames_), nodes_(out.c_->nodes()), byte_(byte) {}

  //! Runs the byte through the last configuration of out_. Returns false on rejection.
  bool run() {
    const int b = byte_;
    for (;;) {
      Frame& t = f_.back();
      switch (t.kind) {
        case Frame::kRoot:
          if (t.phase == 1) return b == kEndOfText;
          if (is_ws(b)) return take_ws();
          return start_value(t.node);
        case Frame::kObject: return object_byte();
        case Frame::kArray: return array_byte();
        case Frame::kString: {
          const Lex r = string_byte(t, b);
          const SchemaNode& s = nodes_[t.node];
          if (r == Lex::kBad) return false;
          if (r == Lex::kNewChar) {
            if (t.a >= s.max_length) return false;
            ++t.a;
          }
          if (r == Lex::kClose) {
            if (t.a < s.min_length) return false;
            pop_value();
          }
          return true;
        }
        case Frame::kKey: return key_byte();
        case Frame::kNumber: {
          const Num r = number_byte(t, b);
          if (r == Num::kBad) return false;
          if (r == Num::kTaken) return true;
          if (t.phase != 1 && t.phase != 2 && t.phase != 4 && t.phase != 7) return false;
          pop_value();
          continue;  // the byte belongs to the enclosing value
        }
        case Frame::kLiteral: {
          const auto& lits = nodes_[t.node].literals;
          if (b != kEndOfText && narrow(lits, t.a, t.b, t.c, b)) return ++t.c, true;
          if (lits[t.a].size() != t.c) return false;
          pop_value();
          continue;
        }
      }
      return false;
    }
  }

  bool took_ws() const { return took_ws_; }
  //! Alternatives beyond the first that the byte started (each needs its own configuration).
  const std::vector<int32_t>& extra_leaves() const { return extra_; }

  //! The frame a value of leaf `leaf` starts with when its first byte is `b` (which the leaf
  //! accepts: see accepts_first).
  Frame first_frame(int32_t leaf, int b) const {
    const SchemaNode& s = nodes_[leaf];
    Frame f;
    f.node = leaf;
    if (s.kind == SchemaNode::kEnum || b == 't' || b == 'f' || b == 'n') {
      f.kind = Frame::kLiteral;
      if (s.kind != SchemaNode::kEnum) f.node = 1;  // the builtin true / false / null
      f.a = 0, f.b = static_cast<uint32_t>(nodes_[f.node].literals.size()), f.c = 1;
      narrow(nodes_[f.node].literals, f.a, f.b, 0, b);
    } else if (b == '{') {
      f.kind = Frame::kObject, f.mask = s.unusable;
    } else if (b == '[') {
      f.kind = Frame::kArray;
    } else if (b == '"') {
      f.kind = Frame::kString;
    } else {
      f.kind = Frame::kNumber, f.a = 1;
      f.u0 = (s.types & kTypeNumber) ? 0 : 1;
      f.phase = b == '-' ? 0 : (b == '0' ? 1 : 2);
    }
    return f;
  }

 private:
  GrammarState::Config& cfg() { return out_.cfgs_.back(); }

  bool take_ws() {
    if (cfg().ws >= kMaxWhitespaceRun) return false;
    ++cfg().ws;
    took_ws_ = true;
    return true;
  }

  bool accepts_first(int32_t leaf, int b) {
    const SchemaNode& s = nodes_[leaf];
    if (s.kind == SchemaNode::kEnum) {
      uint32_t lo = 0, hi = static_cast<uint32_t>(s.literals.size());
      return b != kEndOfText && narrow(s.literals, lo, hi, 0, b);
    }
    const bool room = cfg().depth < kMaxDepth;
    switch (b) {
      case '{': return (s.types & kTypeObject) && room;
      case '[': return (s.types & kTypeArray) && room;
      case '"': return s.types & kTypeString;
      case 't': case 'f': return s.types & kTypeBoolean;
      case 'n': return s.types & kTypeNull;
      default: return (b == '-' || is_digit(b)) && (s.types & (kTypeNumber | kTypeInteger));
    }
  }

  bool start_value(int32_t node) {
    if (node == kNoNode) return false;
    const SchemaNode& s = nodes_[node];
    const int32_t single[1] = {node};
    const int32_t* leaves = single;
    size_t n = 1;
    if (s.kind == SchemaNode::kUnion) leaves = s.alts.data(), n = s.alts.size();
    int32_t first = kNoNode;
    for (size_t i = 0; i < n; ++i) {
      if (!accepts_first(leaves[i], byte_)) continue;
      if (first == kNoNode) first = leaves[i];
      else extra_.push_back(leaves[i]);
    }
    if (first == kNoNode) return false;
    const Frame fr = first_frame(first, byte_);
    if (fr.kind == Frame::kObject || fr.kind == Frame::kArray) ++cfg().depth;
    push(fr);
    return true;
  }

  void push(const Frame& fr) {
    f_.push_back(fr);
    ++cfg().size;
  }
  void pop() {
    f_.pop_back();
    --cfg().size;
  }

  // The top value is complete: pops it and tells its container.
  void pop_value() {
    if (f_.back().kind == Frame::kObject || f_.back().kind == Frame::kArray) --cfg().depth;
    pop();
    Frame& p = f_.back();
    if (p.kind == Frame::kRoot) {
      p.phase = 1;
    } else if (p.kind == Frame::kObject) {
      if (p.c != kExtraKey) p.mask |= uint64_t{1} << p.c;
      p.phase = 4;
    } else {  // kArray
      ++p.a;
      p.phase = 1;
    }
  }

  bool object_byte() {
    const int b = byte_;
    Frame& t = f_.back();
    const SchemaNode& s = nodes_[t.node];
    const bool key_possible = s.additional != kNoNode || (~t.mask & bits_below(s.keys.size())) != 0;
    const bool can_close = (s.required & ~t.mask) == 0;
    if (is_ws(b) && t.phase != 1) return take_ws();
    switch (t.phase) {
      case 0: case 5:
        if (b == '}' && t.phase == 0 && can_close) return pop_value(), true;
        if (b != '"' || !key_possible) return false;
        t.phase = 1;
        {
          Frame k;
          k.kind = Frame::kKey;
          k.node = t.node;
          k.a = 0, k.b = static_cast<uint32_t>(s.keys.size()), k.c = 1;
          push(k);
        }
        return true;
      case 2:
        if (b != ':') return false;
        t.phase = 3;
        return true;
      case 3: return start_value(t.c == kExtraKey ? s.additional : s.key_nodes[t.c]);
      case 4:
        if (b == ',' && key_possible) return t.phase = 5, true;
        if (b == '}' && can_close) return pop_value(), true;
        return false;
    }
    return false;
  }

  bool key_byte() {
    const int b = byte_;
    Frame& k = f_.back();
    Frame& obj = f_[f_.size() - 2];
    const SchemaNode& s = nodes_[k.node];
    if (s.additional == kNoNode) {
      // Only declared keys: the bytes must spell one not written yet.
      if (b == kEndOfText || !narrow(s.keys, k.a, k.b, k.c, b)) return false;
      if ((bits_below(k.b) & ~bits_below(k.a) & ~obj.mask) == 0) return false;
      if (s.keys[k.a].size() == ++k.c) return finish_key(k.a);
      return true;
    }
    const Lex r = string_byte(k, b);
    if (r == Lex::kBad) return false;
    if (k.a < k.b) {
      if (narrow(s.keys, k.a, k.b, k.c, b)) ++k.c;
      else k.a = k.b = 0;
    }
    if (r != Lex::kClose) return true;
    if (k.a < k.b && s.keys[k.a].size() == k.c) {
      if ((obj.mask >> k.a) & 1) return false;  // written already (or unusable)
      return finish_key(k.a);
    }
    return finish_key(kExtraKey);
  }

  bool finish_key(uint32_t key) {
    pop();
    Frame& obj = f_.back();
    obj.c = key;
    obj.phase = 2;
    return true;
  }

  bool array_byte() {
    const int b = byte_;
    Frame& t = f_.back();
    const SchemaNode& s = nodes_[t.node];
    auto item = [&](uint32_t i) { return i < s.prefix_items.size() ? s.prefix_items[i] : s.items; };
    const bool more = t.a < s.max_items && item(t.a) != kNoNode;
    if (is_ws(b)) return take_ws();
    switch (t.phase) {
      case 0: case 2:
        if (b == ']' && t.phase == 0 && s.min_items == 0) return pop_value(), true;
        return more && start_value(item(t.a));
      case 1:
        if (b == ',' && more) return t.phase = 2, true;
        if (b == ']' && t.a >= s.min_items) return pop_value(), true;
        return false;
    }
    return false;
  }

  GrammarState& out_;
  std::vector<Frame>& f_;
  const std::vector<SchemaNode>& nodes_;
  const int byte_;
  bool took_ws_ = false;
  std::vector<int32_t> extra_;
};

GrammarState::GrammarState(const JsonConstraint& c) : c_(&c) {
  Frame root;
  root.kind = Frame::kRoot;
  root.node = c.root();
  frames_.push_back(root);
  cfgs_.push_back({0, 1, 0, 0});
}

bool GrammarState::step(int byte, GrammarState& out) const {
  out.c_ = c_;
  out.frames_.clear();
  out.cfgs_.clear();
  for (const Config& in : cfgs_) {
    if (out.cfgs_.size() >= static_cast<size_t>(kMaxConfigs)) break;
    const uint32_t begin = static_cast<uint32_t>(out.frames_.size());
    out.frames_.insert(out.frames_.end(), frames_.begin() + in.begin, frames_.begin() + in.begin + in.size);
    out.cfgs_.push_back({begin, in.size, in.ws, in.depth});
    Stepper s(out, byte);
    if (!s.run()) {
      out.frames_.resize(begin);
      out.cfgs_.pop_back();
      continue;
    }
    if (!s.took_ws()) out.cfgs_.back().ws = 0;
    // A union's other alternatives that this byte also starts: same stack below the new value.
    const Config done = out.cfgs_.back();
    for (int32_t leaf : s.extra_leaves()) {
      if (out.cfgs_.size() >= static_cast<size_t>(kMaxConfigs)) break;
      const uint32_t nb = static_cast<uint32_t>(out.frames_.size());
      for (uint32_t i = 0; i + 1 < done.size; ++i) out.frames_.push_back(out.frames_[done.begin + i]);
      out.frames_.push_back(s.first_frame(leaf, byte));
      out.cfgs_.push_back({nb, done.size, done.ws, done.depth});
    }
  }
  if (out.cfgs_.size() > 1) {
    // Merge identical configurations (alternatives that converged), keeping the first of each.
    std::vector<Config> kept;
    uint32_t write = 0;
    for (const Config& cf : out.cfgs_) {
      bool dup = false;
      for (const Config& k : kept)
        if (k.size == cf.size && k.ws == cf.ws && k.depth == cf.depth &&
            std::memcmp(&out.frames_[k.begin], &out.frames_[cf.begin], cf.size * sizeof(Frame)) == 0) {
          dup = true;
          break;
        }
      if (dup) continue;
      std::copy(out.frames_.begin() + cf.begin, out.frames_.begin() + cf.begin + cf.size, out.frames_.begin() + write);
      kept.push_back({write, cf.size, cf.ws, cf.depth});
      write += cf.size;
    }
    out.frames_.resize(write);
    out.cfgs_ = std::move(kept);
  }
  return !out.cfgs_.empty();
}

bool GrammarState::feed(std::string_view bytes) {
  GrammarState a = *this, b;
  for (unsigned char ch : bytes) {
    if (!a.step(ch, b)) return false;
    std::swap(a, b);
  }
  *this = std::move(a);
  return true;
}

bool GrammarState::can_end() const {
  GrammarState tmp;
  return step(kEndOfText, tmp);
}

bool GrammarState::finished() const {
  for (const Config& cf : cfgs_)
    if (cf.size != 1 || frames_[cf.begin].phase != 1) return false;
  return !cfgs_.empty();
}

uint32_t GrammarState::plain_string_budget() const {
  // With several configurations a plain run is accepted when any of them takes it, so the
  // budget is the largest, provided every configuration is inside a string.
  int64_t best = 0;
  for (const Config& cf : cfgs_) {
    const Frame& t = frames_[cf.begin + cf.size - 1];
    if (t.phase != kNormal) return 0;
    const SchemaNode& s = c_->nodes()[t.node];
    int64_t budget;
    if (t.kind == Frame::kKey && s.additional != kNoNode) budget = kUnbounded;
    else if (t.kind == Frame::kString) budget = s.max_length == kUnbounded ? kUnbounded : s.max_length - t.a;
    else return 0;
    best = std::max(best, budget);
  }
  return static_cast<uint32_t>(best);
}

}  // namespace dsv3::json
