#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "apps/numerics_flag.h"
#include "base/error.h"
#include "io/safetensors.h"
#include "kernels/isa.h"
#include "dist/expert_parallel.h"
#include "model/model.h"

namespace dsv3::app {

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i <= s.size()) {
    const size_t j = std::min(s.find(',', i), s.size());
    const std::string item = s.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno || v < 0 || v > INT32_MAX)
      fail("--tokens: '", item, "' is not a token id (expected comma-separated non-negative integers)");
    out.push_back(int32_t(v));
    i = j + 1;
  }
  return out;
}

namespace {

struct LogitsOptions {
  std::string model, tokens, out, attention = "auto";
  bool decode = false, mtp = false, reference = false, routing = false;
  NumericsFlag numerics;
};

void run(const LogitsOptions& o, ThreadPool& pool, const dist::EpOptions& ep) {
  kernels::set_reference_kernels(o.reference);
  const std::vector<int32_t> tokens = parse_token_list(o.tokens);
  model::LoadOptions lo;
  lo.load_mtp = o.mtp;
  model::Model model = dist::load_model(o.model, lo, ep);
  const model::ModelConfig& c = model.config();
  if (o.mtp && !model.weights().mtp) fail("--mtp: ", o.model, " has no MTP layer (num_nextn_predict_layers is 0)");
  const int64_t T = int64_t(tokens.size()), V = c.vocab_size, D = c.hidden_size;

  model::ForwardOptions fo;
  fo.attention = o.attention == "naive" ? model::AttentionForm::Naive
                 : o.attention == "absorbed" ? model::AttentionForm::Absorbed : model::AttentionForm::Auto;
  std::vector<model::RoutingTrace> routing;
  if (o.routing) fo.routing = &routing;

  std::vector<float> logits(size_t(T * V)), normed(size_t(T * D));
  model::Workspace ws(pool);
  ws.kernels.set_numerics(o.numerics.value());
  const model::LatentType latent = model::latent_type_for(o.numerics.value());
  model::KvCache cache = model.new_cache(T, latent);
  const auto t0 = std::chrono::steady_clock::now();
  if (o.decode) {
    for (int64_t t = 0; t < T; ++t) {
      fo.normed = &normed[t * D];
      model.forward(ws, &tokens[t], 1, cache, &logits[t * V], fo);
    }
  } else {
    fo.normed = normed.data();
    model.forward(ws, tokens.data(), T, cache, logits.data(), fo);
  }
  fo.normed = nullptr;

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  io::SafetensorsWriter w;
  w.add_bytes("logits", io::DType::F32, {T, V}, logits.data(), logits.size() * 4);
  std::vector<float> mtp_logits;
  if (o.mtp && T >= 2) {
    mtp_logits.resize(size_t((T - 1) * V));
    model::KvCache mcache = model.new_mtp_cache(T - 1, latent);
    if (o.decode) {
      for (int64_t t = 0; t + 1 < T; ++t)
        model.forward_mtp(ws, &normed[t * D], &tokens[t + 1], 1, mcache, &mtp_logits[t * V], fo);
    } else {
      model.forward_mtp(ws, normed.data(), tokens.data() + 1, T - 1, mcache, mtp_logits.data(), fo);
    }
    w.add_bytes("mtp_logits", io::DType::F32, {T - 1, V}, mtp_logits.data(), mtp_logits.size() * 4);
  }
  const int64_t K = c.num_experts_per_tok;
  for (const model::RoutingTrace& r : routing) {
    const int64_t rows = int64_t(r.indices.size()) / K;
    const std::string p = "routing." + std::to_string(r.layer) + ".";
    w.add_bytes(p + "indices", io::DType::I32, {rows, K}, r.indices.data(), r.indices.size() * 4);
    w.add_bytes(p + "weights", io::DType::F32, {rows, K}, r.weights.data(), r.weights.size() * 4);
  }
  w.write(o.out);

  auto argmax_rows = [V](const std::vector<float>& l) {
    std::string s;
    for (size_t r = 0; r < l.size() / size_t(V); ++r)
      s += (r ? "," : "") + std::to_string(std::max_element(l.begin() + r * V, l.begin() + (r + 1) * V) - l.begin() -
                                           long(r) * V);
    return s;
  };
  std::printf("%lld tokens, %s in %.3f s (%.1f tokens/s)%s\n", (long long)T, o.decode ? "decoded one by one" : "prefilled",
              secs, double(T) / secs, o.reference ? ", reference kernels" : "");
  std::printf("numerics: %s\n", kernels::numerics_name(ws.kernels.numerics()));
  std::printf("argmax next token: %s\n", argmax_rows(logits).c_str());
  if (!mtp_logits.empty()) std::printf("argmax MTP (t+2):  %s\n", argmax_rows(mtp_logits).c_str());
  std::printf("wrote %s\n", o.out.c_str());
}

}  // namespace

void add_logits(CLI::App& app, AppContext& ctx) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "write F32 logits for every position of a token sequence");
  cmd->add_option("--model", o->model, "model folder (config.json + safetensors)")->required();
  cmd->add_option("--tokens", o->tokens, "comma-separated token ids, e.g. 0,17,345")->required();
  cmd->add_option("--out", o->out, "output .safetensors file")->required();
  cmd->add_flag("--decode", o->decode, "compute token by token through the latent cache (default: one prefill)");
  cmd->add_flag("--mtp", o->mtp, "also write mtp_logits [T-1, vocab] from the MTP module");
  cmd->add_flag("--reference-kernels", o->reference, "run every kernel on its scalar twin");
  add_numerics_flags(cmd, o->numerics, "fp32");
  cmd->add_option("--attention", o->attention,
                  "attention form: auto (naive for long prompts, absorbed otherwise: decode and prefill then "
                  "differ, most in bf16 numerics), naive or absorbed")
      ->check(CLI::IsMember({"auto", "naive", "absorbed"}))
      ->capture_default_str();
  cmd->add_flag("--routing", o->routing, "also write routing.L.indices / routing.L.weights per MoE layer");
  cmd->callback([o, &ctx] { run(*o, ctx.pool(), ctx.ep_options()); });
}

}  // namespace dsv3::app
