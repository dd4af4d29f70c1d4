// The shipped default model (default-model/, pretrained on the King James Bible, then
// post-trained on questions about it): generate, chat and serve use it when --model is
// omitted, DSV3_MODEL overrides it, it writes English text and answers questions in the
// forms post-training taught it.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int code;
  std::string out, err;
};

// `env_prefix` is an `env` argument list; stdout and stderr are kept apart because the
// generated text is checked on its own.
Outcome dsv3_env(const std::string& env_prefix, const std::string& args, const std::string& stdin_path = "/dev/null") {
  testutil::TempDir dir("default_model");
  const std::string err_path = dir / "stderr";
  const std::string cmd =
      "env " + env_prefix + " " + DSV3_BINARY + " " + args + " < " + stdin_path + " 2> " + err_path;
  const testutil::CommandResult r = testutil::run_shell(cmd);
  std::stringstream err;
  err << std::ifstream(err_path).rdbuf();
  return {r.code, r.out, err.str()};
}

const std::string kGreedy = "generate --prompt \"In the beginning\" --max-tokens 20 --temperature 0";

TEST(CliDefaultModel, ShippedFolderIsComplete) {
  const fs::path dir = fs::path(DSV3_SOURCE_DIR) / "default-model";
  for (const char* f : {"config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
                        "TRAINING.md", "loss.svg", "base_loss.svg"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  uintmax_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir)) bytes += e.is_regular_file() ? e.file_size() : 0;
  EXPECT_LE(bytes, 25'000'000u) << "the shipped model must stay small enough to commit";
}

TEST(CliDefaultModel, GenerateWithoutModelWritesEnglish) {
  const Outcome r = dsv3_env("-u DSV3_MODEL", kGreedy);
  ASSERT_EQ(r.code, 0) << r.err;
  // KJV text is printable ASCII; chapter headings ("Genesis 2") bring the only digits.
  int letters = 0, visible = 0, foreign = 0;
  for (unsigned char c : r.out) {
    if (std::isalpha(c)) ++letters;
    if (std::isgraph(c)) ++visible;
    else if (c != ' ' && c != '\n') ++foreign;  // control bytes, UTF-8
  }
  EXPECT_GE(letters, 30) << r.out;  // 20 tokens of ~3.6 bytes
  EXPECT_GE(letters, visible * 8 / 10) << r.out;
  EXPECT_EQ(foreign, 0) << r.out;
  // Greedy decoding: the same text as naming the shipped folder explicitly.
  const Outcome named = dsv3_env("-u DSV3_MODEL",
                             kGreedy + " --model " + (fs::path(DSV3_SOURCE_DIR) / "default-model").string());
  ASSERT_EQ(named.code, 0) << named.err;
  EXPECT_EQ(named.out, r.out);
}

TEST(CliDefaultModel, EnvironmentOverridesTheShippedModel) {
  testutil::TempDir dir("default_model_env");
  const std::string tokenizer = (fs::path(DSV3_SOURCE_DIR) / "default-model").string();
  const Outcome made =
      dsv3_env("", "make-test-model --preset tiny --seed 3 --tokenizer " + tokenizer + " --out " + (dir / "m"));
  ASSERT_EQ(made.code, 0) << made.err;
  const Outcome r = dsv3_env("DSV3_MODEL=" + (dir / "m"), kGreedy);
  ASSERT_EQ(r.code, 0) << r.err;
  const Outcome shipped = dsv3_env("-u DSV3_MODEL", kGreedy);
  EXPECT_NE(r.out, shipped.out) << "DSV3_MODEL was ignored";

  const Outcome missing = dsv3_env("DSV3_MODEL=" + (dir / "nothing"), kGreedy);
  EXPECT_NE(missing.code, 0);
  EXPECT_CONTAINS(missing.err, "DSV3_MODEL=" + (dir / "nothing"));
  // An explicit --model wins over the variable.
  const Outcome flag = dsv3_env("DSV3_MODEL=" + (dir / "nothing"), kGreedy + " --model " + (dir / "m"));
  EXPECT_EQ(flag.code, 0) << flag.err;
  EXPECT_EQ(flag.out, r.out);
}

TEST(CliDefaultModel, HelpNamesTheDefault) {
  for (const char* cmd : {"generate", "chat", "serve"}) {
    const Outcome r = dsv3_env("-u DSV3_MODEL", std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_CONTAINS(r.out, "DSV3_MODEL");
    EXPECT_CONTAINS(r.out, "default-model");
  }
}

TEST(CliDefaultModel, ChatWithoutModelAnswers) {
  // Chat reads turns from stdin; the post-trained model answers with a name and stops.
  testutil::TempDir dir("default_model_chat");
  { std::ofstream(dir / "in") << "Who begat Nahshon?\n"; }
  const Outcome r = dsv3_env("-u DSV3_MODEL", "chat --max-tokens 16 --temperature 0", dir / "in");
  ASSERT_EQ(r.code, 0) << r.err;
  const size_t header_end = r.out.find('\n');
  ASSERT_NE(header_end, std::string::npos) << r.out;
  EXPECT_CONTAINS(r.out.substr(0, header_end), "default-model");
  int letters = 0;
  for (unsigned char c : r.out.substr(header_end)) letters += std::isalpha(c) ? 1 : 0;
  EXPECT_GE(letters, 3) << r.out;
}

// Post-training taught the model answer forms: held-out questions (scripts/kjv/
// make_instructions.py's held-out tenth) asking for a book and chapter get "Book N", those
// asking for a count get a number, greedy, through the chat template (measured: 200 of 200
// held-out questions of these kinds; the base model: 0). Whether the answer is right is the
// exact-match figure of default-model/TRAINING.md, low at this size.
TEST(CliDefaultModel, AnswersInTheFormsPostTrainingTaught) {
  testutil::TempDir dir("default_model_forms");
  const std::string book = R"(^(?:[1-3] )?[A-Z][a-z]+(?: of [A-Z][a-z]+)? [0-9]+$)", number = "^[0-9]+$";
  const std::pair<const char*, const std::string*> questions[] = {
      {"Which book and chapter says: \"And forgat his works, and his wonders that he had shewed them.\"?", &book},
      {"Which book and chapter says: \"Hodijah, Hashum, Bezai,\"?", &book},
      {"Where is this verse found? Answer with book and chapter: And through a window in a basket was I let down "
       "by the wall, and escaped his hands.", &book},
      {"Which book and chapter says: \"Or what man is there of you, whom if his son ask bread, will he give him a "
       "stone?\"?", &book},
      {"Which book and chapter says: \"He that turneth away his ear from hearing the law, even his prayer shall be "
       "abomination.\"?", &book},
      {"How many verses are in Isaiah 26?", &number},
      {"How many verses are in 1 Samuel 15?", &number},
      {"How many verses are in Malachi 3?", &number},
  };
  {
    std::ofstream f(dir / "forms.jsonl");
    for (const auto& [q, rx] : questions)
      f << nlohmann::json{{"prompt", std::string("<｜User｜>") + q + "<｜Assistant｜>"},
                          {"regex", *rx},
                          {"stop", {"\n", "<｜User｜>", "<｜end▁of▁sentence｜>"}}}.dump()
        << "\n";
  }
  const Outcome r = dsv3_env("-u DSV3_MODEL", "eval --generation " + (dir / "forms.jsonl") + " --json " + (dir / "r.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(std::ifstream(dir / "r.json"));
  EXPECT_EQ(j["tasks"][0]["metrics"]["exact_match"].get<double>(), 1.0) << j.dump();
}

}  // namespace
}  // namespace dsv3
