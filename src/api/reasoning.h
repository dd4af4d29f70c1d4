// Reasoning models (R1, V3.1 in thinking mode) write their thoughts between <think> and
// </think> before the answer. ReasoningSplitter separates the streamed text into
// reasoning_content and content deltas, the fields DeepSeek's own API returns.
//
// When it is on (the rule): the chat template's source mentions "</think>" (R1 and V3.1
// templates do, to strip old thoughts from history), or the rendered prompt ends with
// "<think>" (optionally followed by one newline). Off, all text is content, untouched: a
// V3 answer that happens to say "<think>" stays as written.
// Where it starts: inside reasoning when the prompt ends with "<think>" / "<think>\n" (the
// template opened the block); otherwise in content, switching to reasoning only if the
// output itself begins with "<think>" (leading whitespace allowed). After "</think>",
// everything is content (a later "<think>" included).
// Whitespace: leading whitespace of the reasoning, trailing whitespace before "</think>"
// and leading whitespace of the content after it are dropped (R1 writes "\n" and "\n\n"
// there), so held-back text is at most a partial "</think>" plus the whitespace before it.
// A generation that ends inside reasoning keeps everything as reasoning.
#pragma once

#include <string>
#include <string_view>

namespace dsv3::api {

//! The template source mentions "</think>".
bool template_reasons(std::string_view template_source);
//! The prompt ends with "<think>" or "<think>\n".
bool prompt_opens_reasoning(std::string_view prompt);

struct ReasoningDelta {
  std::string reasoning;  //!< comes before `content` when a push holds both
  std::string content;
  bool empty() const { return reasoning.empty() && content.empty(); }
};

class ReasoningSplitter {
 public:
  //! enabled: split at all; start_in_reasoning: the prompt opened a <think> block.
  ReasoningSplitter(bool enabled, bool start_in_reasoning);
  //! Applies the rule above to a template and the prompt rendered with it.
  static ReasoningSplitter for_prompt(std::string_view template_source, std::string_view prompt);

  //! Feeds decoded text (any split); returns what is decided.
  ReasoningDelta push(std::string_view text);
  //! Ends the stream and returns what was held back. Call once.
  ReasoningDelta finish();

  bool enabled() const { return state_ != State::Off; }
  bool in_reasoning() const { return state_ == State::Reasoning; }
  const std::string& reasoning() const { return reasoning_; }  //!< all reasoning so far
  const std::string& content() const { return content_; }      //!< all content so far

 private:
  enum class State { Off, Start, Reasoning, Content };
  void step(bool final, ReasoningDelta& d);

  State state_;
  bool skip_space_ = false;  // drop leading whitespace of the current part
  std::string buf_;
  std::string reasoning_, content_;
  bool finished_ = false;
};

}  // namespace dsv3::api
