// Tool calls in generated text: an incremental parser that splits the decoded answer into
// ordinary content and DeepSeek tool calls, as events a server turns into SSE deltas.
//
// Formats (the markers are single tokens of the V3 tokenizer, decoded to these strings):
//   V3:   <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//         \n<｜tool▁call▁begin｜>...<｜tool▁call▁end｜><｜tool▁calls▁end｜>
//   V3.1: <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
// Both are recognised in the same stream, call by call: the text between call-begin and
// tool-sep is "function" (V3; the name follows on that line, then an optional ``` fence) or
// the name itself (V3.1). A call-begin without the calls-begin before it is accepted too.
//
// Holding back: content is delayed only while its tail could be the start of a marker; a
// call's header (call-begin up to its name) is held until the name is complete; arguments
// are held only while their tail could be the closing fence, whitespace before it, or a
// marker. Every piece handed out is whole UTF-8.
//
// Malformed input (the rule): a call is committed once its header is complete: "function",
// tool-sep, a valid name and the newline (V3), or a valid name and tool-sep (V3.1). Text
// that fails before that point (a newline or another marker before tool-sep, a name with
// characters outside [A-Za-z0-9_.:-], a header longer than 256 bytes, other text right
// after calls-begin, or the end of generation) is returned as content, markers included, as
// generated. A committed call stays a call: if generation ends before its call-end it keeps
// the arguments that arrived (complete = false; a max_tokens cut reports finish_reason
// "length" as OpenAI does). A call-begin or calls-end arriving inside arguments ends the
// call as if call-end had come. Whitespace between calls is dropped; other text between
// calls ends the block and is content.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv3::api {

inline constexpr std::string_view kToolCallsBegin = "<｜tool▁calls▁begin｜>";
inline constexpr std::string_view kToolCallsEnd = "<｜tool▁calls▁end｜>";
inline constexpr std::string_view kToolCallBegin = "<｜tool▁call▁begin｜>";
inline constexpr std::string_view kToolCallEnd = "<｜tool▁call▁end｜>";
inline constexpr std::string_view kToolSep = "<｜tool▁sep｜>";

struct ToolCallEvent {
  enum class Kind {
    Content,    //!< text: ordinary answer text
    CallStart,  //!< index, id, name: a new call (its arguments follow as Arguments events)
    Arguments,  //!< index, text: the next piece of that call's arguments JSON
  };
  Kind kind = Kind::Content;
  std::string text;
  int index = -1;
  std::string id, name;

  bool operator==(const ToolCallEvent&) const = default;
};

struct ParsedToolCall {
  std::string id, name;
  std::string arguments;  //!< the concatenated Arguments pieces
  bool complete = false;  //!< its end marker arrived

  //! {"id", "type": "function", "function": {"name", "arguments"}}
  nlohmann::ordered_json to_json() const;
};

//! "call_" and 24 random letters and digits.
std::string random_tool_call_id();

class ToolCallParser {
 public:
  //! Gives the id of the call with this index; default random_tool_call_id().
  using IdMaker = std::function<std::string(int index)>;
  explicit ToolCallParser(IdMaker make_id = {});

  //! Feeds the next decoded text (any split, even inside a marker or a UTF-8 sequence) and
  //! returns the events it completes: adjacent Content pieces and Arguments pieces of one
  //! call come merged, empty pieces never. A forced prefix (see prompt.h) is fed first, as
  //! generated text.
  std::vector<ToolCallEvent> push(std::string_view text);
  //! Ends the stream: returns what was held back, by the rules above. Call once.
  std::vector<ToolCallEvent> finish();

  const std::vector<ParsedToolCall>& calls() const { return calls_; }
  //! All Content text so far.
  const std::string& content() const { return content_; }
  //! The calls as OpenAI's message.tool_calls array.
  nlohmann::ordered_json tool_calls_json() const;
  //! "tool_calls" when the engine stopped normally ("stop") after at least one call, else
  //! the engine's reason ("length", ...).
  std::string finish_reason(std::string_view engine_reason) const;

 private:
  enum class State { Content, Block, Header, Name, Fence, FenceLang, ArgsStart, Args };

  bool step(bool final);  // one transition; false when it needs more input
  void emit_content(std::string_view text);
  void emit_arguments(std::string_view text);
  void start_call(std::string name, bool v3);
  void end_call(bool complete);
  void malformed();  // release the held header text as content and go back to Content
  void consume(size_t n, bool keep_raw);

  IdMaker make_id_;
  State state_ = State::Content;
  std::string buf_;   // input not yet decided
  std::string raw_;   // text of an uncommitted block / header, released as content if it fails
  bool in_block_ = false, block_has_call_ = false;
  std::vector<ParsedToolCall> calls_;
  std::string content_;
  std::vector<ToolCallEvent> out_;
  bool finished_ = false;
};

}  // namespace dsv3::api
