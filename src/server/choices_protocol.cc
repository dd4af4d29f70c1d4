// OpenAI's completion envelopes around a ChoiceRenderer: chunks of one choice each, an error
// event for a failed choice, a usage chunk when asked, the [DONE] terminator; or one body
// with every choice and usage.
#include <ctime>

#include "api/errors.h"
#include "server/request_path.h"

namespace dsv3::server {
namespace {

class ChoicesProtocol final : public Protocol {
 public:
  ChoicesProtocol(const ServeContext& ctx, std::unique_ptr<ChoiceRenderer> r, size_t choices, bool include_usage)
      : render_(std::move(r)),
        choices_(choices),
        include_usage_(include_usage),
        id_(random_id(render_->id_prefix())),
        model_(ctx.opts.model_name) {}

  std::string open() override {
    std::string out;
    for (size_t i = 0; i < choices_; ++i) out += chunk(render_->opening(i));
    return out;
  }

  std::string token(size_t i, const runtime::TokenEvent& ev) override { return chunk(render_->token(i, ev)); }

  std::string finish(size_t i, const runtime::FinishInfo& f) override {
    std::string out;
    for (ojson& c : render_->finish(i, f)) out += chunk(std::move(c));
    if (f.reason == runtime::FinishReason::Error) out += sse(api::ApiError(500, f.error, "server_error").to_json());
    return out;
  }

  std::string close(const std::vector<runtime::FinishInfo>&, const Usage& u) override {
    std::string out;
    if (include_usage_) {
      ojson c = envelope(render_->chunk_object());
      c["choices"] = ojson::array();
      c["usage"] = usage(u);
      out += sse(c);
    }
    return out + "data: [DONE]\n\n";
  }

  ojson body(const std::vector<runtime::FinishInfo>& f, const Usage& u) override {
    ojson body = envelope(render_->body_object());
    body["choices"] = ojson::array();
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i].reason == runtime::FinishReason::Error) return api::ApiError(500, f[i].error, "server_error").to_json();
      body["choices"].push_back(render_->final_choice(i, f[i]));
    }
    body["usage"] = usage(u);
    return body;
  }

 private:
  ojson envelope(const char* object) const {
    return ojson{{"id", id_}, {"object", object}, {"created", created_}, {"model", model_},
                 {"system_fingerprint", "dsv3"}};
  }

  std::string chunk(ojson choice) const {
    if (choice.is_null()) return {};
    ojson c = envelope(render_->chunk_object());
    c["choices"] = ojson::array({std::move(choice)});
    return sse(c);
  }

  static ojson usage(const Usage& u) {
    ojson j{{"prompt_tokens", u.prompt},
            {"completion_tokens", u.completion},
            {"total_tokens", u.prompt + u.completion},
            {"prompt_tokens_details", {{"cached_tokens", u.cached}}}};
    // Speculative decoding's drafts, in the fields OpenAI uses for predicted outputs.
    if (u.drafted > 0)
      j["completion_tokens_details"] = {{"accepted_prediction_tokens", u.accepted},
                                        {"rejected_prediction_tokens", u.drafted - u.accepted}};
    return j;
  }

  std::unique_ptr<ChoiceRenderer> render_;
  const size_t choices_;
  const bool include_usage_;
  const std::string id_;
  const std::string model_;
  const int64_t created_ = std::time(nullptr);
};

}  // namespace

std::unique_ptr<Protocol> choices_protocol(const ServeContext& ctx, std::unique_ptr<ChoiceRenderer> renderer,
                                           size_t choices, bool include_usage) {
  return std::make_unique<ChoicesProtocol>(ctx, std::move(renderer), choices, include_usage);
}

}  // namespace dsv3::server
