#include <unistd.h>

#include <cstdio>
#include <string>

#include "apps/commands.h"
#include "model/testgen.h"

namespace dsv3::app {

void add_make_test_model(CLI::App& app) {
  auto opts = std::make_shared<TestModelOptions>();
  std::string presets;
  for (const auto& [name, about] : test_model_presets()) presets += "\n  " + name + ": " + about;
  CLI::App* cmd = app.add_subcommand("make-test-model",
                                     "write a random checkpoint in the published Hugging Face layout\npresets:" + presets);
  cmd->add_option("--preset", opts->preset, "model preset")->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "weight format: fp8 (e4m3 + 128x128 scales), bf16 or f32")
      ->check(CLI::IsMember({"fp8", "bf16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "random seed")->capture_default_str();
  cmd->add_option("--shards", opts->shards, "number of safetensors shards")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--out", opts->out, "output folder")->required();
  cmd->callback([opts] {
    opts->progress = true;
    const uint64_t bytes = make_test_model(*opts);
    std::printf("wrote %s: preset %s, %s, %.1f MB in %d shard(s)\n", opts->out.c_str(), opts->preset.c_str(),
                opts->dtype.c_str(), double(bytes) / 1e6, opts->shards);
  });
}

}  // namespace dsv3::app
