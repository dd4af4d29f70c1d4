#include "api/reasoning.h"

#include "api/text_scan.h"

namespace dsv3::api {
namespace {

using detail::is_space;
constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

}  // namespace

bool template_reasons(std::string_view source) { return source.find(kClose) != std::string_view::npos; }

bool prompt_opens_reasoning(std::string_view prompt) {
  if (prompt.ends_with('\n')) prompt.remove_suffix(1);
  return prompt.ends_with(kOpen);
}

ReasoningSplitter::ReasoningSplitter(bool enabled, bool start_in_reasoning)
    : state_(!enabled ? State::Off : start_in_reasoning ? State::Reasoning : State::Start),
      skip_space_(enabled && start_in_reasoning) {}

ReasoningSplitter ReasoningSplitter::for_prompt(std::string_view template_source, std::string_view prompt) {
  const bool opens = prompt_opens_reasoning(prompt);
  return ReasoningSplitter(opens || template_reasons(template_source), opens);
}

ReasoningDelta ReasoningSplitter::push(std::string_view text) {
  ReasoningDelta d;
  buf_.append(text);
  step(false, d);
  reasoning_ += d.reasoning;
  content_ += d.content;
  return d;
}

ReasoningDelta ReasoningSplitter::finish() {
  ReasoningDelta d;
  if (finished_) return d;
  finished_ = true;
  step(true, d);
  reasoning_ += d.reasoning;
  content_ += d.content;
  return d;
}

void ReasoningSplitter::step(bool final, ReasoningDelta& d) {
  for (;;) {
    switch (state_) {
      case State::Off:
        d.content += buf_;
        buf_.clear();
        return;

      case State::Start: {
        size_t i = 0;
        while (i < buf_.size() && is_space(buf_[i])) ++i;
        const std::string_view rest = std::string_view(buf_).substr(i);
        if (rest.starts_with(kOpen)) {
          buf_.erase(0, i + kOpen.size());
          state_ = State::Reasoning;
          skip_space_ = true;
          continue;
        }
        if (!final && rest.size() < kOpen.size() && kOpen.starts_with(rest)) return;  // may still open
        state_ = State::Content;  // leading whitespace stays: nothing was opened
        continue;
      }

      case State::Reasoning: {
        if (skip_space_) {
          size_t i = 0;
          while (i < buf_.size() && is_space(buf_[i])) ++i;
          buf_.erase(0, i);
          if (buf_.empty()) return;
          skip_space_ = false;
        }
        const size_t p = buf_.find(kClose);
        if (p != std::string::npos) {
          size_t end = p;
          while (end > 0 && is_space(buf_[end - 1])) --end;
          d.reasoning.append(buf_, 0, end);
          buf_.erase(0, p + kClose.size());
          state_ = State::Content;
          skip_space_ = true;
          continue;
        }
        size_t cut = buf_.size();
        if (!final) {
          cut -= detail::partial_marker_suffix(buf_, {kClose});
          while (cut > 0 && is_space(buf_[cut - 1])) --cut;
          cut = detail::utf8_safe_cut(buf_, cut);
        }
        d.reasoning.append(buf_, 0, cut);
        buf_.erase(0, cut);
        return;
      }

      case State::Content: {
        if (skip_space_) {
          size_t i = 0;
          while (i < buf_.size() && is_space(buf_[i])) ++i;
          buf_.erase(0, i);
          if (buf_.empty()) return;
          skip_space_ = false;
        }
        d.content += buf_;
        buf_.clear();
        return;
      }
    }
  }
}

}  // namespace dsv3::api
