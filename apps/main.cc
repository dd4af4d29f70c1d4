// The `dsv3` command: DeepSeek-V3 on CPU.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "apps/commands.h"
#include "base/error.h"
#include "dist/expert_parallel.h"
#include "dist/world.h"

namespace {

// The subcommand named on the command line (the first word that is neither an option nor
// the value of --threads), before CLI11 parses it: under mpirun, a follower rank of an
// expert-parallel command must not run the command itself.
std::string subcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (a[0] != '-') return a;
    if (!std::strchr(a, '=') && (!std::strcmp(a, "--threads") || !std::strcmp(a, "-t") || !std::strcmp(a, "--expert-map") ||
                                 !std::strcmp(a, "--redundant-experts") || !std::strcmp(a, "--expert-loads") ||
                                 !std::strcmp(a, "--save-expert-loads")))
      ++i;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using dsv3::dist::World;
  // Expert parallelism: under mpirun every rank but 0 serves its experts to rank 0, which
  // runs the command. Other commands run on every rank as they are (train: data parallel).
  const bool expert_parallel = World::launched_by_mpirun() && dsv3::dist::expert_parallel_command(subcommand(argc, argv));
  if (expert_parallel) {
    try {
      World::init();
    } catch (const dsv3::Error& e) {
      std::fprintf(stderr, "dsv3: error: %s\n", e.what());
      return 1;
    }
    if (World::rank() > 0) return dsv3::dist::follow();
  }

  CLI::App app{"dsv3: DeepSeek-V3 inference on CPU, exactly as the reference computes"};
  app.require_subcommand(1);
  dsv3::app::AppContext ctx;
  app.add_option("--threads,-t", ctx.threads,
                 "worker threads (default: all hardware threads; under mpirun, shared among the ranks on a machine)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--expert-map", ctx.ep.expert_map,
                 "mpirun: which ranks hold which routed experts, a JSON file (docs/scale-out.md; default: contiguous "
                 "ranges)");
  app.add_option("--redundant-experts", ctx.ep.redundant,
                 "mpirun: give each MoE layer's N most-loaded experts (from --expert-loads) a copy on the least-loaded "
                 "rank")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--expert-loads", ctx.ep.expert_loads, "tokens per expert measured earlier (--save-expert-loads)");
  app.add_option("--save-expert-loads", ctx.ep.save_expert_loads,
                 "write the tokens routed to each expert of each MoE layer to this JSON file when the command ends");
  app.fallthrough();
  dsv3::app::add_make_test_model(app);
  dsv3::app::add_logits(app, ctx);
  dsv3::app::add_inspect(app);
  dsv3::app::add_quantize(app);
  dsv3::app::add_bench(app, ctx);
  dsv3::app::add_generate(app, ctx);
  dsv3::app::add_chat(app, ctx);
  dsv3::app::add_tokenize(app);
  dsv3::app::add_detokenize(app);
  dsv3::app::add_render_chat(app);
  dsv3::app::add_serve(app, ctx);
  dsv3::app::add_train_tokenizer(app, ctx);
  dsv3::app::add_grad(app, ctx);
  dsv3::app::add_train(app, ctx);
  dsv3::app::add_plot(app);
  dsv3::app::add_eval(app, ctx);
  // A failing leader takes its followers down (they would otherwise wait for it forever).
  auto failed = [&](int code) {
    if (expert_parallel && World::size() > 1) {
      std::fflush(stderr);
      World::abort(code);
    }
    return code;
  };
  try {
    app.parse(argc, argv);
    dsv3::dist::finish(ctx.ep);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    if (code != 0) return failed(code);
    dsv3::dist::finish(ctx.ep);
    return 0;
  } catch (const dsv3::Error& e) {
    std::fprintf(stderr, "dsv3: error: %s\n", e.what());
    return failed(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsv3: unexpected error: %s\n", e.what());
    return failed(2);
  }
  return 0;
}
