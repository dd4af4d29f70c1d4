// `dsv3 bench`: prefill and decode speed against this machine's own limits, measured in the
// same run: read bandwidth (decode is bandwidth-bound) and the peak of the numerics' products
// (fp32 FMA or BF16 dot products; prefill is compute-bound). --profile adds where the time
// and the weight bytes go, phase by phase.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/numerics_flag.h"
#include "apps/textgen.h"
#include "base/error.h"
#include "base/rng.h"
#include "kernels/bf16.h"
#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "kernels/probes.h"
#include "model/flops.h"
#include "dist/expert_parallel.h"
#include "dist/plan.h"
#include "model/model.h"
#include "model/profile.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "threading/pool.h"
#include "tokenizer/tokenizer.h"

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
  int64_t prompt_tokens = 512, gen_tokens = 32, context = 0, batch = 1;
  int reps = 3;
  int64_t draft = 0;
  std::string draft_prompt, draft_prompts;
  bool json = false, profile = false;
  WeightFlags weights;
  NumericsFlag numerics;
};

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

// The speed-up speculative decoding gives with N drafts, relative to a plain step, when draft k
// is accepted (with every draft before it) at rate accepted[k]: tokens per verify step over
// its cost. A verify step runs 1 + N tokens (verify_cost); then the MTP module runs the
// 1 + a tokens just accepted (mtp_cost[a], the last with the head), and N - 1 chained drafts
// of one row and the head (mtp_cost[0]) each.
double projected_speedup(const std::vector<double>& accepted, double verify_cost, const std::vector<double>& mtp_cost) {
  const size_t n = accepted.size();
  double tokens = 1, cost = verify_cost + double(n - 1) * mtp_cost[0];
  for (size_t a = 0; a <= n; ++a) {
    const double p = (a == 0 ? 1.0 : accepted[a - 1]) - (a == n ? 0.0 : accepted[a]);  // exactly a accepted
    cost += p * mtp_cost[a];
    if (a < n) tokens += accepted[a];
  }
  return tokens / cost;
}

// --draft N: what speculative decoding costs and gives on this model. A verify step of T tokens
// and a draft (the MTP module's step with its head) are timed against a one-token step at the
// same context; with a tokenizer in the folder the engine then generates greedily without and
// with drafts, and the measured speed-up is set against what the costs and the measured
// acceptance predict.
nlohmann::json bench_drafting(const BenchFlags& f, const model::Model& model, model::Workspace& ws, ThreadPool& pool) {
  const model::ModelConfig& c = model.config();
  const int64_t V = c.vocab_size, D = c.hidden_size, N = f.draft;
  const int64_t steps = std::max<int64_t>(f.gen_tokens, 8), ctx = std::max<int64_t>(f.prompt_tokens, 1);
  Rng rng(99);
  std::vector<int32_t> toks(static_cast<size_t>(ctx + N + 1));
  for (int32_t& t : toks) t = int32_t(rng.next() % uint64_t(V));
  const model::LatentType latent = model::latent_type_for(ws.kernels.numerics());
  model::KvCache cache = model.new_cache(ctx + N + 1, latent);
  std::vector<float> logits(static_cast<size_t>((N + 1) * V));
  model.forward(ws, toks.data(), ctx, cache, nullptr);
  // Verify steps of T = 1 .. N+1 tokens at the same context (rolled back after each).
  std::vector<double> step_s;
  for (int64_t T = 1; T <= N + 1; ++T) {
    std::vector<double> times;
    for (int64_t i = 0; i < steps; ++i) {
      model::BatchSeq b{&toks[size_t(ctx)], T, ctx, &cache, true, T};
      b.attention = model::AttentionForm::Absorbed;
      const auto t0 = Clock::now();
      model.forward_batch(ws, {b}, logits.data());
      times.push_back(since(t0));
    }
    step_s.push_back(median(times));
  }
  // The MTP module on 1 .. N+1 rows, with its head on the last (over a cache of zero latents).
  model::KvCache mcache = model.new_mtp_cache(ctx + N + 1, latent);
  mcache.set_size(ctx);
  std::vector<float> hidden(static_cast<size_t>((N + 1) * D));
  for (float& v : hidden) v = rng.symmetric(1.0f);
  std::vector<double> mtp_cost;
  for (int64_t T = 1; T <= N + 1; ++T) {
    std::vector<double> times;
    for (int64_t i = 0; i < steps; ++i) {
      model::MtpSeq m;
      m.hidden = hidden.data();
      m.next_tokens = &toks[size_t(ctx)];
      m.T = T;
      m.start = ctx;
      m.cache = &mcache;
      const auto t0 = Clock::now();
      model.forward_mtp_batch(ws, {m}, 0, logits.data());
      times.push_back(since(t0));
    }
    mtp_cost.push_back(median(times) / step_s[0]);
  }
  nlohmann::json j = {{"draft", N}, {"context", ctx}, {"step_seconds", step_s}, {"mtp_cost", mtp_cost}};
  nlohmann::json costs = nlohmann::json::array();
  for (double t : step_s) costs.push_back(t / step_s[0]);
  j["verify_cost"] = costs;  // [T-1]: a T-token step relative to a one-token step
  // At the report's 85% and 90% acceptance of the first draft (and that rate again for each
  // later one, given the earlier ones).
  nlohmann::json proj = nlohmann::json::object();
  for (double a : {0.85, 0.90}) {
    std::vector<double> acc;
    for (int64_t k = 0; k < N; ++k) acc.push_back(std::pow(a, double(k + 1)));
    proj[std::to_string(int(a * 100 + 0.5))] = projected_speedup(acc, costs[size_t(N)].get<double>(), mtp_cost);
  }
  j["projected_speedup_at_acceptance"] = proj;

  if (!std::filesystem::exists(std::filesystem::path(f.model) / "tokenizer.json")) {
    j["end_to_end"] = "skipped: the model folder has no tokenizer.json";
    return j;
  }
  const Tokenizer tok = Tokenizer::load(f.model);
  std::vector<std::vector<int32_t>> prompts;
  if (!f.draft_prompts.empty()) {
    std::ifstream in(f.draft_prompts);
    if (!in) fail("cannot read --draft-prompts file ", f.draft_prompts);
    for (std::string line; std::getline(in, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) prompts.push_back(tok.encode(line, tok.add_bos_by_default()));
    if (prompts.empty()) fail(f.draft_prompts, " has no prompts (one per line)");
  } else if (!f.draft_prompt.empty()) {
    prompts.push_back(tok.encode(f.draft_prompt, tok.add_bos_by_default()));
  } else {
    prompts.emplace_back(toks.begin(), toks.begin() + ctx);
  }
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, int64_t(p.size()));
  nlohmann::json e2e = nlohmann::json::object();
  double plain_tps = 0;
  // Plain, forced N drafts, and --draft auto (which measures and keeps the faster way; a fresh
  // engine per prompt, as each `dsv3 generate` run is).
  for (int64_t n : {int64_t(0), N, int64_t(-1)}) {
    std::vector<double> tps;
    runtime::DraftStats d;
    for (int rep = 0; rep < f.reps; ++rep) {
      double tokens = 0, seconds = 0;
      for (const auto& prompt : prompts) {
        runtime::EngineOptions eo = runtime::single_sequence_options(longest + f.gen_tokens + 1);
        eo.numerics = ws.kernels.numerics();
        eo.draft = n < 0 ? 1 : n;
        eo.draft_auto = n < 0;
        runtime::Engine engine(model, tok, pool, eo);
        runtime::GenerateOptions go;
        go.sampling.temperature = 0;
        go.max_tokens = f.gen_tokens;
        go.ignore_eos = true;
        const runtime::GenerateResult r = runtime::generate(engine, prompt, go, {});
        tokens += double(std::max<int64_t>(r.completion_tokens - 1, 0));
        seconds += r.decode_seconds;
        if (rep == 0) d.add(r.drafts);
      }
      if (seconds > 0) tps.push_back(tokens / seconds);
    }
    nlohmann::json run = {{"decode_tokens_per_s", median(tps)}};
    if (n < 0) {
      run["speedup"] = plain_tps > 0 ? median(tps) / plain_tps : 0.0;
      run["verify_steps"] = d.steps;
    } else if (n > 0) {
      std::vector<double> acc;
      for (size_t k = 0; k < d.drafted.size(); ++k)
        acc.push_back(d.drafted[k] ? double(d.accepted[k]) / double(d.drafted[k]) : 0.0);
      const double predicted = projected_speedup(acc, costs[size_t(N)].get<double>(), mtp_cost);
      run["acceptance"] = acc;
      run["verify_steps"] = d.steps;
      run["tokens_per_step"] = d.steps ? double(d.steps + d.accepted_total()) / double(d.steps) : 0.0;
      run["speedup"] = plain_tps > 0 ? median(tps) / plain_tps : 0.0;
      run["predicted_speedup"] = predicted;
    } else {
      plain_tps = median(tps);
    }
    e2e[n == 0 ? "plain" : n < 0 ? "auto" : "drafting"] = run;
  }
  e2e["prompts"] = prompts.size();
  j["end_to_end"] = e2e;
  return j;
}

void print_drafting(const nlohmann::json& s) {
  std::printf("\nspeculative decoding, --draft %lld (context %lld; costs relative to a one-token step)\n",
              s["draft"].get<long long>(), s["context"].get<long long>());
  const auto& costs = s["verify_cost"];
  for (size_t t = 1; t < costs.size(); ++t)
    std::printf("  verify step of %zu tokens   %.2fx\n", t + 1, costs[t].get<double>());
  const auto& mtp = s["mtp_cost"];
  for (size_t t = 0; t < mtp.size(); ++t)
    std::printf("  MTP module on %zu row%s + head %.2fx\n", t + 1, t ? "s" : " ", mtp[t].get<double>());
  for (const auto& [a, v] : s["projected_speedup_at_acceptance"].items())
    std::printf("  projected speed-up at %s%% acceptance: %.2fx\n", a.c_str(), v.get<double>());
  const auto& e = s["end_to_end"];
  if (e.is_string()) {
    std::printf("  end to end: %s\n", e.get<std::string>().c_str());
    return;
  }
  const auto& d = e["drafting"];
  std::string acc;
  for (const auto& a : d["acceptance"]) acc += " " + std::to_string(int(100 * a.get<double>() + 0.5)) + "%";
  std::printf("  greedy decode over %zu prompt(s): %.1f tok/s plain, %.1f with drafts: %.2fx\n"
              "  acceptance by draft position%s over %lld verify steps, %.2f tokens per step; predicted from the costs "
              "and that acceptance: %.2fx\n",
              e["prompts"].get<size_t>(), e["plain"]["decode_tokens_per_s"].get<double>(),
              d["decode_tokens_per_s"].get<double>(), d["speedup"].get<double>(), acc.c_str(),
              d["verify_steps"].get<long long>(), d["tokens_per_step"].get<double>(), d["predicted_speedup"].get<double>());
  std::printf("  --draft auto: %.1f tok/s, %.2fx plain (%lld verify steps before it settled)\n",
              e["auto"]["decode_tokens_per_s"].get<double>(), e["auto"]["speedup"].get<double>(),
              e["auto"]["verify_steps"].get<long long>());
}

// Per-rank memory, and per token the bytes the leader moved, its MPI time and the plan's
// expectation for the same placement.
nlohmann::json expert_parallel_report(const model::Model& model, const dist::LeaderHost& host,
                                      const dist::EpTraffic& prefill, double prefill_tokens, const dist::EpTraffic& decode,
                                      double decode_tokens) {
  const model::ModelConfig& c = model.config();
  const dist::EpPlan plan =
      dist::make_plan(c, host.placement(), dist::checkpoint_bytes(*model.weights().checkpoint, c), model.has_mtp());
  nlohmann::json ranks = nlohmann::json::array();
  for (const dist::RankMemory& r : dist::rank_memory(model)) {
    const uint64_t planned = plan.per_rank[size_t(r.rank)].bytes;
    ranks.push_back({{"rank", r.rank},
                     {"experts", r.experts},
                     {"weight_bytes", r.weight_bytes},
                     {"planned_bytes", planned},
                     {"resident_bytes", r.resident_bytes},
                     {"weights_resident_bytes", r.weights_resident},
                     {"busy_seconds", r.busy_s}});
  }
  auto phase = [](const dist::EpTraffic& t, double tokens) {
    if (tokens <= 0) return nlohmann::json();
    return nlohmann::json{{"bytes_sent_per_token", double(t.bytes_sent) / tokens},
                          {"bytes_received_per_token", double(t.bytes_received) / tokens},
                          {"bytes_per_token", double(t.bytes_sent + t.bytes_received) / tokens},
                          {"messages_per_token", double(t.messages) / tokens},
                          {"mpi_us_per_token", 1e6 * (t.send_s + t.wait_s) / tokens},
                          {"mpi_wait_us_per_token", 1e6 * t.wait_s / tokens}};
  };
  return {{"ranks", host.placement().ranks()},
          {"per_rank", ranks},
          {"prefill", phase(prefill, prefill_tokens)},
          {"decode", phase(decode, decode_tokens)},
          {"plan_bytes_per_token", plan.bytes_per_token()},
          {"one_process_weight_bytes", plan.total_bytes}};
}

void print_expert_parallel(const nlohmann::json& e) {
  std::printf("expert parallel over %d ranks (one process would hold %.2f GB of weights)\n", e["ranks"].get<int>(),
              e["one_process_weight_bytes"].get<double>() / 1e9);
  for (const auto& r : e["per_rank"])
    std::printf("  rank %d   %5lld experts   weights %.3f GB (plan %.3f GB), %.3f GB of them resident; process %.3f GB%s\n",
                r["rank"].get<int>(), r["experts"].get<long long>(), r["weight_bytes"].get<double>() / 1e9,
                r["planned_bytes"].get<double>() / 1e9, r["weights_resident_bytes"].get<double>() / 1e9,
                r["resident_bytes"].get<double>() / 1e9,
                r["rank"].get<int>() > 0 ? (", busy " + std::to_string(r["busy_seconds"].get<double>()).substr(0, 5) + " s").c_str() : "");
  for (const char* ph : {"prefill", "decode"}) {
    const auto& p = e[ph];
    if (p.is_null()) continue;
    std::printf("  %-8s %.1f KB moved per token (%.1f out, %.1f back), %.1f messages, MPI %.1f us per token (waiting %.1f)\n",
                ph, p["bytes_per_token"].get<double>() / 1e3, p["bytes_sent_per_token"].get<double>() / 1e3,
                p["bytes_received_per_token"].get<double>() / 1e3, p["messages_per_token"].get<double>(),
                p["mpi_us_per_token"].get<double>(), p["mpi_wait_us_per_token"].get<double>());
  }
  std::printf("  plan     %.1f KB per decoded token (dsv3 inspect --ranks)\n", e["plan_bytes_per_token"].get<double>() / 1e3);
}

void run(const BenchFlags& f, ThreadPool& pool, const dist::EpOptions& ep) {
  const auto t_load = Clock::now();
  model::LoadOptions lo;
  lo.load_mtp = f.draft > 0;
  lo.memory = f.weights.memory();
  model::Model model = dist::load_model(f.model, lo, ep, f.weights.recache);
  if (f.draft > 0 && !model.has_mtp()) fail("--draft needs a model with an MTP module (num_nextn_predict_layers >= 1)");
  const double huge_fraction = settle_weights(model.weights(), f.weights, false);  // faults are not timed
  const double load_s = since(t_load);
  const model::ModelConfig& c = model.config();
  const int64_t V = c.vocab_size;

  const kernels::Numerics numerics = f.numerics.value();
  double read_gbs = kernels::probe_read_gb_per_s(pool);  // probed again after the runs; the best counts
  double peak_gflops = kernels::probe_fma_gflops_all(pool, 0.3);
  double bf16_peak_gflops = kernels::probe_bf16_gflops_all(pool, 0.3);
  reset_peak_rss();  // the probe's 1 GiB buffer is gone and must not count

  Rng rng(1234);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int32_t& v : t) v = int32_t(rng.next() % uint64_t(V));
    return t;
  };
  const int64_t cap = f.context + f.prompt_tokens + f.gen_tokens + 1;
  std::vector<double> prefill_tps, decode_tps, decode_bytes;
  std::vector<float> logits(size_t(std::max<int64_t>(std::max(f.prompt_tokens, f.batch), 1) * V));
  model::Workspace ws(pool);
  ws.kernels.set_numerics(numerics);
  const model::LatentType latent = model::latent_type_for(numerics);
  // The profile covers every repetition; it is reported per token.
  model::Profile prefill_profile, decode_profile;
  auto profiling = [&](model::Profile* p) {
    if (!f.profile) return;
    if (ws.profile) ws.profile->stop();
    ws.profile = p;
    pool.set_wait_timer(p ? &p->pool_wait_seconds : nullptr);
    if (p) p->start();
  };
  // Expert parallelism: the leader's traffic and MPI time in the timed prefills and decodes.
  dist::LeaderHost* const host = dist::leader_host(model);
  dist::EpTraffic prefill_ep, decode_ep;
  for (int rep = 0; rep < f.reps; ++rep) {
    model::KvCache cache = model.new_cache(cap, latent);
    if (f.context > 0) {  // a long context of synthetic latents: only attention cost matters
      for (int64_t l = 0; l < c.num_hidden_layers; ++l)
        for (int64_t p = 0; p < f.context; ++p)
          for (int64_t i = 0; i < c.latent_dim(); ++i) {
            const float v = rng.symmetric(1.0f);
            if (latent == model::LatentType::BF16) cache.at_bf16(l, p)[i] = kernels::bf16_round(v);
            else cache.at(l, p)[i] = v;
          }
      cache.set_size(f.context);
    }
    const std::vector<int32_t> prompt = random_tokens(f.prompt_tokens);
    if (f.prompt_tokens > 0) {
      profiling(&prefill_profile);
      const dist::EpTraffic ep0 = host ? host->traffic() : dist::EpTraffic{};
      const auto t0 = Clock::now();
      model::ForwardOptions fo;
      fo.last_only = true;
      model.forward(ws, prompt.data(), f.prompt_tokens, cache, logits.data(), fo);
      prefill_tps.push_back(double(f.prompt_tokens) / since(t0));
      if (host) prefill_ep += host->traffic() - ep0;
      profiling(nullptr);
    }
    // --batch B: B sequences after the same prompt decode together, one token each per step
    // (a continuous-batching step, as the server runs it).
    // Sequence 0 decodes in `cache` itself; the others in copies of it.
    std::vector<model::KvCache> copies(size_t(f.batch - 1), cache);
    auto cache_of = [&](int64_t b) -> model::KvCache& { return b == 0 ? cache : copies[size_t(b - 1)]; };
    std::vector<int32_t> next(size_t(f.batch));
    for (int64_t b = 0; b < f.batch; ++b) next[size_t(b)] = int32_t((prompt.empty() ? 0 : prompt.back()) + b) % int32_t(V);
    std::vector<model::BatchSeq> seqs(size_t(f.batch));
    profiling(&decode_profile);
    const uint64_t b0 = kernels::weight_bytes_read();
    const dist::EpTraffic ep0 = host ? host->traffic() : dist::EpTraffic{};
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < f.gen_tokens; ++i) {
      for (int64_t b = 0; b < f.batch; ++b) {
        model::KvCache& kc = cache_of(b);
        seqs[size_t(b)] = model::BatchSeq{&next[size_t(b)], 1, kc.size(), &kc, true};
      }
      if (f.batch == 1) {
        model.forward(ws, next.data(), 1, cache, logits.data());
      } else {
        model.forward_batch(ws, seqs, logits.data());
        for (int64_t b = 0; b < f.batch; ++b) cache_of(b).set_size(cache_of(b).size() + 1);
      }
      const model::PhaseScope sampling(ws.profile, model::Phase::Sampling);
      for (int64_t b = 0; b < f.batch; ++b) {
        const float* l = &logits[size_t(b * V)];
        next[size_t(b)] = int32_t(std::max_element(l, l + V) - l);
      }
    }
    profiling(nullptr);
    if (f.gen_tokens > 0) {
      const double tokens = double(f.gen_tokens * f.batch);
      decode_tps.push_back(tokens / since(t0));
      decode_bytes.push_back(double(kernels::weight_bytes_read() - b0) / double(f.gen_tokens));
      if (host) decode_ep += host->traffic() - ep0;
    }
  }
  const nlohmann::json spec = f.draft > 0 ? bench_drafting(f, model, ws, pool) : nlohmann::json();
  const int64_t peak_rss = peak_rss_bytes();
  // Shared machines drift: each limit is the best rate seen before or after the runs.
  read_gbs = std::max(read_gbs, kernels::probe_read_gb_per_s(pool));
  peak_gflops = std::max(peak_gflops, kernels::probe_fma_gflops_all(pool, 0.3));
  bf16_peak_gflops = std::max(bf16_peak_gflops, kernels::probe_bf16_gflops_all(pool, 0.3));
  const double ptps = median(prefill_tps), dtps = median(decode_tps), dbytes = median(decode_bytes);
  // The prefill computes logits for its last token only.
  const double prefill_flops_per_token =
      f.prompt_tokens > 0 ? 2 * model::forward_macs(c, f.context, f.prompt_tokens, true) / double(f.prompt_tokens) : 0;
  const double prefill_gflops = ptps * prefill_flops_per_token / 1e9;
  const double limit_gflops = numerics != kernels::Numerics::Fp32 ? bf16_peak_gflops : peak_gflops;
  const double decode_gbs = dtps / double(f.batch) * dbytes / 1e9;  // dbytes: per step
  nlohmann::json j = {
      {"model", f.model},
      {"isa", kernels::isa_name(kernels::active_isa())},
      {"threads", pool.size()},
      {"prompt_tokens", f.prompt_tokens},
      {"gen_tokens", f.gen_tokens},
      {"batch", f.batch},
      {"context", f.context},
      {"weight_memory", f.weights.hugepages ? "hugepages" : "map"},
      {"weights_in_2mb_pages", huge_fraction},
      {"numerics", kernels::numerics_name(numerics)},
      {"repetitions", f.reps},
      {"prefill_tokens_per_s", ptps},
      {"prefill_gflops", prefill_gflops},
      {"prefill_flops_per_token", prefill_flops_per_token},
      {"decode_tokens_per_s", dtps},
      {"decode_bytes_per_token", dbytes / double(f.batch)},
      {"decode_bytes_per_step", dbytes},
      {"decode_gb_per_s", decode_gbs},
      {"machine_read_gb_per_s", read_gbs},
      {"decode_roofline_fraction", read_gbs > 0 ? decode_gbs / read_gbs : 0},
      {"machine_peak_gflops", peak_gflops},
      {"machine_bf16_peak_gflops", bf16_peak_gflops},
      {"prefill_peak_fraction", limit_gflops > 0 ? prefill_gflops / limit_gflops : 0},
      {"peak_rss_bytes", peak_rss},
      {"load_seconds", load_s},
  };
  const double prefill_tokens = double(f.prompt_tokens) * f.reps,
               decode_tokens = double(f.gen_tokens * f.batch) * f.reps;
  // The latent cache: what a position costs, and the decode attention core's rate over it
  // (scores against every cached row, 2(R + rope) FLOPs per head, and the weighted sum, 2R).
  const int64_t cache_row_bytes = c.num_hidden_layers * c.latent_dim() * model::latent_type_bytes(latent);
  j["latent_cache"] = {{"type", model::latent_type_name(latent)},
                       {"bytes_per_token", cache_row_bytes},
                       {"bytes_at_context", cache_row_bytes * (f.context + f.prompt_tokens + f.gen_tokens)}};
  double attn_gflops = 0, attn_share = 0;
  if (f.profile && decode_tokens > 0) {
    const double mean_ctx = double(f.context + f.prompt_tokens) + double(f.gen_tokens + 1) / 2;
    const double flops = 2.0 * double(c.num_hidden_layers * c.num_attention_heads) *
                         double(2 * c.kv_lora_rank + c.qk_rope_head_dim) * mean_ctx;
    const double core_s = decode_profile.phases[size_t(model::Phase::AttnCore)].seconds / decode_tokens;
    double step_s = 0;
    for (const model::PhaseStats& st : decode_profile.phases) step_s += st.seconds;
    step_s /= decode_tokens;
    attn_gflops = core_s > 0 ? flops / core_s / 1e9 : 0;
    attn_share = step_s > 0 ? core_s / step_s : 0;
    j["decode_attention"] = {{"flops_per_token", flops},
                             {"core_us_per_token", 1e6 * core_s},
                             {"share_of_step", attn_share},
                             {"gflops", attn_gflops},
                             {"fp32_peak_fraction", peak_gflops > 0 ? attn_gflops / peak_gflops : 0},
                             {"bf16_peak_fraction", bf16_peak_gflops > 0 ? attn_gflops / bf16_peak_gflops : 0}};
  }
  if (f.profile) {
    nlohmann::json p = nlohmann::json::object();
    for (auto [name, prof, n] : {std::tuple{"prefill", &prefill_profile, prefill_tokens},
                                 std::tuple{"decode", &decode_profile, decode_tokens}}) {
      if (n <= 0) continue;
      nlohmann::json phases = nlohmann::json::object();
      for (size_t i = 0; i < prof->phases.size(); ++i) {
        const model::PhaseStats& st = prof->phases[i];
        phases[model::phase_name(model::Phase(i))] = {{"us_per_token", 1e6 * st.seconds / n},
                                                      {"weight_bytes_per_token", double(st.weight_bytes) / n}};
      }
      p[name] = {{"phases", phases}, {"pool_wait_us_per_token", 1e6 * prof->pool_wait_seconds / n}};
    }
    j["profile"] = p;
  }
  if (!spec.is_null()) j["speculation"] = spec;
  if (host && host->placement().ranks() > 1) j["expert_parallel"] = expert_parallel_report(model, *host, prefill_ep, prefill_tokens, decode_ep, decode_tokens);
  if (f.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  char held[64];
  std::snprintf(held, sizeof held, "mapped, %.0f%% in 2 MB pages", 100 * huge_fraction);
  std::printf("model      %s (%s kernels, %s numerics, %d threads, weights %s)\n", f.model.c_str(),
              kernels::isa_name(kernels::active_isa()), kernels::numerics_name(numerics), pool.size(),
              f.weights.hugepages ? "in huge pages" : held);
  std::printf("machine    read %.1f GB/s, fp32 FMA peak %.1f GFLOP/s, BF16 dot-product peak %.1f GFLOP/s\n", read_gbs,
              peak_gflops, bf16_peak_gflops);
  std::printf("load       %.2f s, peak RSS %.2f GB\n", load_s, double(peak_rss) / 1e9);
  if (f.prompt_tokens > 0)
    std::printf("prefill    %lld tokens: %.1f tokens/s, %.1f GFLOP/s = %.0f%% of the %s peak (median of %d)\n",
                (long long)f.prompt_tokens, ptps, prefill_gflops, 100 * prefill_gflops / limit_gflops,
                numerics != kernels::Numerics::Fp32 ? "BF16" : "fp32 FMA", f.reps);
  if (f.gen_tokens > 0)
    std::printf("decode     %.2f tokens/s%s at context %lld, %.1f MB weights/step, %.1f GB/s = %.0f%% of read "
                "bandwidth (median of %d)\n",
                dtps, f.batch > 1 ? (" over " + std::to_string(f.batch) + " sequences").c_str() : "",
                (long long)(f.context + f.prompt_tokens), dbytes / 1e6, decode_gbs, 100 * decode_gbs / read_gbs,
                f.reps);
  std::printf("cache      %s latents, %lld bytes per token, %.1f MB at %lld tokens\n", model::latent_type_name(latent),
              (long long)cache_row_bytes, double(cache_row_bytes * (f.context + f.prompt_tokens + f.gen_tokens)) / 1e6,
              (long long)(f.context + f.prompt_tokens + f.gen_tokens));
  if (j.contains("decode_attention"))
    std::printf("attention  decode core %.1f GFLOP/s = %.0f%% of the fp32 FMA peak, %.0f%% of the BF16 peak; %.0f%% of a "
                "step\n",
                attn_gflops, 100 * attn_gflops / peak_gflops, 100 * attn_gflops / bf16_peak_gflops, 100 * attn_share);
  if (!spec.is_null()) print_drafting(spec);
  if (j.contains("expert_parallel")) print_expert_parallel(j["expert_parallel"]);
  if (!f.profile) return;
  std::printf("\nprofile (per token; bytes are weights read)   %22s   %22s\n", "prefill", "decode");
  std::printf("%-28s %12s %10s   %12s %10s\n", "phase", "us", "MB", "us", "MB");
  for (size_t i = 0; i < prefill_profile.phases.size(); ++i) {
    const model::PhaseStats& a = prefill_profile.phases[i];
    const model::PhaseStats& b = decode_profile.phases[i];
    std::printf("%-28s %12.1f %10.2f   %12.1f %10.2f\n", model::phase_name(model::Phase(i)),
                prefill_tokens > 0 ? 1e6 * a.seconds / prefill_tokens : 0.0,
                prefill_tokens > 0 ? double(a.weight_bytes) / prefill_tokens / 1e6 : 0.0,
                decode_tokens > 0 ? 1e6 * b.seconds / decode_tokens : 0.0,
                decode_tokens > 0 ? double(b.weight_bytes) / decode_tokens / 1e6 : 0.0);
  }
  std::printf("%-28s %12.1f %10s   %12.1f\n", "(pool wait, included above)",
              prefill_tokens > 0 ? 1e6 * prefill_profile.pool_wait_seconds / prefill_tokens : 0.0, "",
              decode_tokens > 0 ? 1e6 * decode_profile.pool_wait_seconds / decode_tokens : 0.0);
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
  cmd->add_option("--batch", f->batch,
                  "sequences decoding together (one token each per step, as the server batches them); "
                  "decode figures are then totals over the batch, weight bytes per step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--reps", f->reps, "repetitions; medians are reported")->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--draft", f->draft,
                  "also measure speculative decoding with N drafts: verify steps of 2 .. N+1 tokens and a draft "
                  "against a one-token step, the speed-up they project at 85% and 90% acceptance, and (with a "
                  "tokenizer in the folder) greedy decoding without and with drafts")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  cmd->add_option("--draft-prompt", f->draft_prompt,
                  "text for the --draft end-to-end runs (default: the random prompt; acceptance means something "
                  "only on a trained model and real text)");
  cmd->add_option("--draft-prompts", f->draft_prompts,
                  "a file of prompts, one per line, for the --draft end-to-end runs (acceptance and speed over all "
                  "of them)");
  cmd->add_flag("--json", f->json, "print one JSON object");
  cmd->add_flag("--profile", f->profile,
                "also report time and weight bytes per token by phase (embedding, attention projections and core, "
                "router, experts, dense MLP, head, sampling) and the time spent waiting for pool threads");
  add_weight_flags(cmd, f->weights);
  add_numerics_flags(cmd, f->numerics, "bf16");
  cmd->callback([f, &ctx] { run(*f, ctx.pool(), ctx.ep_options()); });
}

}  // namespace dsv3::app
