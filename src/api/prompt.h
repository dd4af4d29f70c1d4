// A chat request turned into prompt text through the model's chat template, with tools.
//
// Tools: when tools are offered (tool_choice is not "none" and tools were given) and the
// template renders a tool list itself (its source uses a `tools` variable), the validated
// tools array goes in as `tools`. DeepSeek's V3 / R1 / V3.1 templates do not: they render
// tool calls and tool outputs in history but never the list, so a "## Tools" section is
// written into the system prompt (appended to the first system message, or as a new first
// one) describing each function with its JSON Schema and the exact call format of the
// template's family (V3: "function<｜tool▁sep｜>NAME\n```json\n...\n```"; V3.1:
// "NAME<｜tool▁sep｜>ARGS"). tool_choice "required" or a named function also gives a
// forced_prefix: the engine makes the answer start with it (tokenize it with special tokens
// recognised, feed it through the sampler as forced tokens, and feed its text to the
// output parsers like generated text).
//
// History: an assistant message's tool-call arguments go in as the client's string, or
// parsed into JSON when the template pipes them through `tojson` (the R1 and V3.1
// templates do; a string would print quoted there).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/requests.h"
#include "chat/chat_template.h"

namespace dsv3::api {

enum class ToolCallFormat {
  V3,   //!< <｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
  V31,  //!< <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>
};

//! What a chat template does, read from its source once.
struct TemplateTraits {
  bool renders_tools = false;     //!< uses a variable named `tools`
  bool arguments_tojson = false;  //!< pipes tool-call arguments through tojson
  ToolCallFormat format = ToolCallFormat::V3;  //!< how it writes a call (V3 when it writes none)
  bool reasoning = false;         //!< mentions </think> (see reasoning.h)

  static TemplateTraits of(std::string_view source);
};

struct ChatPrompt {
  std::string text;           //!< the rendered prompt; tokenize without adding BOS (the template
                              //!< writes it) and with special tokens recognised
  std::string forced_prefix;  //!< the answer must begin with this text ("" = free)
  bool tools_offered = false;   //!< the model was told about tools: run the ToolCallParser
  bool tools_injected = false;  //!< ...by the system-prompt section written here
  ToolCallFormat format = ToolCallFormat::V3;
  bool reasoning = false;            //!< ReasoningSplitter(reasoning, starts_in_reasoning)
  bool starts_in_reasoning = false;  //!< the prompt ends inside an opened <think>
};

//! Built once per model (parses the template); build() is const and thread-safe.
class ChatPromptBuilder {
 public:
  //! Throws dsv3::Error when the template does not parse.
  ChatPromptBuilder(std::string template_source, std::string bos_token, std::string eos_token,
                    std::string name = "chat_template");

  //! The prompt for a validated request. Template variables: messages, add_generation_prompt
  //! (true unless asked otherwise: training renders a conversation that ends with its answer),
  //! bos_token, eos_token, tools (when rendered by the template), plus the request's
  //! chat_template_kwargs (which cannot override those). A template that raises (e.g.
  //! "roles must alternate") gives ApiError 400 with param "messages".
  ChatPrompt build(const ChatCompletionRequest& request, bool add_generation_prompt = true) const;

  //! The messages as the template sees them (tools section not included).
  ojson template_messages(const std::vector<ChatMessage>& messages) const;

  const TemplateTraits& traits() const { return traits_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_, bos_, eos_;
  ChatTemplate template_;
  TemplateTraits traits_;
};

//! The "## Tools" system-prompt section: each tool's name, description and parameter
//! schema, the call format, and what tool_choice / parallel_tool_calls demand.
std::string tools_system_prompt(const std::vector<ToolDef>& tools, ToolCallFormat format, const ToolChoice& choice,
                                bool parallel_tool_calls);

//! What tool_choice forces at the start of the answer: "" for none / auto; the calls-begin
//! and call-begin markers (V3: plus "function<｜tool▁sep｜>") for required; for a named
//! function also its name and what follows it (V3: "\n```json\n", V3.1: the separator).
std::string forced_tool_prefix(ToolCallFormat format, const ToolChoice& choice);

}  // namespace dsv3::api
