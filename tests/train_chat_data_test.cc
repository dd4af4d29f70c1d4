// Chat-format training data (train/chat_data.h): conversations rendered through the real
// DeepSeek-V3 chat template into prompts exactly as `dsv3 serve` renders them, answers (and
// their end-of-sequence token) flagged for the loss, packing into windows, and a short
// training run on chat data whose loss counts the answers only.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/prompt.h"
#include "api/requests.h"
#include "chat/chat_template.h"
#include "test_util.h"
#include "tokenized_model.h"
#include "tokenizer/tokenizer.h"
#include "train/chat_data.h"
#include "train/data.h"
#include "train/run_config.h"
#include "train_test_util.h"

namespace dsv3 {
namespace {

using ojson = nlohmann::ordered_json;
using testutil::error_of;

struct V3 {
  Tokenizer tok = Tokenizer::load(testutil::v3_tokenizer_dir().string());
  ChatConfig cfg = load_chat_config(testutil::v3_tokenizer_dir().string());
  api::ChatPromptBuilder chat{cfg.chat_template, cfg.bos_token, cfg.eos_token};
};

V3& v3() {
  static V3 v;
  return v;
}

// The decoded text of the tokens whose flag is `flag`, runs joined by "|".
std::string flagged(const Tokenizer& tok, const train::ChatExample& ex, uint8_t flag) {
  std::string out, run;
  std::vector<int32_t> ids;
  for (size_t i = 0; i <= ex.tokens.size(); ++i) {
    if (i < ex.tokens.size() && ex.answer[i] == flag) {
      ids.push_back(ex.tokens[i]);
    } else if (!ids.empty()) {
      if (!out.empty()) out += '|';
      out += tok.decode(ids, false);
      ids.clear();
    }
  }
  return out;
}

// A byte tokenizer in `dir` with BOS, EOS and a minimal chat template (user turns "<u>",
// answers "<a>" ending in EOS), for training runs on chat data.
void write_chat_tokenizer(const testutil::TempDir& dir) {
  testutil::write_byte_tokenizer(dir.str());
  const std::string tpl =
      "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<u>{{ m['content'] }}"
      "{% else %}<a>{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}";
  std::ofstream(dir / "tokenizer_config.json")
      << nlohmann::json{{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"add_bos_token", true}, {"chat_template", tpl}}.dump();
}

TEST(ChatData, AnswersOfEveryTurnAreFlaggedAndPromptsMatchServing) {
  const ojson conv = ojson::parse(R"({"messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Recite Genesis 1:1."},
      {"role": "assistant", "content": "In the beginning God created the heaven and the earth."},
      {"role": "user", "content": "And the next verse?"},
      {"role": "assistant", "content": "And the earth was without form, and void."}]})");
  const auto ex = train::chat_examples(v3().chat, v3().tok, conv, "t:1");
  ASSERT_EQ(ex.size(), 1u);  // V3's template continues earlier prompts: one example
  const std::string eos = v3().cfg.eos_token;
  EXPECT_EQ(flagged(v3().tok, ex[0], 1), "In the beginning God created the heaven and the earth." + eos +
                                              "|And the earth was without form, and void." + eos);
  // The tokens before the first answer are the prompt serving builds for that turn.
  api::ChatCompletionRequest r = api::parse_chat_request_json(ojson{{"messages", ojson::array({conv["messages"][0], conv["messages"][1]})}});
  const std::vector<int32_t> served = v3().tok.encode(v3().chat.build(r).text, false, false);
  ASSERT_GE(ex[0].tokens.size(), served.size());
  EXPECT_EQ(std::vector<int32_t>(ex[0].tokens.begin(), ex[0].tokens.begin() + std::ptrdiff_t(served.size())), served);
  EXPECT_EQ(ex[0].answer[served.size() - 1], 0);
  EXPECT_EQ(ex[0].answer[served.size()], 1);
  EXPECT_EQ(ex[0].tokens.back(), v3().tok.eos_id());
}

TEST(ChatData, ToolCallsAreAnswersAndToolResultsAreNot) {
  const ojson conv = ojson::parse(R"({"tools": [{"type": "function", "function": {"name": "verse", "parameters": {"type": "object"}}}],
    "messages": [
      {"role": "user", "content": "Look up John 3:16."},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "verse", "arguments": "{\"ref\": \"John 3:16\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "For God so loved the world"},
      {"role": "assistant", "content": "It says: For God so loved the world."}]})");
  const auto ex = train::chat_examples(v3().chat, v3().tok, conv, "t:1");
  ASSERT_EQ(ex.size(), 1u);
  const std::string answers = flagged(v3().tok, ex[0], 1);
  EXPECT_NE(answers.find("verse"), std::string::npos) << answers;
  EXPECT_NE(answers.find("{\"ref\": \"John 3:16\"}"), std::string::npos) << answers;
  EXPECT_NE(answers.find("It says: For God so loved the world."), std::string::npos) << answers;
  const std::string prompts = flagged(v3().tok, ex[0], 0);
  EXPECT_NE(prompts.find("For God so loved the world"), std::string::npos);  // the tool's output
  EXPECT_NE(prompts.find("## Tools"), std::string::npos);  // the tools section, as serving writes it
}

TEST(ChatData, TemplateThatRewritesHistoryGivesOneExamplePerTurn) {
  // Earlier answers lose their thoughts (as R1's template does to history), so a later prompt
  // does not continue the text of the earlier answer; the last answer is rendered as written.
  const std::string tpl =
      "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<u>{{ m['content'] }}"
      "{% else %}<a>{% if loop.last %}{{ m['content'] }}{% else %}{{ m['content'].split('</think>')[-1] }}{% endif %}"
      "{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}";
  const api::ChatPromptBuilder chat(tpl, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  const ojson conv = ojson::parse(R"({"messages": [{"role": "user", "content": "a"},
      {"role": "assistant", "content": "<think>x</think>b"}, {"role": "user", "content": "c"},
      {"role": "assistant", "content": "d"}]})");
  const auto ex = train::chat_examples(chat, v3().tok, conv, "t:1");
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(flagged(v3().tok, ex[0], 1), "<think>x</think>b<｜end▁of▁sentence｜>");
  EXPECT_EQ(flagged(v3().tok, ex[1], 0), "<｜begin▁of▁sentence｜><u>a<a>b<｜end▁of▁sentence｜><u>c<a>");
  EXPECT_EQ(flagged(v3().tok, ex[1], 1), "d<｜end▁of▁sentence｜>");
}

TEST(ChatData, ReasoningTemplateThatStripsThoughtsIsRefused) {
  // R1's template opens <think> in the prompt and strips thoughts from every rendered answer:
  // an answer's rendering does not continue its prompt.
  std::ifstream f(std::string(DSV3_SOURCE_DIR) + "/tests/data/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja");
  const std::string tpl((std::istreambuf_iterator<char>(f)), {});
  ASSERT_FALSE(tpl.empty());
  const api::ChatPromptBuilder chat(tpl, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  const ojson conv = ojson::parse(R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "<think>x</think>b"}]})");
  EXPECT_CONTAINS(error_of([&] { train::chat_examples(chat, v3().tok, conv, "r1.jsonl:1"); }),
                  "r1.jsonl:1: the chat template does not render assistant message 1 as a continuation of its prompt");
}

TEST(ChatData, BadLinesNameTheirPlace) {
  auto examples = [](const std::string& line) {
    train::chat_examples(v3().chat, v3().tok, ojson::parse(line), "data.jsonl:7");
  };
  EXPECT_CONTAINS(error_of([&] { examples(R"({"text": "x"})"); }), "data.jsonl:7: messages");
  EXPECT_CONTAINS(error_of([&] { examples(R"({"messages": [{"role": "wizard", "content": "x"}]})"); }), "data.jsonl:7");
  EXPECT_CONTAINS(error_of([&] { examples(R"([1, 2])"); }), "data.jsonl:7: expected a JSON object");
  EXPECT_TRUE(train::chat_examples(v3().chat, v3().tok, ojson::parse(R"({"messages": [{"role": "user", "content": "x"}]})"), "w")
                  .empty());
}

TEST(ChatData, PackingKeepsExamplesWholeAndPaddingOutOfTheLoss) {
  auto example = [](int n, int answer_from) {
    train::ChatExample e;
    for (int i = 0; i < n; ++i) {
      e.tokens.push_back(100 + i);
      e.answer.push_back(i >= answer_from ? 1 : 0);
    }
    return e;
  };
  std::vector<int32_t> tokens;
  std::vector<uint8_t> answer;
  // 4 + 5 fit a window of 10; 6 opens the next; 12 is cut to 10; one whose only answer
  // token would be a window's first (never predicted) trains nothing and is dropped.
  const train::PackStats st = train::pack_examples({example(4, 2), example(5, 3), example(6, 1), example(12, 8), example(1, 0)},
                                                   10, 7, tokens, answer);
  EXPECT_EQ(st.windows, 3);
  EXPECT_EQ(st.examples, 4);
  EXPECT_EQ(st.cut, 1);
  ASSERT_EQ(tokens.size(), 30u);
  ASSERT_EQ(answer.size(), 30u);
  EXPECT_EQ(std::vector<int32_t>(tokens.begin(), tokens.begin() + 10),
            (std::vector<int32_t>{100, 101, 102, 103, 100, 101, 102, 103, 104, 7}));
  EXPECT_EQ(std::vector<uint8_t>(answer.begin(), answer.begin() + 10), (std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 0, 1, 1, 0}));
  EXPECT_EQ(answer[10], 0);  // a window's first token is never predicted
  EXPECT_EQ(tokens[29], 109);  // the last window: the cut example fills it
  EXPECT_EQ(st.answer_tokens, 2 + 2 + 5 + 2);
  std::vector<int32_t> t2;
  std::vector<uint8_t> a2;
  EXPECT_EQ(train::pack_examples({example(3, 0)}, 10, 7, t2, a2).examples, 1);  // answers from token 1 count
}

// A run on chat data: the loss is the answers' only (a run whose answers are all the same
// text learns them, far below the loss of the whole text), and the eval too.
TEST(ChatData, TrainingOnChatDataLearnsTheAnswers) {
  testutil::TempDir dir("chatdata");
  write_chat_tokenizer(dir);
  {
    std::ofstream f(dir / "chat.jsonl");
    const std::string text = testutil::corpus_text(5, 3000);
    for (size_t i = 0; i + 40 < text.size(); i += 37)
      f << ojson{{"messages", ojson::array({ojson{{"role", "user"}, {"content", text.substr(i, 30)}},
                                            ojson{{"role", "assistant"}, {"content", "Amen."}}})}}.dump()
        << "\n";
  }
  const nlohmann::json cfg = {{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}}},
                              {"data", {{"tokenizer", "."}, {"train_files", {"chat.jsonl"}}, {"format", "chat"},
                                        {"eval_fraction", 0.1}, {"eval_sequences", 4}}},
                              {"seq_len", 63}, {"batch_size", 4}, {"steps", 30},
                              {"optimizer", {{"lr", 0.01}}}, {"export_dtype", "none"}, {"out_dir", "out"}};
  std::ofstream(dir / "run.json") << cfg.dump(2);
  const auto r = testutil::run_dsv3("train --config " + (dir / "run.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_CONTAINS(r.out, "chat data: ");
  EXPECT_CONTAINS(r.out, "answer tokens");
  // The eval loss (answers only: "Amen." and EOS, always the same) ends far below a text loss.
  std::ifstream m(dir / "out/metrics.jsonl");
  double eval_loss = -1;
  for (std::string line; std::getline(m, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("eval_loss")) eval_loss = j["eval_loss"];
  }
  EXPECT_GE(eval_loss, 0);
  EXPECT_LT(eval_loss, 1.0);  // a text loss starts near ln(258) = 5.6
  // Refusals.
  std::ofstream(dir / "bad.json") << nlohmann::json{{"model", {{"type", "debug_moe_bigram"}}},
                                                    {"data", {{"tokenizer", "."}, {"train_files", {"chat.jsonl"}}, {"format", "chat"}}},
                                                    {"steps", 1}, {"out_dir", "bad"}}.dump();
  EXPECT_CONTAINS(testutil::run_dsv3("train --config " + (dir / "bad.json")).out, "deepseek_v3 only");
}

TEST(ChatData, ReplayWindowsAreSpreadEvenly) {
  for (double share : {0.1, 0.25, 0.5, 0.9}) {
    int64_t total = 0;
    for (int64_t g = 0; g < 1000; ++g) total += train::replay_window(g, share);
    EXPECT_NEAR(double(total), 1000 * share, 1.0) << share;
    for (int64_t start : {0, 7, 333})  // any 16 consecutive windows (a batch) hold round(16 share) +-1
      for (int64_t n = 0, c = 0; n < 16; ++n) {
        c += train::replay_window(start + n, share);
        if (n == 15) {
          EXPECT_NEAR(double(c), 16 * share, 1.0) << share << " from " << start;
        }
      }
  }
  EXPECT_FALSE(train::replay_window(5, 0.0));
}

TEST(ChatData, ReplayWindowsStartWithBosAsPromptsDo) {
  const std::vector<int32_t> stream = {5, 6, 7, 8, 9, 10};
  std::vector<int32_t> buf;
  const int32_t* w = train::replay_tokens(stream.data() + 2, 3, 1, buf);
  EXPECT_EQ(std::vector<int32_t>(w, w + 3), (std::vector<int32_t>{1, 8, 9}));
  EXPECT_EQ(stream[2], 7);  // the stream itself is untouched
  EXPECT_EQ(train::replay_tokens(stream.data() + 2, 3, -1, buf), stream.data() + 2);  // bos: false
}

TEST(ChatData, ReplayConfigIsCheckedAndWrittenBack) {
  const std::string head = R"({"model": {"type": "deepseek_v3", "preset": "tiny"}, "steps": 2, "out_dir": "o", "data": {"tokenizer": "t", "train_files": ["c.jsonl"], )";
  const train::RunConfig c = train::RunConfig::parse(
      head + R"("format": "chat", "replay": {"train_files": ["a.txt"], "eval_files": ["b.txt"], "share": 0.3}}})", "run.json", "/d");
  EXPECT_EQ(c.data.replay_files, std::vector<std::string>{"/d/a.txt"});
  EXPECT_EQ(c.data.replay_eval_files, std::vector<std::string>{"/d/b.txt"});
  EXPECT_DOUBLE_EQ(c.data.replay_share, 0.3);
  EXPECT_TRUE(c.data.replay_bos);
  EXPECT_FALSE(train::RunConfig::parse(head + R"("format": "chat", "replay": {"train_files": ["a.txt"], "share": 0.3, "bos": false}}})",
                                       "run.json", "/d")
                   .data.replay_bos);
  const train::RunConfig again = train::RunConfig::parse(c.to_json(), "again", "/elsewhere");
  EXPECT_EQ(again.data.replay_files, c.data.replay_files);
  EXPECT_DOUBLE_EQ(again.data.replay_share, 0.3);
  auto error = [&](const std::string& data) {
    return error_of([&] { train::RunConfig::parse(head + data + "}}", "run.json", "/d"); });
  };
  EXPECT_CONTAINS(error(R"("replay": {"train_files": ["a.txt"], "share": 0.3})"), "needs 'data.format' \"chat\"");
  EXPECT_CONTAINS(error(R"("format": "chat", "replay": {"train_files": ["a.txt"]})"), "'data.replay.share' is required");
  EXPECT_CONTAINS(error(R"("format": "chat", "replay": {"train_files": ["a.txt"], "share": 1})"), "data.replay.share");
  EXPECT_CONTAINS(error(R"("format": "chat", "replay": {"share": 0.5})"), "'data.replay.train_files' is required");
  EXPECT_CONTAINS(error(R"("format": "chat", "replay": {"train_files": ["a.txt"], "share": 0})"), "must be above 0");
  EXPECT_CONTAINS(error(R"("format": "chat", "replay": {"train_files": ["a.txt"], "share": 0.5, "ratio": 1})"),
                  "unknown key 'data.replay.ratio'");
}

// Replay: a share of the windows comes from text, scored at each evaluation too, and a run
// stopped and resumed draws exactly the windows (chat and text) an uninterrupted one does.
TEST(ChatData, ReplayMixesTextIntoChatTrainingAndResumesExactly) {
  testutil::TempDir dir("chatreplay");
  write_chat_tokenizer(dir);
  const std::string text = testutil::corpus_text(6, 4000);
  {
    std::ofstream f(dir / "chat.jsonl");
    for (size_t i = 0; i + 40 < 2000; i += 37)
      f << ojson{{"messages", ojson::array({ojson{{"role", "user"}, {"content", text.substr(i, 30)}},
                                            ojson{{"role", "assistant"}, {"content", "Amen."}}})}}.dump()
        << "\n";
  }
  std::ofstream(dir / "text.txt") << text.substr(0, 3000);
  std::ofstream(dir / "heldout.txt") << text.substr(3000);
  auto config = [&](const std::string& name, double share) {
    std::ofstream(dir / (name + ".json"))
        << nlohmann::json{{"model", {{"type", "deepseek_v3"}, {"preset", "tiny"}}},
                          {"data", {{"tokenizer", "."}, {"train_files", {"chat.jsonl"}}, {"format", "chat"},
                                    {"eval_fraction", 0.1}, {"eval_sequences", 4},
                                    {"replay", {{"train_files", {"text.txt"}}, {"eval_files", {"heldout.txt"}}, {"share", share}}}}},
                          {"seq_len", 63}, {"batch_size", 4}, {"steps", 12}, {"eval_interval", 4},
                          {"optimizer", {{"lr", 0.01}}}, {"export_dtype", "none"}, {"out_dir", name}}
               .dump(2);
    return "train --config " + (dir / (name + ".json"));
  };
  auto metrics = [&](const std::string& name) {
    std::vector<nlohmann::json> lines;
    std::ifstream m(dir / (name + "/metrics.jsonl"));
    for (std::string line; std::getline(m, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  };
  auto last_train_loss = [&](const std::string& name) {
    double loss = -1;
    for (const auto& j : metrics(name))
      if (j["kind"] == "train") loss = j["loss"];
    return loss;
  };
  const auto full = testutil::run_dsv3(config("full", 0.5));
  ASSERT_EQ(full.code, 0) << full.out;
  EXPECT_CONTAINS(full.out, "replay text: ");
  EXPECT_CONTAINS(full.out, "50% of the windows");
  EXPECT_CONTAINS(full.out, "replay text perplexity");
  int evals = 0;
  nlohmann::json last;
  for (const auto& j : metrics("full"))
    if (j["kind"] == "eval") {
      ++evals;
      ASSERT_TRUE(j.contains("eval_text_loss")) << j.dump();
      last = j;
    }
  EXPECT_EQ(evals, 3);
  // By the end the one answer ("Amen.") is learned, the text is not.
  EXPECT_GT(last["eval_text_loss"].get<double>(), 1.0) << last.dump();
  EXPECT_LT(last["eval_loss"].get<double>(), last["eval_text_loss"].get<double>()) << last.dump();

  // Stopped after 5 steps (mid-batch phase of the replay pattern) and resumed: the same run.
  ASSERT_EQ(testutil::run_dsv3(config("half", 0.5) + " --stop-after 5 -q").code, 0);
  const auto resumed = testutil::run_dsv3("train --resume " + (dir / "half") + " -q");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  const auto a = metrics("full"), b = metrics("half");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]) << i;
    for (const char* key : {"loss", "eval_loss", "eval_text_loss"})
      if (a[i].contains(key)) {
        EXPECT_EQ(a[i][key], b[i][key]) << key << " at line " << i;
      }
  }

  // More text in the mix: the training loss (mean over the batch's windows) rises, since the
  // answers are one phrase the model learns at once and text is not.
  ASSERT_EQ(testutil::run_dsv3(config("mostly_text", 0.75) + " -q").code, 0);
  ASSERT_EQ(testutil::run_dsv3(config("mostly_chat", 0.25) + " -q").code, 0);
  EXPECT_GT(last_train_loss("mostly_text"), last_train_loss("mostly_chat") + 0.5);

  // A resumed run whose replay text changed is refused.
  std::ofstream(dir / "text.txt", std::ios::app) << "and more text";
  ASSERT_EQ(testutil::run_dsv3(config("changed", 0.5) + " --stop-after 2 -q").code, 0);
  std::ofstream(dir / "text.txt", std::ios::app) << "and even more";
  EXPECT_CONTAINS(testutil::run_dsv3("train --resume " + (dir / "changed") + " -q").out, "the replay text changed");
}

}  // namespace
}  // namespace dsv3
