// `dsv3 eval`: scores a model on tasks from files, in this process or on any OpenAI-compatible
// server (`--url`), with a progress bar, a results table and JSON (docs/eval.md).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/default_model.h"
#include "apps/numerics_flag.h"
#include "apps/textgen.h"
#include "base/error.h"
#include "eval/backend.h"
#include "eval/passkey.h"
#include "eval/run.h"

namespace dsv3::app {
namespace {

struct EvalFlags {
  std::string model, url, api_key, json_out, passkey_svg;
  eval::PasskeyOptions passkey;
  std::vector<std::string> perplexity, choice, generation;
  eval::PerplexityOptions ppl;
  int64_t max_tokens = 64, ctx_size = 0;
  NumericsFlag numerics;
  WeightFlags weights;
};

eval::Progress progress_bar(const std::string& label) {
  if (!isatty(STDERR_FILENO)) return {};
  return [label](int64_t done, int64_t total) {
    const int pct = total ? int(100 * done / total) : 100;
    std::fprintf(stderr, "\r%-28.28s [%-30.*s] %lld/%lld", label.c_str(), pct * 30 / 100,
                 "##############################", (long long)done, (long long)total);
    if (done >= total) std::fprintf(stderr, "\r%80s\r", "");
    std::fflush(stderr);
  };
}

void run(const EvalFlags& f, ThreadPool& pool, const dist::EpOptions& ep) {
  if (f.perplexity.empty() && f.choice.empty() && f.generation.empty() && f.passkey.lengths.empty())
    fail("no task: give --perplexity FILE, --choice FILE.jsonl, --generation FILE.jsonl (repeatable) or --passkey "
         "LENGTHS");
  std::unique_ptr<TextModel> tm;
  std::unique_ptr<eval::Backend> backend;
  if (!f.url.empty()) {
    if (!f.model.empty()) fail("--url and --model exclude each other: the server has its own model");
    backend = eval::http_backend(f.url, f.api_key);
  } else {
    tm = std::make_unique<TextModel>(load_text_model(resolve_model_dir(f.model), false, ep, f.weights));
    // Default: the positions the model was trained for (at most 4096).
    const int64_t ctx = f.ctx_size > 0 ? f.ctx_size : std::min<int64_t>(tm->model->config().max_position_embeddings, 4096);
    backend = eval::engine_backend(*tm->model, *tm->tokenizer, pool, f.numerics.value(), ctx);
  }
  std::vector<eval::TaskResult> results;
  for (const std::string& p : f.perplexity)
    results.push_back(eval::run_perplexity(*backend, p, f.ppl, progress_bar("perplexity " + p)));
  for (const std::string& p : f.choice) results.push_back(eval::run_choice(*backend, p, progress_bar("choice " + p)));
  for (const std::string& p : f.generation)
    results.push_back(eval::run_generation(*backend, p, f.max_tokens, progress_bar("generation " + p)));
  nlohmann::json grid;
  if (!f.passkey.lengths.empty()) {
    const auto t0 = std::chrono::steady_clock::now();
    const eval::PasskeyGrid g = eval::run_passkey(*backend, f.passkey, progress_bar("passkey"));
    results.push_back(eval::passkey_result(g, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    grid = {{"lengths", g.lengths}, {"depths", g.depths}, {"accuracy", g.accuracy}};
    if (!f.passkey_svg.empty()) {
      std::ofstream svg(f.passkey_svg);
      if (!svg) fail("cannot write ", f.passkey_svg);
      svg << eval::passkey_heatmap_svg(g, "passkey retrieval: " + backend->describe());
    }
  }

  nlohmann::json j = {{"backend", backend->describe()}, {"tasks", nlohmann::json::array()}};
  std::printf("%s\n%-11s %-40s %7s  %s\n", backend->describe().c_str(), "task", "file", "items", "scores");
  for (const eval::TaskResult& r : results) {
    nlohmann::json m = nlohmann::json::object();
    std::string scores;
    for (const auto& [k, v] : r.metrics) {
      m[k] = v;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%s %.6g", scores.empty() ? "" : ", ", k.c_str(), v);
      scores += buf;
    }
    std::printf("%-11s %-40s %7lld  %s  (%.1f s)\n", r.task.c_str(), r.file.c_str(), (long long)r.items, scores.c_str(),
                r.seconds);
    j["tasks"].push_back({{"task", r.task}, {"file", r.file}, {"items", r.items}, {"metrics", m}, {"seconds", r.seconds}});
  }
  if (!grid.is_null()) j["passkey_grid"] = grid;
  if (!f.json_out.empty()) {
    std::ofstream out(f.json_out);
    if (!out) fail("cannot write ", f.json_out);
    out << j.dump(2) << "\n";
  }
}

}  // namespace

void add_eval(CLI::App& app, AppContext& ctx) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* cmd = app.add_subcommand("eval", "score a model on evaluation tasks (perplexity, multiple choice, generation)");
  add_model_option(cmd, "--model", f->model, "model folder (in-process evaluation; default: the shipped model)");
  cmd->add_option("--url", f->url, "evaluate the model of an OpenAI-compatible server instead (e.g. http://127.0.0.1:8080)");
  cmd->add_option("--api-key", f->api_key, "bearer key for --url");
  cmd->add_option("--perplexity", f->perplexity, "text file: perplexity and bits per byte over windows (repeatable)");
  cmd->add_option("--choice", f->choice,
                  "JSONL of {\"context\", \"choices\", \"answer\"}: multiple choice by log-likelihood, acc and "
                  "acc_norm (repeatable)");
  cmd->add_option("--generation", f->generation,
                  "JSONL of {\"prompt\", \"target\"|\"targets\", \"regex\"?, \"stop\"?}: greedy generation scored "
                  "by exact match or regex (repeatable)");
  cmd->add_option("--passkey", f->passkey.lengths,
                  "passkey retrieval at these prompt lengths in tokens (comma-separated), a key per depth and trial")
      ->delimiter(',');
  f->passkey.depths = {0.0, 0.25, 0.5, 0.75, 1.0};
  cmd->add_option("--passkey-depths", f->passkey.depths, "where the key sits, 0 = start .. 1 = end")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--passkey-trials", f->passkey.trials, "keys per (length, depth) cell")->capture_default_str();
  cmd->add_option("--passkey-svg", f->passkey_svg, "write the passkey grid as an SVG heatmap");
  cmd->add_option("--window", f->ppl.window, "perplexity: tokens per window (default: what the context holds)");
  cmd->add_option("--stride", f->ppl.stride, "perplexity: tokens between window starts (default: the window)");
  cmd->add_option("--max-windows", f->ppl.max_windows, "perplexity: score only the first N windows");
  cmd->add_option("--max-tokens", f->max_tokens, "generation: most tokens per answer")->capture_default_str();
  cmd->add_option("--ctx-size", f->ctx_size,
                  "in-process: tokens per sequence (default: the model's max_position_embeddings, at most 4096)");
  cmd->add_option("--json", f->json_out, "also write the results as JSON to this file");
  add_numerics_flags(cmd, f->numerics, "bf16");
  add_weight_flags(cmd, f->weights);
  cmd->callback([f, &ctx] { run(*f, ctx.pool(), ctx.ep_options()); });
}

}  // namespace dsv3::app
