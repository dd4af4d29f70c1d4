// Shared by the training tests: a 258-id byte-level tokenizer (bytes, <bos>, <eos>) and a
// deterministic English-like corpus, so runs are fast and need no downloaded files.
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/rng.h"
#include "tokenizer/byte_level.h"

namespace dsv3::testutil {

//! Writes tokenizer.json and tokenizer_config.json into dir. vocab_size > 258 pads the
//! vocabulary with unused added tokens (for models wider than the text needs).
inline void write_byte_tokenizer(const std::string& dir, int vocab_size = 258) {
  using json = nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[tok::byte_level_encode(std::string(1, char(b)))] = b;
  const json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
                  {"added_tokens", json::array({{{"id", 256}, {"content", "<bos>"}, {"special", true}},
                                                {{"id", 257}, {"content", "<eos>"}, {"special", true}}})},
                  {"normalizer", nullptr},
                  {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                  {"post_processor", nullptr},
                  {"decoder", {{"type", "ByteLevel"}}}};
  json full = j;
  for (int id = 258; id < vocab_size; ++id) {
    std::string content = "<unused";
    content += std::to_string(id);
    content += '>';
    full["added_tokens"].push_back({{"id", id}, {"content", content}, {"special", true}});
  }
  std::ofstream(dir + "/tokenizer.json") << full.dump();
  std::ofstream(dir + "/tokenizer_config.json")
      << json{{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"add_bos_token", true}}.dump();
}

//! `words` words of a small grammar, so there is structure a bigram model can learn.
inline std::string corpus_text(uint64_t seed, int words) {
  static const char* subj[] = {"the cat", "a dog", "the old man", "my friend", "the bird"};
  static const char* verb[] = {"sees", "likes", "finds", "keeps", "follows"};
  static const char* obj[] = {"the ball.", "a red box.", "the river.", "some bread.", "the light."};
  Rng rng(seed);
  std::string s;
  for (int w = 0; w < words; w += 3) {
    s += subj[rng.below(5)];
    s += " ";
    s += verb[rng.below(5)];
    s += " ";
    s += obj[rng.below(5)];
    s += w % 30 == 27 ? "\n" : " ";
  }
  return s;
}

}  // namespace dsv3::testutil
