#include "eval/backend.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "runtime/engine.h"
#include "runtime/generate.h"

namespace dsv3::eval {
namespace {

using json = nlohmann::json;

class EngineBackend final : public Backend {
 public:
  EngineBackend(const model::Model& m, const Tokenizer& tok, ThreadPool& pool, kernels::Numerics numerics, int64_t ctx)
      : tok_(tok), numerics_(numerics), engine_(m, tok, pool, options(numerics, ctx)) {}

  std::string describe() const override {
    return std::string("in-process (") + kernels::numerics_name(numerics_) + " numerics)";
  }
  std::vector<int32_t> tokenize(const std::string& text, bool add_special) override {
    return tok_.encode(text, add_special && tok_.add_bos_by_default(), false);
  }
  int64_t context() const override { return engine_.max_prompt_tokens(); }

  std::vector<std::vector<double>> prompt_logprobs(const std::vector<std::vector<int32_t>>& prompts) override {
    std::vector<std::shared_ptr<runtime::Stream>> streams;
    for (const auto& p : prompts) {
      runtime::GenRequest r;
      r.prompt = p;
      r.max_tokens = 0;
      r.prompt_logprobs = 0;
      r.sampling.temperature = 0;
      streams.push_back(engine_.submit(std::move(r)));
    }
    while (engine_.run_step()) {
    }
    std::vector<std::vector<double>> out;
    for (auto& s : streams) {
      const std::optional<runtime::FinishInfo> f = s->finished();
      DSV3_CHECK(f.has_value(), "a scoring sequence did not finish");
      if (f->reason == runtime::FinishReason::Error) fail(f->error);
      std::vector<double> lp;
      for (const runtime::TokenEvent& e : f->prompt_logprobs) lp.push_back(e.logprob);
      out.push_back(std::move(lp));
    }
    return out;
  }

  std::string generate(const std::string& prompt, int64_t max_tokens, const std::vector<std::string>& stop) override {
    runtime::GenerateOptions o;
    o.sampling.temperature = 0;
    o.max_tokens = max_tokens;
    o.stop = stop;
    return runtime::generate(engine_, tokenize(prompt, true), o, nullptr).text;
  }

 private:
  static runtime::EngineOptions options(kernels::Numerics numerics, int64_t ctx) {
    runtime::EngineOptions o;
    o.max_seqs = 16;
    o.ctx_size = ctx;
    o.step_tokens = 1024;
    o.own_thread = false;
    o.numerics = numerics;
    return o;  // absorbed attention, no drafts: as `dsv3 serve` computes by default
  }

  const Tokenizer& tok_;
  kernels::Numerics numerics_;
  runtime::Engine engine_;
};

class HttpBackend final : public Backend {
 public:
  HttpBackend(const std::string& url, const std::string& key) : url_(url), client_(url) {
    if (!client_.is_valid()) fail("--url ", url, " is not a valid http://host:port address");
    client_.set_read_timeout(600);
    if (!key.empty()) client_.set_bearer_token_auth(key);
    const json models = get("/v1/models");
    if (!models.contains("data") || models["data"].empty()) fail(url, "/v1/models lists no model");
    model_ = models["data"][0].value("id", "");
    context_ = models["data"][0].value("max_model_len", int64_t(0));
  }

  std::string describe() const override { return url_ + " (model " + model_ + ")"; }
  int64_t context() const override { return context_ > 1 ? context_ - 1 : INT64_MAX; }

  std::vector<int32_t> tokenize(const std::string& text, bool add_special) override {
    const json r = post("/tokenize", {{"model", model_}, {"prompt", text}, {"add_special_tokens", add_special}});
    return r.at("tokens").get<std::vector<int32_t>>();
  }

  std::vector<std::vector<double>> prompt_logprobs(const std::vector<std::vector<int32_t>>& prompts) override {
    // What lm-evaluation-harness sends for log-likelihoods (with max_tokens 0: nothing generated).
    const json r = post("/v1/completions", {{"model", model_}, {"prompt", prompts}, {"max_tokens", 0}, {"echo", true},
                                            {"logprobs", 0}, {"temperature", 0}});
    std::vector<std::vector<double>> out(prompts.size());
    for (const json& c : r.at("choices")) {
      const size_t i = c.at("index").get<size_t>();
      const json& lps = c.at("logprobs").at("token_logprobs");
      if (i >= out.size() || lps.size() < prompts[i].size())
        fail(url_, " answered a scoring request without the prompt's logprobs (does it support echo with logprobs?)");
      for (size_t t = 1; t < prompts[i].size(); ++t) out[i].push_back(lps[t].get<double>());
    }
    return out;
  }

  std::string generate(const std::string& prompt, int64_t max_tokens, const std::vector<std::string>& stop) override {
    json body = {{"model", model_}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
    if (!stop.empty()) body["stop"] = stop;
    return post("/v1/completions", body).at("choices").at(0).at("text").get<std::string>();
  }

 private:
  json parse(const httplib::Result& res, const std::string& route) const {
    if (!res) fail("cannot reach ", url_, route, ": ", httplib::to_string(res.error()));
    json j = json::parse(res->body, nullptr, false);
    if (res->status != 200 || j.is_discarded())
      fail(url_, route, " answered ", res->status, ": ", res->body.substr(0, 300));
    return j;
  }
  json get(const std::string& route) { return parse(client_.Get(route), route); }
  json post(const std::string& route, const json& body) {
    return parse(client_.Post(route, body.dump(), "application/json"), route);
  }

  std::string url_, model_;
  int64_t context_ = 0;
  httplib::Client client_;
};

}  // namespace

std::unique_ptr<Backend> engine_backend(const model::Model& model, const Tokenizer& tok, ThreadPool& pool,
                                        kernels::Numerics numerics, int64_t ctx_size) {
  return std::make_unique<EngineBackend>(model, tok, pool, numerics, ctx_size);
}

std::unique_ptr<Backend> http_backend(const std::string& url, const std::string& api_key) {
  return std::make_unique<HttpBackend>(url, api_key);
}

}  // namespace dsv3::eval
