// POST /v1/responses: the OpenAI Responses API over the chat path. One answer per request,
// presented as output items (reasoning, message, function_call) and, when streaming, the
// documented event sequence: response.created, response.in_progress, per item
// output_item.added / content_part.added / *.delta / *.done / output_item.done, then
// response.completed (or response.incomplete at max_output_tokens, response.failed on an
// engine error). Every event carries a sequence_number.
#include <ctime>

#include "api/errors.h"
#include "api/responses_request.h"
#include "server/answer_blocks.h"
#include "server/request_path.h"

namespace dsv3::server {
namespace {

class ResponsesProtocol final : public Protocol {
 public:
  ResponsesProtocol(const ServeContext& ctx, const api::ChatPrompt& prompt, ojson echo)
      : blocks_(prompt), echo_(std::move(echo)), id_(random_id("resp_")), model_(ctx.opts.model_name) {}

  std::string open() override {
    ojson r = response("in_progress", nullptr);
    std::string out = event("response.created", {{"response", r}});  // (two statements: numbered in order)
    return out + event("response.in_progress", {{"response", r}});
  }

  std::string token(size_t, const runtime::TokenEvent& ev) override { return events(blocks_.push(ev.text)); }

  std::string finish(size_t, const runtime::FinishInfo& f) override {
    cut_ = f.reason == runtime::FinishReason::Length;
    std::string out = events(blocks_.finish(f.tail));
    if (f.reason == runtime::FinishReason::Error) {
      ojson r = response("failed", nullptr);
      r["error"] = {{"code", "server_error"}, {"message", f.error}};
      out += event("response.failed", {{"response", r}});
    }
    return out;
  }

  std::string close(const std::vector<runtime::FinishInfo>& f, const Usage& u) override {
    if (f[0].reason == runtime::FinishReason::Error) return {};
    ojson r = final_response(u);
    const std::string status = r["status"];
    return event(status == "completed" ? "response.completed" : "response.incomplete", {{"response", r}});
  }

  // An engine error cannot change the status any more (keep-alive bytes went out): it is a
  // response with status "failed", a shape Responses clients read.
  ojson body(const std::vector<runtime::FinishInfo>& f, const Usage& u) override {
    if (f[0].reason == runtime::FinishReason::Error) {
      ojson r = response("failed", nullptr);
      r["error"] = {{"code", "server_error"}, {"message", f[0].error}};
      return r;
    }
    return final_response(u);
  }

 private:
  ojson response(const char* status, ojson usage) const {
    ojson r{{"id", id_},
            {"object", "response"},
            {"created_at", created_},
            {"status", status},
            {"error", nullptr},
            {"incomplete_details", nullptr},
            {"model", model_},
            {"output", ojson::array()},
            {"previous_response_id", nullptr},
            {"store", false},
            {"truncation", "disabled"},
            {"usage", std::move(usage)}};
    for (auto& [k, v] : echo_.items()) r[k] = v;
    return r;
  }

  // After finish(), which set cut_.
  ojson final_response(const Usage& u) const {
    // reasoning_tokens stays 0: thoughts are split from the answer as text, not counted by token.
    ojson r = response(cut_ ? "incomplete" : "completed",
                       ojson{{"input_tokens", u.prompt},
                             {"input_tokens_details", {{"cached_tokens", u.cached}}},
                             {"output_tokens", u.completion},
                             {"output_tokens_details", {{"reasoning_tokens", 0}}},
                             {"total_tokens", u.prompt + u.completion}});
    if (cut_) r["incomplete_details"] = {{"reason", "max_output_tokens"}};
    for (size_t b = 0; b < blocks_.blocks().size(); ++b) r["output"].push_back(item(b, true));
    return r;
  }

  // Output item of block b, whole (done) or as first announced. The last one is
  // "incomplete" when max_output_tokens cut the answer.
  ojson item(size_t b, bool done) const {
    const AnswerBlock& blk = blocks_.blocks()[b];
    const std::string& text = done ? blk.text : std::string();
    const char* status = !done ? "in_progress" : cut_ && b + 1 == blocks_.blocks().size() ? "incomplete" : "completed";
    switch (blk.kind) {
      case AnswerBlock::Kind::Reasoning:
        return ojson{{"id", item_id(b)},
                     {"type", "reasoning"},
                     {"summary", ojson::array()},
                     {"content", done ? ojson::array({part(b, text)}) : ojson::array()}};
      case AnswerBlock::Kind::Text:
        return ojson{{"id", item_id(b)},
                     {"type", "message"},
                     {"status", status},
                     {"role", "assistant"},
                     {"content", done ? ojson::array({part(b, text)}) : ojson::array()}};
      case AnswerBlock::Kind::ToolCall:
        return ojson{{"id", item_id(b)},
                     {"type", "function_call"},
                     {"status", status},
                     {"call_id", blk.call_id},
                     {"name", blk.name},
                     {"arguments", text}};
    }
    return nullptr;
  }

  ojson part(size_t b, const std::string& text) const {
    if (blocks_.blocks()[b].kind == AnswerBlock::Kind::Reasoning) return ojson{{"type", "reasoning_text"}, {"text", text}};
    return ojson{{"type", "output_text"}, {"text", text}, {"annotations", ojson::array()}, {"logprobs", ojson::array()}};
  }

  std::string item_id(size_t b) const {
    static const char* prefix[] = {"rs_", "msg_", "fc_"};
    return prefix[int(blocks_.blocks()[b].kind)] + id_.substr(5) + "_" + std::to_string(b);
  }

  std::string event(const char* type, ojson fields) {
    ojson e{{"type", type}, {"sequence_number", seq_++}};
    for (auto& [k, v] : fields.items()) e[k] = std::move(v);
    return sse(e, type);
  }

  std::string events(const std::vector<BlockEvent>& evs) {
    std::string out;
    for (const BlockEvent& ev : evs) {
      const size_t b = ev.block;
      const AnswerBlock& blk = blocks_.blocks()[b];
      const bool call = blk.kind == AnswerBlock::Kind::ToolCall;
      const bool thought = blk.kind == AnswerBlock::Kind::Reasoning;
      const ojson where{{"item_id", item_id(b)}, {"output_index", b}};
      auto with = [&](ojson extra) {
        ojson e = where;
        for (auto& [k, v] : extra.items()) e[k] = std::move(v);
        return e;
      };
      switch (ev.type) {
        case BlockEvent::Type::Start:
          out += event("response.output_item.added", {{"output_index", b}, {"item", item(b, false)}});
          if (!call) out += event("response.content_part.added", with({{"content_index", 0}, {"part", part(b, "")}}));
          break;
        case BlockEvent::Type::Delta:
          if (call) out += event("response.function_call_arguments.delta", with({{"delta", ev.delta}}));
          else if (thought)
            out += event("response.reasoning_text.delta", with({{"content_index", 0}, {"delta", ev.delta}}));
          else
            out += event("response.output_text.delta",
                         with({{"content_index", 0}, {"delta", ev.delta}, {"logprobs", ojson::array()}}));
          break;
        case BlockEvent::Type::Stop:
          if (call) {
            out += event("response.function_call_arguments.done", with({{"name", blk.name}, {"arguments", blk.text}}));
          } else {
            if (thought) out += event("response.reasoning_text.done", with({{"content_index", 0}, {"text", blk.text}}));
            else
              out += event("response.output_text.done",
                           with({{"content_index", 0}, {"text", blk.text}, {"logprobs", ojson::array()}}));
            out += event("response.content_part.done", with({{"content_index", 0}, {"part", part(b, blk.text)}}));
          }
          out += event("response.output_item.done", {{"output_index", b}, {"item", item(b, true)}});
          break;
      }
    }
    return out;
  }

  AnswerBlocks blocks_;
  const ojson echo_;
  const std::string id_;
  const std::string model_;
  const int64_t created_ = std::time(nullptr);
  int64_t seq_ = 0;
  bool cut_ = false;  // the answer ended at max_output_tokens
};

}  // namespace

Plan plan_response(ServeContext& ctx, std::string_view body) {
  api::ResponsesRequest r = api::parse_responses_request(body, ctx.limits());
  ChatSequences s = plan_chat_sequences(ctx, r.chat, "input");
  s.plan.stream = r.chat.stream;
  s.plan.protocol = std::make_unique<ResponsesProtocol>(ctx, s.prompt, std::move(r.echo));
  return std::move(s.plan);
}

}  // namespace dsv3::server
