// `dsv3 generate --batch` (data distillation's generation and filter) on the shipped default
// model: every prompt answered --samples times on one engine, answers checked (exact, regex,
// script), the accepted ones written as chat conversations that `dsv3 train` reads as SFT
// data; a rerun with the same seed writes the same file.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace dsv3 {
namespace {

using nlohmann::json;
using testutil::run_dsv3;

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class GenerateBatch : public ::testing::Test {
 protected:
  std::string run(const std::string& in, const std::string& out, const std::string& flags) {
    // Answers end at the first full stop (a stop string: a whole answer); one still going at
    // 60 tokens is cut, and a cut answer is never kept.
    const auto r = run_dsv3("generate --threads 2 --batch " + (dir_ / in) + " --out " + (dir_ / out) +
                            " --max-tokens 60 --stop . --seed 5 " + flags);
    EXPECT_EQ(r.code, 0) << r.out;
    return r.out;
  }
  void write(const std::string& name, const std::vector<json>& lines) {
    std::ofstream f(dir_ / name);
    for (const json& j : lines) f << j.dump() << "\n";
  }
  testutil::TempDir dir_{"genbatch"};
};

TEST_F(GenerateBatch, SamplesAreCheckedAndWrittenAsConversations) {
  const json tools = json::parse(R"([{"type": "function", "function": {"name": "verse", "parameters": {"type": "object"}}}])");
  write("p.jsonl", {{{"prompt", "Who made the heaven and the earth?"}, {"targets", {"nothing"}}, {"regex", "."}},
                    {{"messages", {{{"role", "system"}, {"content", "Answer briefly."}}, {{"role", "user"}, {"content", "And God said"}}}},
                     {"tools", tools}, {"targets", {"nothing"}}, {"regex", "."}}});
  // No check: every whole answer is kept, with its prompt's messages in front.
  const std::string all = run("p.jsonl", "all.jsonl", "--samples 3");
  EXPECT_CONTAINS(all, "2 prompts x 3 samples = 6 answers");
  const std::vector<json> kept = read_jsonl(dir_ / "all.jsonl");
  ASSERT_GE(kept.size(), 3u);
  std::vector<std::string> answers;  // the first prompt's
  for (const json& k : kept) {
    const json& m = k["messages"];
    ASSERT_EQ(m.back()["role"], "assistant");
    EXPECT_FALSE(m.back()["content"].get<std::string>().empty());
    if (m[0]["role"] == "system") {
      EXPECT_EQ(m[1]["content"], "And God said");
      EXPECT_EQ(k["tools"], tools);  // passed on: the student trains on the prompt the teacher saw
    } else {
      EXPECT_EQ(m[0]["content"], "Who made the heaven and the earth?");
      EXPECT_FALSE(k.contains("tools"));
      answers.push_back(m.back()["content"]);
    }
  }
  ASSERT_GE(answers.size(), 1u);
  if (answers.size() > 1) {
    EXPECT_NE(answers[0], answers[1]);  // samples differ...
  }
  run("p.jsonl", "again.jsonl", "--samples 3");
  EXPECT_EQ(file_text(dir_ / "again.jsonl"), file_text(dir_ / "all.jsonl"));  // ...and repeat with the seed

  // Exact: an answer equal to a target is kept, others are not.
  write("t.jsonl", {{{"prompt", "Who made the heaven and the earth?"}, {"targets", {answers[0], "God"}}},
                    {{"prompt", "And God said"}, {"target", "surely not this"}}});
  EXPECT_CONTAINS(run("t.jsonl", "exact.jsonl", "--samples 3 --check exact"), "check exact accepted 1 (16.7%), 1 of 2 prompts");
  const std::vector<json> exact = read_jsonl(dir_ / "exact.jsonl");
  ASSERT_EQ(exact.size(), 1u);
  EXPECT_EQ(exact[0]["messages"][1]["content"], answers[0]);

  // Regex and script checks agree on the same rule: the answer contains a word of the first.
  std::string word;
  for (char c : answers[0]) {
    if (std::isalpha(static_cast<unsigned char>(c))) word += c;
    else if (!word.empty()) break;
  }
  ASSERT_FALSE(word.empty()) << answers[0];
  write("r.jsonl", {{{"prompt", "Who made the heaven and the earth?"}, {"regex", word}}});
  run("r.jsonl", "regex.jsonl", "--samples 3 --check regex");
  std::ofstream(dir_ / "check.py") << "import json, sys\nsys.exit(0 if sys.argv[1] in json.load(sys.stdin)['answer'] else 1)\n";
  run("r.jsonl", "script.jsonl", "--samples 3 --check script --check-script 'python3 " + (dir_ / "check.py") + " " + word + "'");
  EXPECT_GE(read_jsonl(dir_ / "regex.jsonl").size(), 1u);
  EXPECT_EQ(file_text(dir_ / "script.jsonl"), file_text(dir_ / "regex.jsonl"));
}

TEST_F(GenerateBatch, AnswersCutByMaxTokensAreNeverKept) {
  write("p.jsonl", {{{"prompt", "Who made the heaven and the earth?"}}});
  const auto r = run_dsv3("generate --threads 2 --batch " + (dir_ / "p.jsonl") + " --out " + (dir_ / "o.jsonl") +
                          " --max-tokens 2 --ignore-eos --samples 2 --seed 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "2 cut by --max-tokens; check none accepted 0");
  EXPECT_TRUE(read_jsonl(dir_ / "o.jsonl").empty());
  // A script that cannot run stops the batch instead of rejecting every answer.
  const auto bad = run_dsv3("generate --threads 2 --batch " + (dir_ / "p.jsonl") + " --out " + (dir_ / "o.jsonl") +
                            " --max-tokens 60 --stop . --samples 3 --seed 5 --check script --check-script no-such-command-xyz");
  EXPECT_NE(bad.code, 0);
  EXPECT_CONTAINS(bad.out, "did not run to an exit status");
}

TEST_F(GenerateBatch, BadInputIsNamed) {
  write("bad.jsonl", {{{"text", "x"}}});
  auto r = run_dsv3("generate --batch " + (dir_ / "bad.jsonl") + " --out " + (dir_ / "o.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.out, "bad.jsonl:1: needs \"messages\"");
  write("p.jsonl", {{{"prompt", "x"}}});
  r = run_dsv3("generate --batch " + (dir_ / "p.jsonl") + " --out " + (dir_ / "o.jsonl") + " --check exact");
  EXPECT_CONTAINS(r.out, "p.jsonl:1: --check exact needs \"targets\"");
  r = run_dsv3("generate --batch " + (dir_ / "p.jsonl"));
  EXPECT_CONTAINS(r.out, "--batch needs --out");
  r = run_dsv3("generate --batch " + (dir_ / "p.jsonl") + " --prompt hi --out " + (dir_ / "o.jsonl"));
  EXPECT_CONTAINS(r.out, "give --prompt TEXT, or --batch FILE");
}

}  // namespace
}  // namespace dsv3
