#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "base/error.h"
#include "threading/pool.h"
#include "train/data_parallel.h"
#include "train/run_config.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace dsv3::app {

namespace {

struct TrainArgs {
  std::string config, model_config, resume, out;
  int64_t steps = 0, stop_after = 0;
  bool quiet = false, profile = false;
};

void run_train(const TrainArgs& args, AppContext& ctx) {
  namespace fs = std::filesystem;
  const TrainArgs* a = &args;
  std::string resume = a->resume;
  if (!resume.empty() && !fs::exists(fs::path(resume) / "state.json") && fs::exists(fs::path(resume) / "state" / "state.json"))
    resume = (fs::path(resume) / "state").string();
  if (a->config.empty() && resume.empty()) fail("dsv3 train needs --config RUN.json (or --resume DIR)");
  // A resumed run keeps its own config unless a new one is given (e.g. to extend the run).
  train::RunConfig run = a->config.empty() ? train::saved_run_config(resume) : train::RunConfig::load(a->config);
  if (!a->model_config.empty()) {
    run.model.config = fs::absolute(a->model_config).lexically_normal().string();
    run.model.preset.clear();
  }
  if (!a->out.empty()) run.out_dir = fs::absolute(a->out).lexically_normal().string();
  if (a->steps > 0) {
    run.steps = a->steps;
    run.tokens = 0;
  }
  run.validate();
  // The run config's thread count, when it has one, wins over --threads.
  ThreadPool& pool = ctx.pool(int(run.threads));
  train::TrainerOptions opts{resume, a->stop_after, !a->quiet};
  opts.profile = a->profile;
  const train::TrainResult r = train::train(run, opts, pool);
  if (!train::DataParallel::is_root()) return;
  if (a->profile) std::fprintf(stderr, "time by phase (this rank, the steps and evaluations of this run):\n%s", r.profile.c_str());
  std::printf("%s\n", train::summary_line(r).c_str());
}

}  // namespace

void add_train(CLI::App& app, AppContext& ctx) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "train a model from a run config (see docs/training.md)");
  cmd->add_option("--config", a->config, "run config JSON");
  cmd->add_option("--model-config", a->model_config, "model config.json (overrides model.config)");
  cmd->add_option("--resume", a->resume, "continue from a saved training state (OUT/state, or OUT itself)");
  cmd->add_option("--out", a->out, "output folder (overrides out_dir)");
  cmd->add_option("--steps", a->steps, "total optimizer steps (overrides steps / tokens)")->check(CLI::PositiveNumber);
  cmd->add_option("--stop-after", a->stop_after, "stop after this step, saving the state, without changing the schedule")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--quiet,-q", a->quiet, "no progress output on stderr");
  cmd->add_flag("--profile", a->profile,
                "time the steps by phase (GEMM Fprop/Dgrad/Wgrad, FP8/BF16 operands, routed experts, attention core, "
                "the rest of the model, optimizer, evaluation, data) and print the table on stderr at the end");
  cmd->callback([a, &ctx] {
    // Under mpirun every rank runs this; gradients are summed across ranks each step.
    train::DataParallel::init();
    try {
      run_train(*a, ctx);
    } catch (const std::exception& e) {
      if (train::DataParallel::size() > 1) {
        std::fprintf(stderr, "dsv3: error (rank %d): %s\n", train::DataParallel::rank(), e.what());
        train::DataParallel::abort(1);
      }
      train::DataParallel::finalize();
      throw;
    }
    train::DataParallel::finalize();
  });
}

}  // namespace dsv3::app
