// `dsv3 tokenize` / `dsv3 detokenize`: the tokenizer as a JSON filter on stdin/stdout, for tests
// and tools (one JSON array in, one JSON array out, so a whole corpus costs one process).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "base/error.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::app {
namespace {

using json = nlohmann::json;

struct TokenizeOptions {
  std::string tokenizer;
  bool add_bos = false, no_special = false;
};

json read_stdin_json(const char* command, const char* expected) {
  const std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    fail(command, ": stdin is not valid JSON (", e.what(), "); expected ", expected);
  }
  if (!j.is_array()) fail(command, ": expected ", expected, " on stdin");
  return j;
}

void write_stdout(const json& j) {
  // Invalid UTF-8 cannot occur (decode repairs it), but say how to serialize it regardless.
  const std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

void run_tokenize(const TokenizeOptions& o) {
  const json in = read_stdin_json("tokenize", "a JSON array of strings");
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  json out = json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].is_string()) fail("tokenize: item ", i, " is not a string");
    out.push_back(tok.encode(in[i].get_ref<const std::string&>(), o.add_bos, o.no_special));
  }
  write_stdout(out);
}

void run_detokenize(const std::string& path) {
  const json in = read_stdin_json("detokenize", "a JSON array of arrays of token ids");
  const Tokenizer tok = Tokenizer::load(path);
  json out = json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].is_array()) fail("detokenize: item ", i, " is not an array of token ids");
    std::vector<int32_t> ids;
    for (const json& v : in[i]) {
      if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
        fail("detokenize: item ", i, " holds ", v.dump(), ", which is not a token id");
      ids.push_back(v.get<int32_t>());
    }
    out.push_back(tok.decode(ids));
  }
  write_stdout(out);
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "JSON array of strings on stdin -> JSON array of id arrays");
  cmd->add_option("--tokenizer", o->tokenizer, "model folder or tokenizer.json")->required();
  cmd->add_flag("--add-bos", o->add_bos, "prepend the BOS token");
  cmd->add_flag("--no-special", o->no_special,
                "do not recognise special tokens in the text (split_special_tokens mode)");
  cmd->callback([o] { run_tokenize(*o); });
}

void add_detokenize(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("detokenize", "JSON array of id arrays on stdin -> JSON array of strings");
  cmd->add_option("--tokenizer", *path, "model folder or tokenizer.json")->required();
  cmd->callback([path] { run_detokenize(*path); });
}

}  // namespace dsv3::app
