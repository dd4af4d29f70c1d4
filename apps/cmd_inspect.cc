#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/tensor_table.h"

namespace dsv3::app {
namespace {

const char* topk_name(model::TopkMethod m) {
  return m == model::TopkMethod::NoauxTc ? "noaux_tc" : m == model::TopkMethod::Greedy ? "greedy" : "group_limited_greedy";
}

std::string human(double n, const char* unit) {
  const char* p[] = {"", "K", "M", "G", "T"};
  int i = 0;
  while (n >= 1000 && i < 4) n /= 1000, ++i;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s%s", n, p[i], unit);
  return buf;
}

void run(const std::string& dir) {
  model::Model model = model::Model::load(dir);
  const model::ModelConfig& c = model.config();
  const model::ModelWeights& w = model.weights();
  std::printf("model        %s (%s)\n", dir.c_str(), c.model_type.c_str());
  std::printf("layers       %lld (+%lld MTP), first %lld dense, hidden %lld, vocab %lld\n",
              (long long)c.num_hidden_layers, (long long)c.num_nextn_predict_layers,
              (long long)c.first_k_dense_replace, (long long)c.hidden_size, (long long)c.vocab_size);
  std::printf("attention    MLA, %lld heads, q_lora %s, kv_lora %lld, nope/rope/v %lld/%lld/%lld, softmax scale %.6f\n",
              (long long)c.num_attention_heads, c.q_lora_rank ? std::to_string(c.q_lora_rank).c_str() : "none",
              (long long)c.kv_lora_rank, (long long)c.qk_nope_head_dim, (long long)c.qk_rope_head_dim,
              (long long)c.v_head_dim, c.softmax_scale());
  if (c.rope_scaling.yarn)
    std::printf("rope         interleaved, theta %g, YaRN factor %g over %lld positions (max %lld)\n", c.rope_theta,
                c.rope_scaling.factor, (long long)c.rope_scaling.original_max_position_embeddings,
                (long long)c.max_position_embeddings);
  else
    std::printf("rope         interleaved, theta %g, no scaling (max %lld)\n", c.rope_theta, (long long)c.max_position_embeddings);
  if (c.n_routed_experts)
    std::printf("moe          %lld routed (%lld per token, %s scoring, %s, %lld groups keep %lld), %lld shared, "
                "width %lld, scale %g, norm_topk_prob %s\n",
                (long long)c.n_routed_experts, (long long)c.num_experts_per_tok,
                c.scoring_func == model::ScoringFunc::Sigmoid ? "sigmoid" : "softmax", topk_name(c.topk_method),
                (long long)c.n_group, (long long)c.topk_group, (long long)c.n_shared_experts,
                (long long)c.moe_intermediate_size, c.routed_scaling_factor, c.norm_topk_prob ? "true" : "false");
  if (c.quantization)
    std::printf("quantization fp8 %s, %lldx%lld blocks%s\n", c.quantization->fmt.c_str(),
                (long long)c.quantization->block_rows, (long long)c.quantization->block_cols,
                c.quantization->scale_fmt.empty() ? "" : (", scales " + c.quantization->scale_fmt).c_str());

  // Parameters by role, from the checkpoint's own shapes (scales are not parameters); what
  // each tensor is comes from the tensor table, so unknown extras count as plain parameters.
  std::map<std::string, const model::TensorSpec*> specs;
  const std::vector<model::TensorSpec> table = model::tensor_table(c);
  for (const model::TensorSpec& s : table) specs[s.name] = &s;
  double total = 0, mtp = 0, routed = 0, embed = 0;
  for (const std::string& name : w.checkpoint->names()) {
    if (name.ends_with("_scale_inv")) continue;
    const double n = double(w.checkpoint->find(name)->info->numel());
    const auto it = specs.find(name);
    const model::TensorSpec* s = it == specs.end() ? nullptr : it->second;
    if (s && s->mtp) { mtp += n; continue; }
    total += n;
    if (s && s->owner == model::MlpOwner::Expert) routed += n;
    if (s && s->kind == model::TensorKind::Embed) embed += n;
  }
  const double frac = c.n_routed_experts ? double(c.num_experts_per_tok) / double(c.n_routed_experts) : 0;
  const double active = total - routed + routed * frac - embed + double(c.hidden_size);
  std::printf("parameters   %s total (+ %s MTP), %s active per token\n", human(total, "").c_str(),
              human(mtp, "").c_str(), human(active, "").c_str());
  std::printf("bytes        %s in %zu file(s):", human(double(w.checkpoint->total_bytes()), "B").c_str(),
              w.checkpoint->files().size());
  for (int t = 0; t < 16; ++t)
    if (w.bytes_by_dtype[t]) std::printf("  %s %s", io::dtype_name(io::DType(t)), human(double(w.bytes_by_dtype[t]), "B").c_str());
  std::printf("\n");
  const int64_t per_tok = c.num_hidden_layers * c.latent_dim();
  std::printf("latent cache %lld values per token per layer; %lld values = %s per token in fp32 (%s in bf16)\n",
              (long long)c.latent_dim(), (long long)per_tok, human(double(per_tok) * 4, "B").c_str(),
              human(double(per_tok) * 2, "B").c_str());
  if (w.unused.empty()) {
    std::printf("unused       none\n");
  } else {
    std::printf("unused       %zu tensor(s) never read:\n", w.unused.size());
    for (const std::string& n : w.unused) std::printf("  %s\n", n.c_str());
  }
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("inspect", "summarise a checkpoint: config, parameters, bytes, cache, unused tensors");
  cmd->add_option("--model", *dir, "model folder")->required();
  cmd->callback([dir] { run(*dir); });
}

}  // namespace dsv3::app
