// Output of a fixed shape around JSON values, as a TokenConstraint: one or more alternative
// paths, each a sequence of segments (one given token, literal text, a JSON value that a
// JsonConstraint accepts), then an end-of-sequence token. Tool calls forced by tool_choice are
// the use (api/tool_constraint.h): markers, a function name, its arguments, closing markers.
//
// Paths are followed together: a token is allowed when some live path allows it, and the
// paths that reject the token taken die, so alternatives may share any prefix (two function
// names where one is a prefix of the other included). Text segments take any token whose
// bytes are a prefix of the text still to come; a token never spans two segments. A JSON
// value ends where its grammar may end and the next segment's first token comes.
//
// Budget: the answer has at most max_tokens tokens, and the shape must close within them.
// Inside a JSON segment, while plenty of tokens are left, any token the grammar takes is
// allowed. Near the end (fewer than kCheckMargin tokens to spare beyond the shortest way to
// finish: GrammarState::completion, plus one token per byte of the segments after it), only
// tokens after which the value can still be finished in the tokens left are allowed (plain
// characters inside a string value at once, at most kMaxChecks other tokens checked per step,
// the rest refused until the value closes); at the very end only tokens spelling the start of
// that completion. A single token that lengthens
// the shortest completion by more than kCheckMargin bytes while tokens are plenty could still
// break the budget (no schema seen in practice does that). Should no path fit the budget,
// generation follows the shortest completion and is cut at max_tokens.
//
// The first `unmasked` tokens are forced by the engine (GenRequest::forced): they must match
// the paths but are not masked, so their logprobs stay the model's own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sampling/json_schema.h"
#include "sampling/token_constraint.h"
#include "sampling/token_mask.h"

namespace dsv3 {

struct Segment {
  enum class Kind : uint8_t { Token, Text, Json };
  Kind kind = Kind::Text;
  int32_t token = -1;                          //!< Token
  std::string text;                            //!< Text (non-empty)
  std::shared_ptr<const JsonConstraint> json;  //!< Json

  static Segment of_token(int32_t id);
  static Segment of_text(std::string text);
  static Segment of_json(std::shared_ptr<const JsonConstraint> c);
};

using SegmentPath = std::vector<Segment>;

class SegmentConstraint final : public TokenConstraint {
 public:
  static constexpr int64_t kCheckMargin = 64;
  static constexpr int kMaxChecks = 64;

  //! eos: the ids that end the output; n_vocab: the model's vocabulary size (logits length);
  //! max_tokens: the most tokens the sequence may generate (forced ones included). Throws
  //! dsv3::Error for an empty path list or an empty text segment.
  SegmentConstraint(std::vector<SegmentPath> paths, std::shared_ptr<const TokenVocab> vocab, std::vector<int32_t> eos,
                    size_t n_vocab, int64_t max_tokens, size_t unmasked = 0);

  void mask(float* logits) const override;
  void accept(int32_t token) override;

  //! allowed[i] = 1 for the ids that may come next (size n_vocab). Forced tokens aside.
  void allowed(std::vector<uint8_t>& allowed) const;
  //! Some path has ended with its end-of-sequence token.
  bool complete() const;

 private:
  struct Branch {
    size_t path = 0, seg = 0, off = 0;  // segment and byte offset within a text segment
    std::optional<JsonState> json;      // inside a Json segment
    bool ended = false;
  };

  void enter(Branch& b) const;  // normalise: skip finished text, start JSON states
  bool advance(Branch& b, int32_t token) const;
  void allow_segment(const Branch& b, std::vector<uint8_t>& out) const;
  void allow_json(const Branch& b, std::vector<uint8_t>& out) const;
  void allow_text(std::string_view text, std::vector<uint8_t>& out) const;
  int64_t tail_tokens(const Branch& b) const;  // most tokens the segments after the current need, EOS included

  std::vector<SegmentPath> paths_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::vector<int32_t> eos_;
  size_t n_vocab_;
  int64_t max_tokens_;
  size_t unmasked_;
  std::vector<Branch> live_;
  int64_t taken_ = 0;  // tokens accepted so far
};

}  // namespace dsv3
