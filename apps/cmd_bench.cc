// `dsv3 bench`: prefill and decode speed against this machine's own limits, measured in the
// same run: read bandwidth (decode is bandwidth-bound) and fp32 FMA peak (prefill is
// compute-bound).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/textgen.h"
#include "base/rng.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/probes.h"
#include "model/model.h"
#include "threading/pool.h"

namespace dsv3::app {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct BenchFlags {
  std::string model;
  int64_t prompt_tokens = 512, gen_tokens = 32, context = 0;
  int reps = 3;
  bool json = false, hugepages = false;
};

// Multiply-adds per token of every matrix product, plus attention over `ctx` positions.
double macs_per_token(const model::ModelConfig& c, double ctx) {
  const double D = double(c.hidden_size), H = double(c.num_attention_heads), R = double(c.kv_lora_rank);
  const double qk = double(c.qk_head_dim()), v = double(c.v_head_dim), nope = double(c.qk_nope_head_dim);
  double attn = c.q_lora_rank ? D * double(c.q_lora_rank) + double(c.q_lora_rank) * H * qk : D * H * qk;
  attn += D * double(c.latent_dim()) + H * (nope + v) * R + H * v * D + ctx * H * (qk + v);
  double total = 0;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    total += attn;
    if (c.is_moe_layer(i))
      total += D * double(c.n_routed_experts) +
               3 * D * double(c.moe_intermediate_size) * double(c.num_experts_per_tok + c.n_shared_experts);
    else
      total += 3 * D * double(c.intermediate_size);
  }
  return total + double(c.vocab_size) * D;
}

// Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS.
void reset_peak_rss() {
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

// VmHWM from /proc/self/status, or getrusage's maximum where that is unavailable.
int64_t peak_rss_bytes() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long long kb = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
    std::fclose(f);
    if (kb >= 0) return int64_t(kb) * 1024;
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

void run(const BenchFlags& f, ThreadPool& pool) {
  const auto t_load = Clock::now();
  model::Model model = model::Model::load(f.model, model::LoadOptions{false, weight_memory(f.hugepages)});
  model.weights().checkpoint->prefault();  // page faults are not timed as compute
  const double load_s = since(t_load);
  const model::ModelConfig& c = model.config();
  const int64_t V = c.vocab_size;

  double read_gbs = kernels::probe_read_gb_per_s(pool);  // probed again after the runs; the best counts
  double peak_gflops = kernels::probe_fma_gflops_all(pool, 0.3);
  reset_peak_rss();  // the probe's 1 GiB buffer is gone and must not count

  Rng rng(1234);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int32_t& v : t) v = int32_t(rng.next() % uint64_t(V));
    return t;
  };
  const int64_t cap = f.context + f.prompt_tokens + f.gen_tokens + 1;
  std::vector<double> prefill_tps, decode_tps, decode_bytes;
  std::vector<float> logits(size_t(std::max<int64_t>(f.prompt_tokens, 1) * V));
  model::Workspace ws(pool);
  for (int rep = 0; rep < f.reps; ++rep) {
    model::KvCache cache = model.new_cache(cap);
    if (f.context > 0) {  // a long context of synthetic latents: only attention cost matters
      for (int64_t l = 0; l < c.num_hidden_layers; ++l)
        for (int64_t p = 0; p < f.context; ++p)
          for (int64_t i = 0; i < c.latent_dim(); ++i) cache.at(l, p)[i] = rng.symmetric(1.0f);
      cache.set_size(f.context);
    }
    const std::vector<int32_t> prompt = random_tokens(f.prompt_tokens);
    if (f.prompt_tokens > 0) {
      const auto t0 = Clock::now();
      model::ForwardOptions fo;
      fo.last_only = true;
      model.forward(ws, prompt.data(), f.prompt_tokens, cache, logits.data(), fo);
      prefill_tps.push_back(double(f.prompt_tokens) / since(t0));
    }
    int32_t next = prompt.empty() ? 0 : prompt.back();
    const uint64_t b0 = kernels::weight_bytes_read();
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < f.gen_tokens; ++i) {
      model.forward(ws, &next, 1, cache, logits.data());
      next = int32_t(std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
    }
    if (f.gen_tokens > 0) {
      decode_tps.push_back(double(f.gen_tokens) / since(t0));
      decode_bytes.push_back(double(kernels::weight_bytes_read() - b0) / double(f.gen_tokens));
    }
  }
  const int64_t peak_rss = peak_rss_bytes();
  // Shared machines drift: each limit is the best rate seen before or after the runs.
  read_gbs = std::max(read_gbs, kernels::probe_read_gb_per_s(pool));
  peak_gflops = std::max(peak_gflops, kernels::probe_fma_gflops_all(pool, 0.3));
  const double ptps = median(prefill_tps), dtps = median(decode_tps), dbytes = median(decode_bytes);
  const double prefill_gflops = ptps * 2 * macs_per_token(c, double(f.context) + double(f.prompt_tokens) / 2) / 1e9;
  const double decode_gbs = dtps * dbytes / 1e9;
  nlohmann::json j = {
      {"model", f.model},
      {"isa", kernels::isa_name(kernels::active_isa())},
      {"threads", pool.size()},
      {"prompt_tokens", f.prompt_tokens},
      {"gen_tokens", f.gen_tokens},
      {"context", f.context},
      {"weight_memory", f.hugepages ? "hugepages" : "map"},
      {"repetitions", f.reps},
      {"prefill_tokens_per_s", ptps},
      {"prefill_gflops", prefill_gflops},
      {"decode_tokens_per_s", dtps},
      {"decode_bytes_per_token", dbytes},
      {"decode_gb_per_s", decode_gbs},
      {"machine_read_gb_per_s", read_gbs},
      {"decode_roofline_fraction", read_gbs > 0 ? decode_gbs / read_gbs : 0},
      {"machine_peak_gflops", peak_gflops},
      {"prefill_peak_fraction", peak_gflops > 0 ? prefill_gflops / peak_gflops : 0},
      {"peak_rss_bytes", peak_rss},
      {"load_seconds", load_s},
  };
  if (f.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("model      %s (%s kernels, %d threads, weights %s)\n", f.model.c_str(),
              kernels::isa_name(kernels::active_isa()), pool.size(),
              f.hugepages ? "in huge pages" : "mapped");
  std::printf("machine    read %.1f GB/s, fp32 FMA peak %.1f GFLOP/s\n", read_gbs, peak_gflops);
  std::printf("load       %.2f s, peak RSS %.2f GB\n", load_s, double(peak_rss) / 1e9);
  if (f.prompt_tokens > 0)
    std::printf("prefill    %lld tokens: %.1f tokens/s, %.1f GFLOP/s = %.0f%% of peak (median of %d)\n",
                (long long)f.prompt_tokens, ptps, prefill_gflops, 100 * prefill_gflops / peak_gflops, f.reps);
  if (f.gen_tokens > 0)
    std::printf("decode     %.2f tokens/s at context %lld, %.1f MB weights/token, %.1f GB/s = %.0f%% of read "
                "bandwidth (median of %d)\n",
                dtps, (long long)(f.context + f.prompt_tokens), dbytes / 1e6, decode_gbs, 100 * decode_gbs / read_gbs,
                f.reps);
}

}  // namespace

void add_bench(CLI::App& app, AppContext& ctx) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prefill and decode speed against this machine's limits");
  cmd->add_option("--model", f->model, "model folder")->required();
  cmd->add_option("--prompt-tokens", f->prompt_tokens, "tokens per timed prefill")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--gen-tokens", f->gen_tokens, "tokens per timed decode")->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--context", f->context, "cached positions before the prompt (synthetic latents)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--reps", f->reps, "repetitions; medians are reported")->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "print one JSON object");
  add_hugepages_flag(cmd, f->hugepages);
  cmd->callback([f, &ctx] { run(*f, ctx.pool()); });
}

}  // namespace dsv3::app
