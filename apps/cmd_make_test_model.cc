#include <unistd.h>

#include <cstdio>
#include <string>

#include <filesystem>

#include "apps/commands.h"
#include "base/error.h"
#include "model/testgen.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::app {

void add_make_test_model(CLI::App& app) {
  auto opts = std::make_shared<model::TestModelOptions>();
  std::string presets;
  for (const auto& [name, about] : model::test_model_presets()) presets += "\n  " + name + ": " + about;
  CLI::App* cmd = app.add_subcommand("make-test-model",
                                     "write a random checkpoint in the published Hugging Face layout\npresets:" + presets);
  cmd->add_option("--preset", opts->preset, "model preset")->capture_default_str();
  cmd->add_option("--dtype", opts->dtype, "weight format: fp8 (e4m3 + 128x128 scales), bf16 or f32")
      ->check(CLI::IsMember({"fp8", "bf16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--seed", opts->seed, "random seed")->capture_default_str();
  cmd->add_option("--shards", opts->shards, "number of safetensors shards")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--out", opts->out, "output folder")->required();
  auto tokenizer = std::make_shared<std::string>();
  cmd->add_option("--tokenizer", *tokenizer,
                  "copy this tokenizer (model folder or tokenizer.json) into the model and size the vocabulary for it");
  cmd->callback([opts, tokenizer] {
    namespace fs = std::filesystem;
    opts->progress = true;
    fs::path tok_dir;
    if (!tokenizer->empty()) {
      const Tokenizer tok = Tokenizer::load(*tokenizer);
      tok_dir = fs::is_directory(*tokenizer) ? fs::path(*tokenizer) : fs::path(*tokenizer).parent_path();
      // Embedding rows padded to a multiple of 1280, as DeepSeek-V3 pads 128815 ids to 129280.
      opts->vocab_size = (tok.vocab_size() + 1279) / 1280 * 1280;
      opts->bos_token_id = tok.bos_id();
      opts->eos_token_id = tok.eos_id();
    }
    const uint64_t bytes = model::make_test_model(*opts);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      if (tok_dir.empty()) break;
      if (fs::exists(tok_dir / f)) fs::copy_file(tok_dir / f, fs::path(opts->out) / f, fs::copy_options::overwrite_existing);
      else if (std::string(f) == "tokenizer.json") fail("no tokenizer.json in ", tok_dir.string());
    }
    std::printf("wrote %s: preset %s, %s, %.1f MB in %d shard(s)\n", opts->out.c_str(), opts->preset.c_str(),
                opts->dtype.c_str(), double(bytes) / 1e6, opts->shards);
  });
}

}  // namespace dsv3::app
