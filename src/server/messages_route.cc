// POST /v1/messages and /v1/messages/count_tokens: the Anthropic Messages API over the chat
// path. One answer per request as content blocks (thinking, text, tool_use) and, when
// streaming, Anthropic's events: message_start, content_block_start / _delta / _stop per
// block, message_delta (stop_reason, usage), message_stop; an engine error mid-stream is an
// `error` event. Errors are Anthropic error bodies (http_server.cc renders them).
#include <ctime>

#include "api/errors.h"
#include "api/messages_request.h"
#include "server/answer_blocks.h"
#include "server/request_path.h"

namespace dsv3::server {
namespace {

ojson anthropic_error(const std::string& type, const std::string& message) {
  return ojson{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
}

// A tool call's arguments as tool_use input: a JSON object, else null (a call the model left
// unfinished at max_tokens or wrote as invalid JSON).
ojson tool_input(const AnswerBlock& b) {
  ojson input = ojson::parse(b.text, nullptr, false);
  return !input.is_discarded() && input.is_object() ? input : ojson(nullptr);
}

// Anthropic's blocks are what a client can use as is: a tool call becomes a tool_use block
// only once its arguments are complete and valid (streaming holds its events until then), a
// broken call is kept as a text block of its arguments (an empty one is dropped), and blocks
// are numbered as they are sent.
class MessagesProtocol final : public Protocol {
 public:
  MessagesProtocol(const ServeContext& ctx, const api::ChatPrompt& prompt, int64_t prompt_tokens)
      : blocks_(prompt), id_(random_id("msg_")), model_(ctx.opts.model_name), prompt_tokens_(prompt_tokens) {}

  std::string open() override {
    ojson m = message(ojson::array(), nullptr);
    m["usage"] = {{"input_tokens", prompt_tokens_}, {"output_tokens", 0}};
    std::string out = event("message_start", {{"message", m}});
    return out + event("ping", ojson::object());
  }

  std::string token(size_t, const runtime::TokenEvent& ev) override { return events(blocks_.push(ev.text)); }

  std::string finish(size_t, const runtime::FinishInfo& f) override {
    std::string out = events(blocks_.finish(f.tail));
    if (f.reason == runtime::FinishReason::Error) out += sse(anthropic_error("api_error", f.error), "error");
    return out;
  }

  std::string close(const std::vector<runtime::FinishInfo>& f, const Usage& u) override {
    if (f[0].reason == runtime::FinishReason::Error) return {};
    ojson delta{{"stop_reason", stop_reason(f[0])}, {"stop_sequence", stop_sequence(f[0])}};
    std::string out = event("message_delta", {{"delta", delta}, {"usage", usage(u)}});
    return out + event("message_stop", ojson::object());
  }

  // An engine error cannot change the status any more (keep-alive bytes went out): the
  // body is then Anthropic's error body with status 200.
  ojson body(const std::vector<runtime::FinishInfo>& f, const Usage& u) override {
    if (f[0].reason == runtime::FinishReason::Error) return anthropic_error("api_error", f[0].error);
    ojson content = ojson::array();
    for (const AnswerBlock& b : blocks_.blocks()) {
      ojson c = whole(b);
      if (!c.is_null()) content.push_back(std::move(c));
    }
    ojson m = message(std::move(content), stop_reason(f[0]));
    m["stop_sequence"] = stop_sequence(f[0]);
    m["usage"] = usage(u);
    return m;
  }

 private:
  ojson message(ojson content, ojson stop) const {
    return ojson{{"id", id_},
                 {"type", "message"},
                 {"role", "assistant"},
                 {"model", model_},
                 {"content", std::move(content)},
                 {"stop_reason", std::move(stop)},
                 {"stop_sequence", nullptr}};
  }

  static ojson usage(const Usage& u) {
    return ojson{{"input_tokens", u.prompt - u.cached},
                 {"cache_creation_input_tokens", 0},
                 {"cache_read_input_tokens", u.cached},
                 {"output_tokens", u.completion}};
  }

  bool valid_tool_use() const {
    for (const AnswerBlock& b : blocks_.blocks())
      if (b.kind == AnswerBlock::Kind::ToolCall && !tool_input(b).is_null()) return true;
    return false;
  }

  std::string stop_reason(const runtime::FinishInfo& f) const {
    if (f.reason == runtime::FinishReason::Length) return "max_tokens";
    if (valid_tool_use()) return "tool_use";
    if (!f.stop_string.empty()) return "stop_sequence";
    return "end_turn";
  }
  static ojson stop_sequence(const runtime::FinishInfo& f) {
    return f.stop_string.empty() ? ojson(nullptr) : ojson(f.stop_string);
  }

  // A block as the body holds it (null: dropped).
  static ojson whole(const AnswerBlock& b) {
    switch (b.kind) {
      case AnswerBlock::Kind::Reasoning: return ojson{{"type", "thinking"}, {"thinking", b.text}, {"signature", ""}};
      case AnswerBlock::Kind::Text: return ojson{{"type", "text"}, {"text", b.text}};
      case AnswerBlock::Kind::ToolCall: {
        ojson input = tool_input(b);
        if (!input.is_null())
          return ojson{{"type", "tool_use"}, {"id", b.call_id}, {"name", b.name}, {"input", std::move(input)}};
        return b.text.empty() ? ojson(nullptr) : ojson{{"type", "text"}, {"text", b.text}};
      }
    }
    return nullptr;
  }

  std::string event(const char* type, ojson fields) const {
    ojson e{{"type", type}};
    for (auto& [k, v] : fields.items()) e[k] = std::move(v);
    return sse(e, type);
  }

  std::string delta(int64_t index, ojson d) const {
    return event("content_block_delta", {{"index", index}, {"delta", std::move(d)}});
  }

  std::string events(const std::vector<BlockEvent>& evs) {
    std::string out;
    for (const BlockEvent& ev : evs) {
      const AnswerBlock& blk = blocks_.blocks()[ev.block];
      if (blk.kind == AnswerBlock::Kind::ToolCall) {
        if (ev.type == BlockEvent::Type::Stop) out += whole_tool_call(blk);
        continue;  // held until complete
      }
      const bool thought = blk.kind == AnswerBlock::Kind::Reasoning;
      switch (ev.type) {
        case BlockEvent::Type::Start:
          out += event("content_block_start",
                       {{"index", sent_},
                        {"content_block", thought ? ojson{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}
                                                  : ojson{{"type", "text"}, {"text", ""}}}});
          break;
        case BlockEvent::Type::Delta:
          out += delta(sent_, thought ? ojson{{"type", "thinking_delta"}, {"thinking", ev.delta}}
                                      : ojson{{"type", "text_delta"}, {"text", ev.delta}});
          break;
        case BlockEvent::Type::Stop:
          if (thought) out += delta(sent_, {{"type", "signature_delta"}, {"signature", ""}});
          out += event("content_block_stop", {{"index", sent_++}});
          break;
      }
    }
    return out;
  }

  // A finished tool call, sent whole: as tool_use with its input in one input_json_delta,
  // or as the text block the body has.
  std::string whole_tool_call(const AnswerBlock& b) {
    const ojson c = whole(b);
    if (c.is_null()) return {};
    std::string out;
    if (c["type"] == "tool_use") {
      out += event("content_block_start",
                   {{"index", sent_},
                    {"content_block",
                     ojson{{"type", "tool_use"}, {"id", b.call_id}, {"name", b.name}, {"input", ojson::object()}}}});
      out += delta(sent_, {{"type", "input_json_delta"}, {"partial_json", c["input"].dump()}});
    } else {
      out += event("content_block_start", {{"index", sent_}, {"content_block", {{"type", "text"}, {"text", ""}}}});
      out += delta(sent_, {{"type", "text_delta"}, {"text", b.text}});
    }
    return out + event("content_block_stop", {{"index", sent_++}});
  }

  AnswerBlocks blocks_;
  const std::string id_;
  const std::string model_;
  const int64_t prompt_tokens_;
  int64_t sent_ = 0;  // content blocks sent so far (the next one's index)
};

}  // namespace

// The model field names whatever the client is configured with (Claude Code's background
// requests name a small model): any name is accepted, and the answer names the served model.
Plan plan_message(ServeContext& ctx, std::string_view body) {
  api::ChatCompletionRequest r = api::parse_messages_request(body, ctx.limits());
  r.model.clear();
  ChatSequences s = plan_chat_sequences(ctx, r);
  s.plan.stream = r.stream;
  s.plan.protocol = std::make_unique<MessagesProtocol>(ctx, s.prompt, s.plan.prompt_tokens);
  return std::move(s.plan);
}

std::string count_message_tokens(ServeContext& ctx, std::string_view body) {
  if (!ctx.chat)
    throw api::ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions");
  const api::ChatCompletionRequest r = api::parse_messages_request(body, ctx.limits(), true);
  const api::ChatPrompt prompt = ctx.chat->build(r);
  return dump(ojson{{"input_tokens", ctx.tok.encode(prompt.text, false, false).size()}});
}

}  // namespace dsv3::server
