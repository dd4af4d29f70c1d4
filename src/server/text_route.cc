// POST /v1/completions: raw prompts (text or token ids, several per request) and text-shaped
// choices (text, echo, the parallel-array logprobs of the legacy API).
#include "api/errors.h"
#include "server/openai_names.h"
#include "server/request_path.h"

namespace dsv3::server {
namespace {

class TextRenderer final : public ChoiceRenderer {
 public:
  //! echo[i]: the prompt choice i starts with when echoing ("" otherwise); prompts[i]: its
  //! token ids (their logprobs lead the choice's when echoing with logprobs).
  TextRenderer(const Tokenizer& tok, bool echoing, std::vector<std::string> echo, std::optional<int> logprobs,
               std::vector<std::vector<int32_t>> prompts)
      : tok_(tok), echoing_(echoing), echo_(std::move(echo)), logprobs_(logprobs), prompts_(std::move(prompts)),
        lp_(echo_.size()), text_(echo_.size()) {
    for (size_t i = 0; i < echo_.size(); ++i) lp_[i].offset = int64_t(echo_[i].size());
  }

  const char* id_prefix() const override { return "cmpl-"; }
  const char* chunk_object() const override { return "text_completion"; }
  const char* body_object() const override { return "text_completion"; }

  ojson opening(size_t i) override { return echoing_ ? choice(i, echo_[i], nullptr, nullptr) : ojson(nullptr); }

  // The prompt's tokens lead the logprobs when echoing: the first with null (nothing
  // precedes it), text offsets into the echoed prompt.
  ojson prompt_logprobs(size_t i, const runtime::FinishInfo& f) const {
    ojson tokens = ojson::array(), lps = ojson::array(), top = ojson::array(), offsets = ojson::array();
    const std::vector<int32_t>& ids = prompts_[i];
    StreamDecoder text(tok_);  // offsets: the echoed text each token starts at
    int64_t offset = 0;
    for (size_t t = 0; t < ids.size(); ++t) {
      tokens.push_back(tok_.token_bytes(ids[t]));
      offsets.push_back(offset);
      offset += int64_t(text.push(ids[t]).size());
      if (t == 0 || t - 1 >= f.prompt_logprobs.size()) {
        lps.push_back(nullptr);
        top.push_back(nullptr);
        continue;
      }
      const runtime::TokenEvent& ev = f.prompt_logprobs[t - 1];
      lps.push_back(ev.logprob);
      ojson alts = ojson::object();
      for (int k = 0; k < *logprobs_ && k < int(ev.top.size()); ++k)
        alts[tok_.token_bytes(ev.top[size_t(k)].token)] = ev.top[size_t(k)].logprob;
      // The token itself is listed too (OpenAI's legacy completions did), so a scorer can
      // read its logprob from either array.
      alts[tok_.token_bytes(ev.token)] = ev.logprob;
      top.push_back(std::move(alts));
    }
    return ojson{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", top}, {"text_offset", offsets}};
  }

  ojson token(size_t i, const runtime::TokenEvent& ev) override {
    text_[i] += ev.text;
    ojson lp = add_logprobs(i, ev);
    if (ev.text.empty() && lp.is_null()) return nullptr;
    return choice(i, ev.text, std::move(lp), nullptr);
  }

  std::vector<ojson> finish(size_t i, const runtime::FinishInfo& f) override {
    if (f.reason == runtime::FinishReason::Error) return {};
    return {choice(i, f.tail, nullptr, openai_finish_reason(f.reason))};
  }

  ojson final_choice(size_t i, const runtime::FinishInfo& f) override {
    ojson lp = nullptr;
    if (logprobs_) {
      const Logprobs& t = lp_[i];
      lp = ojson{{"tokens", t.tokens}, {"token_logprobs", t.token_logprobs}, {"top_logprobs", t.top},
                 {"text_offset", t.offsets}};
      if (echoing_) {
        ojson p = prompt_logprobs(i, f);
        for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
          for (auto& v : lp[k]) p[k].push_back(std::move(v));
        lp = std::move(p);
      }
    }
    return ojson{{"index", i},
                 {"text", echo_[i] + text_[i] + f.tail},
                 {"logprobs", lp},
                 {"finish_reason", openai_finish_reason(f.reason)}};
  }

 private:
  // The legacy logprobs: parallel arrays per choice.
  struct Logprobs {
    ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(), offsets = ojson::array();
    int64_t offset = 0;
  };

  static ojson choice(size_t i, const std::string& text, ojson lp, ojson finish) {
    return ojson{{"index", i}, {"text", text}, {"logprobs", std::move(lp)}, {"finish_reason", finish}};
  }

  // Records the token's logprobs for the body and returns this token's part for a chunk.
  ojson add_logprobs(size_t i, const runtime::TokenEvent& ev) {
    if (!logprobs_) return nullptr;
    Logprobs& t = lp_[i];
    const std::string& piece = tok_.token_bytes(ev.token);
    ojson alts = ojson::object();
    for (int k = 0; k < *logprobs_ && k < int(ev.top.size()); ++k)
      alts[tok_.token_bytes(ev.top[size_t(k)].token)] = ev.top[size_t(k)].logprob;
    ojson one{{"tokens", ojson::array({piece})},
              {"token_logprobs", ojson::array({ev.logprob})},
              {"top_logprobs", ojson::array({alts})},
              {"text_offset", ojson::array({t.offset})}};
    t.tokens.push_back(piece);
    t.token_logprobs.push_back(ev.logprob);
    t.top.push_back(alts);
    t.offsets.push_back(t.offset);
    t.offset += int64_t(ev.text.size());
    return one;
  }

  const Tokenizer& tok_;
  const bool echoing_;
  const std::vector<std::string> echo_;
  const std::optional<int> logprobs_;
  const std::vector<std::vector<int32_t>> prompts_;
  std::vector<Logprobs> lp_;
  std::vector<std::string> text_;  // per choice: generated text so far (without the tail)
};

}  // namespace

Plan plan_text_completion(ServeContext& ctx, std::string_view body) {
  const api::CompletionRequest r = api::parse_completion_request(body, ctx.limits());
  ctx.check_model(r.model);
  Plan plan;
  std::vector<std::string> echo;
  std::vector<std::vector<int32_t>> prompts;
  size_t choice = 0;
  for (size_t p = 0; p < r.prompts.size(); ++p) {
    const api::PromptInput& in = r.prompts[p];
    std::vector<int32_t> ids = in.is_tokens ? in.tokens : ctx.tok.encode(in.text, ctx.tok.add_bos_by_default(), false);
    if (ids.empty()) throw api::ApiError::invalid("prompt", "the prompt is empty");
    ctx.check_fits(ids.size(), "prompt", "the prompt is");
    for (int32_t t : ids)
      if (!ctx.tok.is_valid_id(t))
        throw api::ApiError::invalid("prompt", "token id " + std::to_string(t) + " is not a token of this tokenizer");
    const std::string text = !r.echo ? std::string() : in.is_tokens ? ctx.tok.decode(ids) : in.text;
    const int64_t max_tokens = ctx.answer_tokens(ids.size(), r.max_tokens);
    plan.prompt_tokens += int64_t(ids.size());
    for (int k = 0; k < r.n; ++k, ++choice) {
      runtime::GenRequest g = ctx.sequence(r, ids, max_tokens, choice);
      g.top_logprobs = r.logprobs ? *r.logprobs : -1;
      if (r.echo && r.logprobs) g.prompt_logprobs = *r.logprobs;
      plan.gens.push_back(std::move(g));
      plan.prompt_of.push_back(p);
      echo.push_back(text);
      prompts.push_back(ids);
    }
  }
  plan.stream = r.stream;
  const size_t choices = plan.gens.size();
  plan.protocol = choices_protocol(
      ctx, std::make_unique<TextRenderer>(ctx.tok, r.echo, std::move(echo), r.logprobs, std::move(prompts)), choices,
      r.include_usage);
  return plan;
}

}  // namespace dsv3::server
