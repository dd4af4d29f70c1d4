// What a user meets when something is wrong: malformed or unsupported tokenizer files, unknown
// token ids, and the `dsv3 tokenize` / `dsv3 detokenize` commands (happy path and errors).
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace dsv3 {
namespace {

using json = nlohmann::json;
using testutil::error_of;

std::string tok_byte(int b) { return tok::byte_level_encode(std::string(1, char(b))); }

// A minimal valid byte-level BPE: the 256 byte tokens plus "ab" and "abc".
json tiny_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[tok_byte(b)] = b;
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c"}}}},
          {"added_tokens", json::array({{{"id", 258}, {"content", "<s>"}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}}};
}

class TokenizerFiles : public ::testing::Test {
 protected:
  // Writes j as tokenizer.json (and cfg as tokenizer_config.json unless null); returns the folder.
  std::string write(const json& j, const json& cfg = nullptr) {
    testutil::write_file(dir_ / "tokenizer.json", j.dump());
    if (!cfg.is_null()) testutil::write_file(dir_ / "tokenizer_config.json", cfg.dump());
    return dir_.str();
  }
  std::string load_error(const json& j) {
    const std::string d = write(j);
    return error_of([&] { Tokenizer::load(d); });
  }
  testutil::TempDir dir_{"tok_files"};
};

TEST_F(TokenizerFiles, TinyTokenizerWorks) {
  json cfg = {{"bos_token", {{"content", "<s>"}}}, {"eos_token", "<s>"}, {"add_bos_token", false},
              {"chat_template", json::array({{{"name", "tool_use"}, {"template", "T"}},
                                             {{"name", "default"}, {"template", "D"}}})}};
  const Tokenizer t = Tokenizer::load(write(tiny_tokenizer(), cfg));
  EXPECT_EQ(t.encode("abc ab"), (std::vector<int32_t>{257, int32_t(*t.token_id("Ġ")), 256}));
  EXPECT_EQ(t.encode("x<s>", true), (std::vector<int32_t>{258, 'x', 258}));
  EXPECT_EQ(t.bos_id(), 258);
  EXPECT_EQ(t.eos_id(), 258);
  EXPECT_FALSE(t.add_bos_by_default());
  EXPECT_EQ(t.chat_template(), "D");
  // Loading the file directly also picks up the config beside it.
  EXPECT_EQ(Tokenizer::load(dir_ / "tokenizer.json").chat_template(), "D");
}

TEST_F(TokenizerFiles, NoBosToken) {
  const Tokenizer t = Tokenizer::load(write(tiny_tokenizer()));
  EXPECT_EQ(t.bos_id(), -1);
  EXPECT_EQ(t.eos_id(), -1);
  EXPECT_EQ(t.chat_template(), "");
  EXPECT_CONTAINS(error_of([&] { t.encode("a", true); }), "has none");
}

TEST_F(TokenizerFiles, MalformedFilesAreNamed) {
  testutil::write_file(dir_ / "tokenizer.json", "{\"model\": oops");
  const std::string e = error_of([&] { Tokenizer::load(dir_.str()); });
  EXPECT_CONTAINS(e, "tokenizer.json");
  EXPECT_CONTAINS(e, "not valid JSON");

  EXPECT_CONTAINS(load_error(json::array()), "JSON object");
  json j = tiny_tokenizer();
  j["model"]["type"] = "WordPiece";
  EXPECT_CONTAINS(load_error(j), "model type 'WordPiece' is not supported");
  j = tiny_tokenizer();
  j["model"].erase("vocab");
  EXPECT_CONTAINS(load_error(j), "no 'vocab'");
  j = tiny_tokenizer();
  j["model"].erase("merges");
  EXPECT_CONTAINS(load_error(j), "no 'merges'");
  j = tiny_tokenizer();
  j["model"]["merges"].push_back("a zz");
  EXPECT_CONTAINS(load_error(j), "merge #2 'a zz' refers to 'zz', which is not in the vocab");
  j = tiny_tokenizer();
  j["model"]["merges"].push_back("b c");  // "bc" itself is missing
  EXPECT_CONTAINS(load_error(j), "refers to 'bc'");
  j = tiny_tokenizer();
  j["model"]["merges"].push_back("abc");
  EXPECT_CONTAINS(load_error(j), "not two tokens");
  j = tiny_tokenizer();
  j["model"]["vocab"]["ab"] = "x";
  EXPECT_CONTAINS(load_error(j), "vocab entry 'ab' has no valid id");
  j = tiny_tokenizer();
  j["added_tokens"][0]["id"] = 4000000000LL;  // would size the id tables: refused
  EXPECT_CONTAINS(load_error(j), "added token '<s>' has id 4000000000 (ids must lie in 0..16777215)");
  j = tiny_tokenizer();
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_CONTAINS(load_error(j), "normalizer 'NFC' is not supported");
  j = tiny_tokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_CONTAINS(load_error(j), "decoder 'WordPiece' is not supported");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_CONTAINS(load_error(j), "pre_tokenizer type 'Whitespace' is not supported");
  j = tiny_tokenizer();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(("}}}, {"behavior", "Isolated"}};
  EXPECT_CONTAINS(load_error(j), "does not compile");
  j = tiny_tokenizer();
  j["added_tokens"][0].erase("content");
  EXPECT_CONTAINS(load_error(j), "added_tokens entry without");
  j = tiny_tokenizer();
  j["model"]["dropout"] = "high";  // wrong JSON type: rejected with the file named
  EXPECT_CONTAINS(load_error(j), "malformed tokenizer files");
}

TEST_F(TokenizerFiles, MissingPathsAndBadConfig) {
  EXPECT_CONTAINS(error_of([&] { Tokenizer::load(dir_ / "nope"); }), "tokenizer not found");
  EXPECT_CONTAINS(error_of([&] { Tokenizer::load(dir_.str()); }), "no tokenizer.json in this folder");
  write(tiny_tokenizer());
  testutil::write_file(dir_ / "tokenizer_config.json", "not json");
  EXPECT_CONTAINS(error_of([&] { Tokenizer::load(dir_.str()); }), "tokenizer_config.json: not valid JSON");
  write(tiny_tokenizer(), {{"bos_token", "<nope>"}});
  EXPECT_CONTAINS(error_of([&] { Tokenizer::load(dir_.str()); }), "bos_token '<nope>' is not a token");
}

TEST(TokenizerIds, UnknownIdsAreErrors) {
  const Tokenizer& t = testutil::deepseek_v3();
  EXPECT_CONTAINS(error_of([&] { t.decode({1, 999999}); }), "unknown token id 999999");
  EXPECT_CONTAINS(error_of([&] { t.decode({-1}); }), "unknown token id -1");
  EXPECT_CONTAINS(error_of([&] { t.decode({128815}); }), "ids 0..128814");
  EXPECT_CONTAINS(error_of([&] { t.token_bytes(200000); }), "unknown token id");
  StreamDecoder sd(t);
  EXPECT_CONTAINS(error_of([&] { sd.push(-3); }), "unknown token id -3");
  EXPECT_FALSE(t.is_valid_id(128815));
  EXPECT_TRUE(t.is_valid_id(128814));
}

using CliRun = testutil::CommandResult;

// Runs `dsv3 <args>` with `input` on stdin; returns exit code and stdout+stderr.
CliRun dsv3(const std::string& args, const std::string& input) { return testutil::run_dsv3(args, input); }

TEST(TokenizerCli, TokenizeAndDetokenize) {
  const Tokenizer& t = testutil::deepseek_v3();
  const std::string dir = testutil::deepseek_v3_dir();
  const json texts = {"Hello, world!", "<｜begin▁of▁sentence｜><｜User｜>你好", ""};
  CliRun r = dsv3("tokenize --tokenizer " + dir, texts.dump());
  ASSERT_EQ(r.code, 0) << r.out;
  json ids = json::parse(r.out);
  ASSERT_EQ(ids.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ids[i].get<std::vector<int32_t>>(), t.encode(texts[i].get<std::string>()));

  r = dsv3("tokenize --add-bos --no-special --tokenizer " + dir + "/tokenizer.json", texts.dump());
  ASSERT_EQ(r.code, 0) << r.out;
  const json split = json::parse(r.out);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(split[i].get<std::vector<int32_t>>(), t.encode(texts[i].get<std::string>(), true, true));

  r = dsv3("detokenize --tokenizer " + dir, ids.dump());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(json::parse(r.out), texts);
}

TEST(TokenizerCli, ErrorsExitNonZero) {
  const std::string dir = testutil::deepseek_v3_dir();
  CliRun r = dsv3("tokenize --tokenizer " + dir, "{\"not\": \"an array\"}");
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "expected a JSON array of strings");
  r = dsv3("tokenize --tokenizer " + dir, "[1]");
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "item 0 is not a string");
  r = dsv3("detokenize --tokenizer " + dir, "[[1, 99999999]]");
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "unknown token id 99999999");
  r = dsv3("tokenize --tokenizer /no/such/dir", "[]");
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "tokenizer not found");
}

}  // namespace
}  // namespace dsv3
