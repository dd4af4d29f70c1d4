// `dsv3 quantize`: a BF16 or F32 checkpoint to the published FP8 layout (model/quantize.h).
#include <chrono>
#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "model/quantize.h"

namespace dsv3::app {

void add_quantize(CLI::App& app) {
  struct Flags {
    std::string in, out;
    int shards = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "quantize", "write a BF16/F32 checkpoint in the published FP8 layout (e4m3 Linear weights, 128x128 scales)");
  cmd->add_option("--in", f->in, "checkpoint folder to read (BF16 or F32 weights, config.json)")->required();
  cmd->add_option("--out", f->out, "folder to write the FP8 checkpoint into")->required();
  cmd->add_option("--shards", f->shards, "safetensors shards to write (default: as many as the input)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([f] {
    const auto t0 = std::chrono::steady_clock::now();
    const model::QuantizeResult r = model::quantize_checkpoint(f->in, f->out, {f->shards, true});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("quantized %lld Linear weights to FP8, kept %lld tensors: %.1f MB -> %.1f MB in %.1f s (%.0f MB/s)\n",
                (long long)r.fp8_tensors, (long long)r.kept_tensors, double(r.bytes_in) / 1e6,
                double(r.bytes_out) / 1e6, s, double(r.bytes_in) / 1e6 / s);
    std::printf("wrote %s\n", f->out.c_str());
  });
}

}  // namespace dsv3::app
