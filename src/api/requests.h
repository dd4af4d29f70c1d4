// Request bodies of the OpenAI-compatible API (/v1/chat/completions, /v1/completions),
// parsed and validated into structs. Anything a client can get wrong throws ApiError 400
// with `param` naming the field ("messages[1].content[0].type"), so the server never sees
// a half-valid request. Unknown top-level fields are ignored (clients send extras); a null
// value counts as absent, as OpenAI treats it.
//
// Client JSON that reaches the chat template (tools, message extras, tool-call arguments)
// is kept as nlohmann::ordered_json so it renders in the client's key order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/errors.h"
#include "sampling/sampler.h"

namespace dsv3::api {

using ojson = nlohmann::ordered_json;

//! Server-side bounds the validation depends on.
struct RequestLimits {
  int max_n = 16;          //!< most choices per request (n)
  int32_t vocab_size = 0;  //!< token ids (logit_bias keys, token prompts) must be below it; 0: unchecked
};

struct ToolCall {
  std::string id;
  std::string type = "function";
  std::string name;
  std::string arguments;  //!< the client's JSON text, byte for byte
};

struct ChatMessage {
  std::string role;                    //!< system | user | assistant | tool ("developer" becomes system)
  std::optional<std::string> content;  //!< content parts joined by "\n"; null only for an assistant
                                       //!< message that carries tool_calls
  std::string name;                    //!< optional participant name ("" = none)
  std::vector<ToolCall> tool_calls;    //!< assistant only
  std::string tool_call_id;            //!< tool only (required there)
  //! The message as templates see it: the client's object in its key order, with content
  //! normalised (string, or null when absent), "developer" renamed "system", tool calls given
  //! "type": "function" when missing and object arguments printed to a string. Other fields
  //! (e.g. "prefix", "reasoning_content") pass through as sent.
  ojson json = ojson::object();
};

struct ToolDef {
  std::string name;         //!< [A-Za-z0-9_-]{1,64}
  std::string description;  //!< "" = none
  ojson parameters;         //!< JSON Schema object; null when the client gave none
  bool strict = false;
};

struct ToolChoice {
  enum class Mode { None, Auto, Required, Named };
  Mode mode = Mode::None;  //!< default: Auto when tools are given, None otherwise (as OpenAI)
  std::string name;        //!< Named only
};

struct ResponseFormat {
  enum class Type { Text, JsonObject, JsonSchema };
  Type type = Type::Text;
  std::string name;               //!< json_schema.name
  std::string description;        //!< json_schema.description
  ojson schema;                   //!< json_schema.schema as sent (null when absent)
  bool strict = false;            //!< json_schema.strict
};

//! The fields chat and text completions share.
struct CommonRequest {
  std::string model;                      //!< "" when absent (a one-model server may accept that)
  SamplingParams sampling;                //!< temperature, top_p, top_k, min_p, penalties, logit_bias, seed
  std::vector<std::string> stop;          //!< at most 4, none empty
  int n = 1;                              //!< choices per prompt, 1..RequestLimits::max_n
  bool stream = false;
  bool include_usage = false;             //!< stream_options.include_usage (only with stream)
  std::string user;                       //!< accepted and ignored
  bool ignore_eos = false;                //!< extension (vLLM): keep going past end-of-sequence
  bool speculative = true;                //!< extension: false turns the server's MTP drafting off for this request
};

struct ChatCompletionRequest : CommonRequest {
  std::vector<ChatMessage> messages;      //!< non-empty
  std::optional<int64_t> max_tokens;      //!< max_completion_tokens, else max_tokens; absent: server's limit
  bool logprobs = false;
  int top_logprobs = 0;                   //!< 0..20, only with logprobs
  std::vector<ToolDef> tools;
  ojson tools_json = ojson::array();      //!< the validated tools array as sent (for templates that render it)
  ToolChoice tool_choice;
  bool parallel_tool_calls = true;
  ResponseFormat response_format;
  ojson chat_template_kwargs = ojson::object();  //!< extension: extra template variables (e.g. "thinking")
};

//! One prompt of a text completion: text, or token ids when the client sent ids.
struct PromptInput {
  bool is_tokens = false;
  std::string text;
  std::vector<int32_t> tokens;
};

struct CompletionRequest : CommonRequest {
  std::vector<PromptInput> prompts;  //!< one per prompt sent; each gets n choices (OpenAI's index order:
                                     //!< prompt-major, choice index = prompt * n + k)
  int64_t max_tokens = 16;           //!< OpenAI's default; 0 allowed (with echo: scores the prompt only)
  bool echo = false;                 //!< prepend the prompt to the text (with logprobs: and its tokens' logprobs)
  std::optional<int> logprobs;       //!< 0..5 alternatives per token; absent: no logprobs
};

//! Parses a body; malformed JSON, a non-object body and every invalid field throw ApiError 400.
ChatCompletionRequest parse_chat_request(std::string_view body, const RequestLimits& limits = {});
CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits = {});
//! The same for a body already parsed (with ordered_json, to keep the client's key order).
ChatCompletionRequest parse_chat_request_json(const ojson& body, const RequestLimits& limits = {});
CompletionRequest parse_completion_request_json(const ojson& body, const RequestLimits& limits = {});

}  // namespace dsv3::api
