#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "base/error.h"
#include "dist/plan.h"
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

struct InspectFlags {
  std::string model, expert_map;
  int ranks = 0;
  double mem_gb_s = 75, link_gbit_s = 100, latency_us = 25;
};

void print_config(const std::string& dir, const model::ModelConfig& c) {
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
}

void print_checkpoint(const model::Model& model) {
  const model::ModelConfig& c = model.config();
  const model::ModelWeights& w = model.weights();
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

// The expert-parallel plan: what each rank holds, the bytes moved, the decode bound.
void print_plan(const InspectFlags& f, const model::ModelConfig& c, const model::Model* model) {
  if (c.n_routed_experts == 0) fail("--ranks: this model has no routed experts to split");
  const dist::ExpertPlacement p = f.expert_map.empty() ? dist::ExpertPlacement::contiguous(c, f.ranks)
                                                       : dist::ExpertPlacement::from_file(f.expert_map, c, f.ranks);
  const dist::TensorBytes bytes =
      model ? dist::checkpoint_bytes(*model->weights().checkpoint, c) : dist::estimated_bytes(c);
  const dist::EpPlan plan = dist::make_plan(c, p, bytes);
  std::printf("\nexpert parallel over %d ranks (%s placement; bytes %s)\n", f.ranks,
              f.expert_map.empty() ? "contiguous" : f.expert_map.c_str(), model ? "from the checkpoint" : "estimated from config.json");
  std::printf("  replicated   %s on rank 0 (attention, dense layers, shared experts, router, embedding, head)\n",
              human(double(plan.replicated_bytes), "B").c_str());
  std::printf("  routed       %s in all, %s per expert\n", human(double(plan.routed_bytes), "B").c_str(),
              human(plan.expert_bytes, "B").c_str());
  std::printf("  %-6s %12s %8s %10s %18s\n", "rank", "holds", "experts", "slots/tok", "rows sent/token");
  for (const dist::RankPlan& r : plan.per_rank)
    std::printf("  %-6d %12s %8lld %10.2f %18s\n", r.rank, human(double(r.bytes), "B").c_str(), (long long)r.experts,
                r.slots_per_token, r.rank == 0 ? "-" : (std::to_string(r.touched).substr(0, 5)).c_str());
  std::printf("  per token and MoE layer: %s out (rows + lists), %s back (expert outputs); %s per token over %lld "
              "MoE layers\n",
              human(plan.dispatch_bytes, "B").c_str(), human(plan.combine_bytes, "B").c_str(),
              human(plan.bytes_per_token(), "B").c_str(), (long long)plan.moe_layers);
  const double t1 = dist::make_plan(c, dist::ExpertPlacement::contiguous(c, 1), bytes).seconds_per_token(f.mem_gb_s, 0, 0);
  const double tn = plan.seconds_per_token(f.mem_gb_s, f.link_gbit_s, f.latency_us);
  std::printf("  decode bound at %.0f GB/s per rank, %.0f Gbit/s and %.0f us links: %.2f tokens/s "
              "(one machine holding it all: %.2f)\n",
              f.mem_gb_s, f.link_gbit_s, f.latency_us, 1 / tn, 1 / t1);
}

void run(const InspectFlags& f) {
  namespace fs = std::filesystem;
  const bool config_only = fs::is_regular_file(f.model) && fs::path(f.model).filename() == "config.json";
  bool has_weights = false;
  if (!config_only && fs::is_directory(f.model))
    for (const auto& e : fs::directory_iterator(f.model)) has_weights |= e.path().extension() == ".safetensors";
  if (config_only || (f.ranks > 0 && !has_weights)) {
    const std::string cfg = config_only ? f.model : (fs::path(f.model) / "config.json").string();
    const model::ModelConfig c = model::ModelConfig::load(cfg);
    print_config(f.model, c);
    if (f.ranks > 0) print_plan(f, c, nullptr);
    return;
  }
  model::Model model = model::Model::load(f.model);
  print_config(f.model, model.config());
  print_checkpoint(model);
  if (f.ranks > 0) print_plan(f, model.config(), &model);
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto f = std::make_shared<InspectFlags>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "summarise a checkpoint: config, parameters, bytes, cache, unused tensors; --ranks N: the plan for "
                 "running it expert-parallel over N ranks");
  cmd->add_option("--model", f->model, "model folder, or a config.json alone (with --ranks: bytes estimated)")->required();
  cmd->add_option("--ranks", f->ranks, "print what each of N expert-parallel ranks holds, the bytes moved per token "
                                       "and the decode bound")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--expert-map", f->expert_map, "with --ranks: a placement file instead of contiguous ranges");
  cmd->add_option("--mem-gbs", f->mem_gb_s, "with --ranks: each rank's memory read bandwidth, GB/s")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--link-gbits", f->link_gbit_s, "with --ranks: the leader's link, Gbit/s")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--link-latency-us", f->latency_us, "with --ranks: one-way message latency, microseconds")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->callback([f] { run(*f); });
}

}  // namespace dsv3::app
