// Byte-level incremental recogniser of JSON texts (RFC 8259) that a compiled JsonConstraint
// accepts. It takes one byte at a time and rejects a byte as soon as no accepted text can start
// with the bytes so far, so every state it is in has a completion (parts of a schema no value
// satisfies are pruned at compile time; the one exception is a schema forcing nesting deeper
// than kMaxDepth).
//
// Caps, so a model sampling only allowed tokens cannot run forever on filler:
// - kMaxWhitespaceRun (2) consecutive whitespace bytes between tokens, none after the top-level
//   value; leading whitespace before it is allowed (same cap).
// - kMaxDepth (32) nested objects / arrays; a schema demanding deeper nesting is a dead end.
// - kMaxNumberBytes (40) bytes per number, kMaxExponentDigits (2) exponent digits: RFC 8259
//   lets parsers limit the range, and common ones (nlohmann's) reject what overflows a double.
// Strings, keys and the number of items are bounded only by the schema (and the server's
// max_tokens).
//
// Unions (anyOf / oneOf, nullable on a $ref) are followed nondeterministically: the state is a
// small set of configurations, one per alternative still alive, merged when identical and capped
// at kMaxConfigs (extra alternatives are dropped, which can only reject more).
//
// Representation: all configurations' frame stacks in one flat vector, so copying a state is two
// memcpy-like vector assignments that reuse capacity. step() is out-of-place (state + byte ->
// other state), which is what a trie walk over the vocabulary wants. Not thread-safe per object;
// the compiled constraint it points to is shared read-only and must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/json_schema.h"

namespace dsv3::json {

constexpr int kMaxWhitespaceRun = 2;
constexpr int kMaxDepth = 32;
constexpr int kMaxNumberBytes = 40;
constexpr int kMaxExponentDigits = 2;
constexpr int kMaxConfigs = 64;
constexpr int kEndOfText = 256;  // pseudo-byte: "the text ends here"

struct Frame {
  enum Kind : uint8_t { kRoot, kObject, kArray, kString, kKey, kNumber, kLiteral };
  uint8_t kind = kRoot;
  uint8_t phase = 0;
  uint8_t u0 = 0, u1 = 0, u2 = 0, u3 = 0;  // string: UTF-8 bytes left, next byte's range
  uint16_t pad = 0;
  int32_t node = 0;  // schema node (literal: the enum node holding the spellings)
  uint32_t a = 0, b = 0, c = 0;  // kind-specific: see json_grammar.cc
  uint64_t mask = 0;             // object: keys already written (plus unusable ones)
};
static_assert(sizeof(Frame) == 32, "frames are compared with memcmp");

//! The string lexer's phase (Frame::phase of kString and kKey frames).
enum StringPhase : uint8_t {
  kNormal, kEscape,
  kU1, kU2AfterD, kU2, kU3, kU4,  // \uXXXX; after a first 'd' the second digit decides surrogacy
  kH3, kH4,                       // rest of a high surrogate
  kLowBackslash, kLowU, kL1, kL2, kL3, kL4,  // the low surrogate that must follow
  kUtf8,                          // u0 continuation bytes left after the next, [u1, u2] its range
};

class GrammarState {
 public:
  GrammarState() = default;
  //! The start state: nothing written yet.
  explicit GrammarState(const JsonConstraint& c);

  //! out = this state after `byte` (0..255, or kEndOfText). Returns false (out then unspecified)
  //! when the byte is rejected.
  bool step(int byte, GrammarState& out) const;
  //! Feeds bytes in place; on rejection returns false and leaves the state unchanged.
  bool feed(std::string_view bytes);

  //! The text may end here (a complete value has been written).
  bool can_end() const;
  //! Nothing but the end may follow (the value is complete and cannot be extended).
  bool finished() const;
  //! When every configuration is inside a string, the N such that a run of plain characters
  //! (ASCII from 0x20 other than '"' and '\\', or complete UTF-8 sequences) is accepted exactly
  //! when it has at most N characters; otherwise 0. Lets a vocabulary walk accept whole subtrees
  //! of string content without stepping through them.
  uint32_t plain_string_budget() const;

  size_t configs() const { return cfgs_.size(); }
  //! Every configuration is inside a string value (not a key), between characters: more plain
  //! characters there never make the value longer to finish.
  bool in_string_value() const;

  //! A short text that completes the value from here (empty when it may end already): closes
  //! open strings, numbers and literals, writes the required keys and minimum items that are
  //! missing with the shortest values of their schemas, and closes the containers. Greedy, so
  //! not always the shortest possible, but every byte is one the recogniser accepts. False
  //! when none is found within max_bytes (only for schemas forcing deep or huge values).
  //! Cost: a few step()s per byte (json_completion.cc).
  bool completion(std::string& out, size_t max_bytes) const;

 private:
  struct Config {
    uint32_t begin, size;
    uint8_t ws, depth;
  };
  const JsonConstraint* c_ = nullptr;
  std::vector<Frame> frames_;
  std::vector<Config> cfgs_;
  friend class Stepper;
};

}  // namespace dsv3::json
