// Constrained sampling of JSON at the token level: which token ids keep the output a viable
// prefix of a text the JsonConstraint accepts.
//
// Server usage, per request:
//   auto c = JsonConstraint::from_response_format(body["response_format"]);  // nullptr: none
//   static const auto vocab = std::make_shared<const TokenVocab>(tokenizer);  // once per process
//   JsonState js(c, vocab, {tokenizer.eos_id()});
//   each step: js.mask(logits, n_vocab); tok = sampler.sample(logits); js.accept(tok);
//   stop when tok is an EOS id (js.complete() held) — after a complete value mask() allows
//   nothing else.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sampling/json_grammar.h"
#include "sampling/json_schema.h"

namespace dsv3 {

class Tokenizer;

//! The byte string of every token id and a byte trie over them. Built once per tokenizer,
//! immutable afterwards, safe to share across threads.
class TokenVocab {
 public:
  //! Ordinary vocabulary entries get their raw bytes; added tokens (special or not) and ids
  //! without a token get none and are never allowed inside JSON.
  explicit TokenVocab(const Tokenizer& tok);
  //! Explicit byte strings per id ("" = never allowed), for tests and other tokenizers.
  explicit TokenVocab(std::vector<std::string> token_bytes);

  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  const std::string& bytes(int32_t id) const { return bytes_[id]; }

  struct TrieNode {
    uint32_t first_child = 0;  // children are nodes [first_child, first_child + n_children)
    uint32_t tok_begin = 0;    // token ids of the subtree: order()[tok_begin, tok_end), of which
    uint32_t term_end = 0;     // [tok_begin, term_end) end exactly at this node
    uint32_t tok_end = 0;
    uint32_t max_suffix = 0;   // longest token suffix below this node, in bytes
    uint32_t prefix_chars = 0; // UTF-8 character starts among the bytes leading here
    uint16_t n_children = 0;
    uint8_t byte = 0;          // the edge into this node
    uint8_t plain = 0;         // every suffix below is plain string content (json_grammar.h)
  };
  const std::vector<TrieNode>& trie() const { return trie_; }  // node 0: the root
  const std::vector<int32_t>& order() const { return order_; }
  //! Per token in order(): how many of its bytes start a UTF-8 character (non-continuation bytes).
  const std::vector<uint16_t>& char_starts() const { return chars_; }
  size_t max_token_bytes() const { return max_len_; }
  //! The token is plain string content throughout: complete UTF-8 characters other than
  //! controls, '"' and '\\' (inside a JSON string it can only add characters).
  bool plain(int32_t id) const { return plain_[size_t(id)] != 0; }

 private:
  void build();
  std::vector<std::string> bytes_;
  std::vector<TrieNode> trie_;
  std::vector<int32_t> order_;
  std::vector<uint16_t> chars_;
  std::vector<uint8_t> plain_;  // per id
  size_t max_len_ = 0;
};

//! One request's position in the constrained output. Not thread-safe (mask() uses scratch
//! space); the constraint and vocabulary it holds are shared read-only.
class JsonState {
 public:
  //! eos_ids: the tokens that end the output; allowed exactly when a complete value is written.
  JsonState(std::shared_ptr<const JsonConstraint> constraint, std::shared_ptr<const TokenVocab> vocab,
            std::vector<int32_t> eos_ids);

  //! Sets logits[i] to -infinity for every id i < n that may not come next (ids beyond the
  //! vocabulary included). Cost: a depth-first walk of the token trie, pruned where the grammar
  //! rejects, with whole subtrees of plain string content taken at once. Measured on
  //! DeepSeek-V3's vocabulary (tests/json_constraint_test.cc prints it): 0.05-0.2 ms CPU between
  //! tokens and in numbers, 0.6-1 ms inside strings, up to 2 ms inside a maxLength string or one
  //! several union alternatives share. Should no token fit (only when a schema forces nesting
  //! deeper than json::kMaxDepth) the EOS ids are left allowed, and the server should end there.
  void mask(float* logits, size_t n) const;
  //! allowed[i] = 1 for the ids that may come next (size: vocab size, enlarged to cover EOS ids).
  void allowed(std::vector<uint8_t>& allowed) const;

  //! Advances by one token. Returns false, leaving the state unchanged, when the token was not
  //! allowed. An EOS id is allowed when complete(); afterwards nothing more is.
  bool accept(int32_t token);
  //! Advances by raw bytes (a forced prefix). Returns false, unchanged, when rejected.
  bool accept_text(std::string_view bytes);

  //! A complete value has been written: EOS may come now.
  bool complete() const { return !ended_ && grammar_.can_end(); }
  //! EOS is the only thing that may come (or has come).
  bool finished() const { return ended_ || grammar_.finished(); }
  const json::GrammarState& grammar() const { return grammar_; }

 private:
  bool is_eos(int32_t id) const;
  void walk(uint32_t node, size_t depth) const;

  std::shared_ptr<const JsonConstraint> constraint_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::vector<int32_t> eos_;
  json::GrammarState grammar_;
  bool ended_ = false;
  // Scratch for walk(): the grammar state after each trie depth, and the allowed flags.
  mutable std::vector<json::GrammarState> path_;
  mutable std::vector<uint8_t>* out_ = nullptr;
};

}  // namespace dsv3
