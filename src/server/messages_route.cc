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

class MessagesProtocol final : public Protocol {
 public:
  MessagesProtocol(const ServeContext& ctx, const api::ChatPrompt& prompt, int64_t prompt_tokens)
      : blocks_(prompt), id_(random_id("msg_")), model_(ctx.opts.model_name), prompt_tokens_(prompt_tokens) {}

  std::string open() override {
    ojson m = message({}, nullptr);
    m["usage"] = {{"input_tokens", prompt_tokens_}, {"output_tokens", 0}};
    return event("message_start", {{"message", m}}) + event("ping", ojson::object());
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
    return event("message_delta", {{"delta", delta}, {"usage", usage(u)}}) + event("message_stop", ojson::object());
  }

  ojson body(const std::vector<runtime::FinishInfo>& f, const Usage& u) override {
    if (f[0].reason == runtime::FinishReason::Error) return anthropic_error("api_error", f[0].error);
    ojson content = ojson::array();
    for (size_t b = 0; b < blocks_.blocks().size(); ++b) content.push_back(block(b, true));
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
                 {"content", content.is_null() ? ojson::array() : std::move(content)},
                 {"stop_reason", std::move(stop)},
                 {"stop_sequence", nullptr}};
  }

  static ojson usage(const Usage& u) {
    return ojson{{"input_tokens", u.prompt - u.cached},
                 {"cache_creation_input_tokens", 0},
                 {"cache_read_input_tokens", u.cached},
                 {"output_tokens", u.completion}};
  }

  std::string stop_reason(const runtime::FinishInfo& f) const {
    if (blocks_.has_tool_calls() && blocks_.finish_reason(f.reason) == "tool_calls") return "tool_use";
    if (f.reason == runtime::FinishReason::Length) return "max_tokens";
    if (!f.stop_string.empty()) return "stop_sequence";
    return "end_turn";
  }
  static ojson stop_sequence(const runtime::FinishInfo& f) {
    return f.stop_string.empty() ? ojson(nullptr) : ojson(f.stop_string);
  }

  // Content block b: whole, or as content_block_start announces it (empty).
  ojson block(size_t b, bool done) const {
    const AnswerBlock& blk = blocks_.blocks()[b];
    switch (blk.kind) {
      case AnswerBlock::Kind::Reasoning:
        return ojson{{"type", "thinking"}, {"thinking", done ? blk.text : ""}, {"signature", ""}};
      case AnswerBlock::Kind::Text:
        return ojson{{"type", "text"}, {"text", done ? blk.text : ""}};
      case AnswerBlock::Kind::ToolCall: {
        ojson input = ojson::object();
        if (done) {
          // A call the model left unfinished (max_tokens) or wrote as invalid JSON: its text
          // is kept as a text block rather than dropped or turned into a made-up object.
          input = ojson::parse(blk.text, nullptr, false);
          if (input.is_discarded() || !input.is_object())
            return ojson{{"type", "text"}, {"text", blk.text}};
        }
        return ojson{{"type", "tool_use"}, {"id", blk.call_id}, {"name", blk.name}, {"input", std::move(input)}};
      }
    }
    return nullptr;
  }

  std::string event(const char* type, ojson fields) const {
    ojson e{{"type", type}};
    for (auto& [k, v] : fields.items()) e[k] = std::move(v);
    return sse(e, type);
  }

  std::string events(const std::vector<BlockEvent>& evs) const {
    std::string out;
    for (const BlockEvent& ev : evs) {
      const AnswerBlock& blk = blocks_.blocks()[ev.block];
      switch (ev.type) {
        case BlockEvent::Type::Start:
          out += event("content_block_start", {{"index", ev.block}, {"content_block", block(ev.block, false)}});
          break;
        case BlockEvent::Type::Delta: {
          ojson d;
          if (blk.kind == AnswerBlock::Kind::Reasoning) d = {{"type", "thinking_delta"}, {"thinking", ev.delta}};
          else if (blk.kind == AnswerBlock::Kind::Text) d = {{"type", "text_delta"}, {"text", ev.delta}};
          else d = {{"type", "input_json_delta"}, {"partial_json", ev.delta}};
          out += event("content_block_delta", {{"index", ev.block}, {"delta", std::move(d)}});
          break;
        }
        case BlockEvent::Type::Stop:
          if (blk.kind == AnswerBlock::Kind::Reasoning)
            out += event("content_block_delta",
                         {{"index", ev.block}, {"delta", {{"type", "signature_delta"}, {"signature", ""}}}});
          out += event("content_block_stop", {{"index", ev.block}});
          break;
      }
    }
    return out;
  }

  AnswerBlocks blocks_;
  const std::string id_;
  const std::string model_;
  const int64_t prompt_tokens_;
};

}  // namespace

Plan plan_message(ServeContext& ctx, std::string_view body) {
  const api::ChatCompletionRequest r = api::parse_messages_request(body, ctx.limits());
  ChatSequences s = plan_chat_sequences(ctx, r);
  s.plan.stream = r.stream;
  s.plan.protocol = std::make_unique<MessagesProtocol>(ctx, s.prompt, s.plan.prompt_tokens);
  return std::move(s.plan);
}

std::string count_message_tokens(ServeContext& ctx, std::string_view body) {
  if (!ctx.chat)
    throw api::ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions");
  const api::ChatCompletionRequest r = api::parse_messages_request(body, ctx.limits(), true);
  ctx.check_model(r.model);
  const api::ChatPrompt prompt = ctx.chat->build(r);
  return dump(ojson{{"input_tokens", ctx.tok.encode(prompt.text, false, false).size()}});
}

}  // namespace dsv3::server
