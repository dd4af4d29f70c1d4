// The `dsv3` command: DeepSeek-V3 on CPU.
#include <cstdio>

#include "apps/commands.h"
#include "base/error.h"

int main(int argc, char** argv) {
  CLI::App app{"dsv3: DeepSeek-V3 inference on CPU, exactly as the reference computes"};
  app.require_subcommand(1);
  dsv3::app::AppContext ctx;
  app.add_option("--threads,-t", ctx.threads, "worker threads (default: all hardware threads)")
      ->check(CLI::NonNegativeNumber);
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const dsv3::Error& e) {
    std::fprintf(stderr, "dsv3: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsv3: unexpected error: %s\n", e.what());
    return 2;
  }
  return 0;
}
