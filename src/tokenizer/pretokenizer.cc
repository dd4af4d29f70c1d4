#include "tokenizer/pretokenizer.h"

namespace dsv3::tok {
namespace {

struct Span {
  size_t start, end;
  bool is_match;
};

// One Split step on one piece, following Hugging Face's NormalizedString::split: the pattern's
// matches and the gaps between them cover the piece; the behaviour decides what is kept and
// what is glued together; empty results are dropped.
void split_piece(const SplitStep& step, std::string_view piece, std::vector<Span>& spans,
                 std::vector<std::string_view>& out) {
  spans.clear();
  size_t prev = 0;
  step.regex.for_each_match(piece, [&](size_t s, size_t e) {
    if (prev != s) spans.push_back({prev, s, step.invert});
    spans.push_back({s, e, !step.invert});
    prev = e;
  });
  if (prev != piece.size()) spans.push_back({prev, piece.size(), step.invert});

  auto emit = [&](size_t s, size_t e) {
    if (e > s) out.push_back(piece.substr(s, e - s));
  };
  switch (step.behavior) {
    case SplitBehavior::Isolated:
      for (const Span& sp : spans) emit(sp.start, sp.end);
      break;
    case SplitBehavior::Removed:
      for (const Span& sp : spans)
        if (!sp.is_match) emit(sp.start, sp.end);
      break;
    case SplitBehavior::Contiguous:
    case SplitBehavior::MergedWithPrevious: {
      // Contiguous: consecutive spans of the same kind fuse. MergedWithPrevious: a match fuses
      // onto the span before it unless that one was a match too.
      const bool contiguous = step.behavior == SplitBehavior::Contiguous;
      std::vector<std::pair<size_t, size_t>> acc;
      bool previous_match = false;
      for (const Span& sp : spans) {
        const bool fuse = contiguous ? sp.is_match == previous_match : (sp.is_match && !previous_match);
        if (fuse && !acc.empty()) {
          acc.back().second = sp.end;
        } else {
          acc.push_back({sp.start, sp.end});
        }
        previous_match = sp.is_match;
      }
      for (const auto& [s, e] : acc) emit(s, e);
      break;
    }
    case SplitBehavior::MergedWithNext: {
      // Mirror image of MergedWithPrevious: walk backwards, a match fuses onto the span after it.
      std::vector<std::pair<size_t, size_t>> acc;
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !acc.empty()) {
          acc.back().first = it->start;
        } else {
          acc.push_back({it->start, it->end});
        }
        previous_match = it->is_match;
      }
      for (auto it = acc.rbegin(); it != acc.rend(); ++it) emit(it->first, it->second);
      break;
    }
  }
}

}  // namespace

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    out.push_back(text);
    return;
  }
  // Ping-pong between two piece lists, one step at a time; the last step writes into out.
  thread_local std::vector<std::string_view> a, b;
  thread_local std::vector<Span> spans;
  a.clear();
  a.push_back(text);
  for (size_t k = 0; k < steps_.size(); ++k) {
    std::vector<std::string_view>& dst = k + 1 == steps_.size() ? out : b;
    if (&dst == &b) b.clear();
    for (std::string_view piece : a) split_piece(steps_[k], piece, spans, dst);
    if (&dst == &b) std::swap(a, b);
  }
}

}  // namespace dsv3::tok
