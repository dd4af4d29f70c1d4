// GrammarState::completion: finishing a JSON value in few bytes, for constraints that must end
// within a token budget (segment_constraint.h). The recogniser is the judge of every byte; the
// frames only suggest which byte to try first, so a wrong guess costs time, never validity.
#include <array>
#include <string>

#include "sampling/json_grammar.h"

namespace dsv3::json {
namespace {

constexpr uint32_t kExtraKey = 0xFFFFFFFFu;  // as in json_grammar.cc: the key just read was not declared

// Up to 8 bytes to try, best first.
struct Prefs {
  std::array<int, 8> b{};
  int n = 0;
  Prefs& add(int byte) {
    if (n < 8) b[size_t(n++)] = byte;
    return *this;
  }
};

// The shortest values first: a digit, an empty string, null, true, then containers.
Prefs value_start(const JsonConstraint& c, int32_t node) {
  Prefs p;
  if (node < 0) return p;
  const SchemaNode& s = c.nodes()[size_t(node)];
  if (s.kind == SchemaNode::kEnum) {
    size_t best = 0;
    for (size_t i = 1; i < s.literals.size(); ++i)
      if (s.literals[i].size() < s.literals[best].size()) best = i;
    if (!s.literals.empty()) p.add(uint8_t(s.literals[best][0]));
    return p;
  }
  return p.add('0').add('"').add('n').add('t').add('[').add('{');
}

// After a complete number or literal the next byte belongs to the container.
Prefs after_value() { return Prefs().add('}').add(']').add(','); }

Prefs string_phase(const Frame& f, uint32_t min_length) {
  Prefs p;
  switch (f.phase) {
    case kNormal: return f.a < min_length ? p.add('a') : p.add('"').add('a');
    case kEscape: return p.add('n');
    case kLowBackslash: return p.add('\\');
    case kLowU: return p.add('u');
    case kL1: return p.add('d');
    case kL2: return p.add('c');
    case kUtf8: return p.add(f.u1);
    default: return p.add('0');  // hex digits of \uXXXX and of surrogates
  }
}

// A declared key not written yet among those still matching (required ones first): its next
// byte. Otherwise close the key (an extra one, where extra keys are allowed).
Prefs key_byte(const JsonConstraint& c, const Frame& key, const Frame& obj) {
  const SchemaNode& s = c.nodes()[size_t(key.node)];
  if (key.phase != kNormal) return string_phase(key, 0);
  int best = -1;
  for (uint32_t i = key.a; i < key.b && i < s.keys.size(); ++i) {
    if ((obj.mask >> i) & 1) continue;
    const bool required = (s.required >> i) & 1;
    if (best < 0 || (required && !((s.required >> best) & 1))) best = int(i);
  }
  Prefs p;
  if (best >= 0 && s.keys[size_t(best)].size() > key.c) p.add(uint8_t(s.keys[size_t(best)][key.c]));
  return p.add('"').add('a');
}

Prefs preferred(const JsonConstraint& c, const Frame* frames, size_t n) {
  const Frame& t = frames[n - 1];
  const auto& nodes = c.nodes();
  switch (t.kind) {
    case Frame::kRoot: return value_start(c, t.node);
    case Frame::kObject: {
      const SchemaNode& s = nodes[size_t(t.node)];
      switch (t.phase) {
        case 0: return Prefs().add('}').add('"');
        case 2: return Prefs().add(':');
        case 3: return value_start(c, t.c == kExtraKey ? s.additional : s.key_nodes[t.c]);
        case 4: return Prefs().add('}').add(',');
        default: return Prefs().add('"');
      }
    }
    case Frame::kArray: {
      const SchemaNode& s = nodes[size_t(t.node)];
      const int32_t item = t.a < s.prefix_items.size() ? s.prefix_items[t.a] : s.items;
      if (t.phase == 1) return Prefs().add(']').add(',');
      Prefs p = t.phase == 0 ? Prefs().add(']') : Prefs();
      const Prefs v = value_start(c, item);
      for (int i = 0; i < v.n; ++i) p.add(v.b[size_t(i)]);
      return p;
    }
    case Frame::kString: return string_phase(t, nodes[size_t(t.node)].min_length);
    case Frame::kKey: return key_byte(c, t, frames[n - 2]);
    case Frame::kNumber:
      if (t.phase == 0 || t.phase == 3 || t.phase == 5 || t.phase == 6) return Prefs().add('0');
      return after_value();
    case Frame::kLiteral: {
      const std::string& lit = nodes[size_t(t.node)].literals[t.a];
      return t.c < lit.size() ? Prefs().add(uint8_t(lit[t.c])) : after_value();
    }
  }
  return Prefs();
}

bool is_ws(int b) { return b == ' ' || b == '\t' || b == '\n' || b == '\r'; }

}  // namespace

bool GrammarState::in_string_value() const {
  for (const Config& cf : cfgs_) {
    const Frame& t = frames_[cf.begin + cf.size - 1];
    if (t.kind != Frame::kString || t.phase != kNormal) return false;
  }
  return !cfgs_.empty();
}

bool GrammarState::completion(std::string& out, size_t max_bytes) const {
  out.clear();
  if (!c_ || cfgs_.empty()) return false;
  GrammarState s = *this, next;
  while (!s.can_end()) {
    if (out.size() >= max_bytes) return false;
    // The first configuration's successor stays first (step() keeps the order), so following
    // its frames steers one consistent reading of the text.
    const Config& cf = s.cfgs_[0];
    const Prefs p = preferred(*c_, &s.frames_[cf.begin], cf.size);
    int chosen = -1;
    for (int i = 0; i < p.n && chosen < 0; ++i)
      if (s.step(p.b[size_t(i)], next)) chosen = p.b[size_t(i)];
    // Anything the recogniser takes, whitespace last (it never brings the end closer).
    for (int b = 0; b < 256 && chosen < 0; ++b) {
      const int byte = (b + 0x21) & 0xFF;
      if (!is_ws(byte) && s.step(byte, next)) chosen = byte;
    }
    for (int byte : {' ', '\n'})
      if (chosen < 0 && s.step(byte, next)) chosen = byte;
    if (chosen < 0) return false;
    out += char(chosen);
    std::swap(s, next);
  }
  return true;
}

}  // namespace dsv3::json
