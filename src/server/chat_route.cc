// POST /v1/chat/completions: messages through the chat template (tools, forced tool-call
// prefixes, reasoning), response_format constraints, and chat-shaped choices (delta /
// message, tool_calls, reasoning_content, logprobs.content).
#include <nlohmann/json.hpp>

#include "api/errors.h"
#include "api/prompt.h"
#include "api/tool_constraint.h"
#include "base/error.h"
#include "sampling/json_schema.h"
#include "sampling/json_token_constraint.h"
#include "server/choice_output.h"
#include "server/openai_names.h"
#include "server/request_path.h"

namespace dsv3::server {
namespace {

std::unique_ptr<TokenConstraint> response_format_constraint(ServeContext& ctx, const api::ResponseFormat& f) {
  if (f.type == api::ResponseFormat::Type::Text) return nullptr;
  std::shared_ptr<const JsonConstraint> c;
  try {
    if (f.type == api::ResponseFormat::Type::JsonObject) {
      c = JsonConstraint::compile_object();
    } else {
      if (f.schema.is_null())
        throw api::ApiError::invalid("response_format.json_schema.schema", "json_schema needs a 'schema' object");
      c = JsonConstraint::compile_schema(nlohmann::json::parse(f.schema.dump()), f.strict);
    }
  } catch (const Error& e) {
    throw api::ApiError::invalid("response_format.json_schema.schema", e.what());
  }
  return std::make_unique<JsonTokenConstraint>(c, ctx.vocab(), ctx.eos_ids(), size_t(ctx.model.config().vocab_size));
}

class ChatRenderer final : public ChoiceRenderer {
 public:
  ChatRenderer(const Tokenizer& tok, const api::ChatPrompt& prompt, size_t n, bool logprobs, int top)
      : tok_(tok), logprobs_(logprobs), top_(top) {
    for (size_t i = 0; i < n; ++i) out_.emplace_back(prompt);
    lp_.assign(n, ojson::array());
  }

  const char* id_prefix() const override { return "chatcmpl-"; }
  const char* chunk_object() const override { return "chat.completion.chunk"; }
  const char* body_object() const override { return "chat.completion"; }

  ojson opening(size_t i) override { return choice(i, ojson{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr); }

  ojson token(size_t i, const runtime::TokenEvent& ev) override {
    ojson delta = out_[i].push(ev.text);
    ojson lp = nullptr;
    if (logprobs_) {
      ojson e = logprob_entry(ev);
      lp_[i].push_back(e);
      lp = ojson{{"content", ojson::array({std::move(e)})}};
    }
    if (delta.empty() && lp.is_null()) return nullptr;
    return choice(i, std::move(delta), std::move(lp), nullptr);
  }

  std::vector<ojson> finish(size_t i, const runtime::FinishInfo& f) override {
    ojson delta = out_[i].push(f.tail);
    ojson rest = out_[i].finish();
    for (auto& [k, v] : rest.items()) merge_delta(delta, k, v);
    std::vector<ojson> chunks;
    if (!delta.empty()) chunks.push_back(choice(i, std::move(delta), nullptr, nullptr));
    if (f.reason != runtime::FinishReason::Error)
      chunks.push_back(choice(i, ojson::object(), nullptr, out_[i].finish_reason(f.reason)));
    return chunks;
  }

  ojson final_choice(size_t i, const runtime::FinishInfo& f) override {
    return ojson{{"index", i},
                 {"message", out_[i].message()},
                 {"logprobs", logprobs_ ? ojson{{"content", lp_[i]}} : ojson(nullptr)},
                 {"finish_reason", out_[i].finish_reason(f.reason)}};
  }

 private:
  static ojson choice(size_t i, ojson delta, ojson lp, ojson finish) {
    return ojson{{"index", i}, {"delta", std::move(delta)}, {"logprobs", std::move(lp)}, {"finish_reason", finish}};
  }

  // Deltas released together at the end: strings concatenate, tool-call pieces append.
  static void merge_delta(ojson& delta, const std::string& key, const ojson& v) {
    if (key == "tool_calls" && delta.contains("tool_calls")) {
      for (const auto& t : v) delta["tool_calls"].push_back(t);
    } else if (v.is_string() && delta.contains(key) && delta[key].is_string()) {
      delta[key] = delta[key].get<std::string>() + v.get<std::string>();
    } else {
      delta[key] = v;
    }
  }

  ojson token_logprob(int32_t id, float lp) const {
    const std::string& b = tok_.token_bytes(id);
    ojson bytes = ojson::array();
    for (unsigned char ch : b) bytes.push_back(int(ch));
    return ojson{{"token", b}, {"logprob", lp}, {"bytes", bytes}};
  }

  ojson logprob_entry(const runtime::TokenEvent& ev) const {
    ojson e = token_logprob(ev.token, ev.logprob);
    ojson alts = ojson::array();
    for (int k = 0; k < top_ && k < int(ev.top.size()); ++k)
      alts.push_back(token_logprob(ev.top[size_t(k)].token, ev.top[size_t(k)].logprob));
    e["top_logprobs"] = alts;
    return e;
  }

  const Tokenizer& tok_;
  const bool logprobs_;
  const int top_;
  std::vector<ChoiceOutput> out_;
  std::vector<ojson> lp_;  // per choice: logprobs.content entries so far
};

}  // namespace

ChatSequences plan_chat_sequences(ServeContext& ctx, const api::ChatCompletionRequest& r, const char* messages_param) {
  if (!ctx.chat)
    throw api::ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions");
  ctx.check_model(r.model);
  ChatSequences out{ctx.chat->build(r), Plan{}};
  const api::ChatPrompt& prompt = out.prompt;
  const std::vector<int32_t> ids = ctx.tok.encode(prompt.text, false, false);
  ctx.check_fits(ids.size(), messages_param, "the messages are");
  const int64_t max_tokens = ctx.answer_tokens(ids.size(), r.max_tokens);
  const std::vector<int32_t> forced =
      prompt.forced_prefix.empty() ? std::vector<int32_t>{} : ctx.tok.encode(prompt.forced_prefix, false, false);
  // A forced tool call is constrained from its markers to its end; it takes precedence over
  // response_format (the answer is the call, not content).
  const std::vector<SegmentPath> call = api::forced_call_paths(prompt, r, forced, ctx.tok);
  auto constraint = [&]() -> std::unique_ptr<TokenConstraint> {
    if (call.empty()) return response_format_constraint(ctx, r.response_format);
    return std::make_unique<SegmentConstraint>(call, ctx.vocab(), ctx.eos_ids(), size_t(ctx.model.config().vocab_size),
                                               max_tokens, forced.size());
  };
  Plan& plan = out.plan;
  for (int k = 0; k < r.n; ++k) {
    runtime::GenRequest g = ctx.sequence(r, ids, max_tokens, size_t(k));
    g.skip_special = !prompt.tools_offered;  // the tool-call parser reads the markers
    g.top_logprobs = r.logprobs ? r.top_logprobs : -1;
    g.forced = forced;
    g.constraint = constraint();
    plan.gens.push_back(std::move(g));
    plan.prompt_of.push_back(0);
  }
  plan.prompt_tokens = int64_t(ids.size());
  return out;
}

Plan plan_chat_completion(ServeContext& ctx, std::string_view body) {
  if (!ctx.chat)
    throw api::ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions");
  const api::ChatCompletionRequest r = api::parse_chat_request(body, ctx.limits());
  ChatSequences s = plan_chat_sequences(ctx, r);
  s.plan.stream = r.stream;
  s.plan.protocol = choices_protocol(
      ctx, std::make_unique<ChatRenderer>(ctx.tok, s.prompt, size_t(r.n), r.logprobs, r.top_logprobs), size_t(r.n),
      r.include_usage);
  return std::move(s.plan);
}

}  // namespace dsv3::server
