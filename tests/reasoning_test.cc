// <think> splitting: the on/off and start rules, then each case cut at every boundary (two
// and three pieces, and byte by byte) must give the same reasoning and content, with only
// the documented text held back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/reasoning.h"

namespace dsv3::api {
namespace {

struct Split {
  std::string reasoning, content;
};

Split feed(bool enabled, bool start_in, const std::string& text, const std::vector<size_t>& cuts) {
  ReasoningSplitter s(enabled, start_in);
  Split out;
  size_t from = 0;
  auto add = [&](const ReasoningDelta& d) {
    out.reasoning += d.reasoning;
    out.content += d.content;
  };
  for (size_t cut : cuts) {
    add(s.push(std::string_view(text).substr(from, cut - from)));
    from = cut;
  }
  add(s.push(std::string_view(text).substr(from)));
  add(s.finish());
  EXPECT_EQ(s.reasoning(), out.reasoning);
  EXPECT_EQ(s.content(), out.content);
  return out;
}

struct Case {
  bool enabled, start_in;
  std::string text, reasoning, content;
};

void check_case(const Case& c) {
  SCOPED_TRACE("text: " + c.text);
  const Split whole = feed(c.enabled, c.start_in, c.text, {});
  EXPECT_EQ(whole.reasoning, c.reasoning);
  EXPECT_EQ(whole.content, c.content);
  for (size_t i = 0; i <= c.text.size(); ++i) {
    const Split two = feed(c.enabled, c.start_in, c.text, {i});
    ASSERT_EQ(two.reasoning, c.reasoning) << "cut at " << i;
    ASSERT_EQ(two.content, c.content) << "cut at " << i;
    for (size_t j = i; j <= c.text.size(); ++j) {
      const Split three = feed(c.enabled, c.start_in, c.text, {i, j});
      ASSERT_EQ(three.reasoning, c.reasoning) << "cuts at " << i << ", " << j;
      ASSERT_EQ(three.content, c.content) << "cuts at " << i << ", " << j;
    }
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < c.text.size(); ++i) every.push_back(i);
  const Split bytes = feed(c.enabled, c.start_in, c.text, every);
  EXPECT_EQ(bytes.reasoning, c.reasoning);
  EXPECT_EQ(bytes.content, c.content);
}

TEST(Reasoning, Rules) {
  EXPECT_TRUE(template_reasons("{% if '</think>' in content %}"));
  EXPECT_FALSE(template_reasons("{{ '<｜Assistant｜>' }}"));
  EXPECT_TRUE(prompt_opens_reasoning("<｜Assistant｜><think>"));
  EXPECT_TRUE(prompt_opens_reasoning("<｜Assistant｜><think>\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<｜Assistant｜><think>\n\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<｜Assistant｜><think></think>"));
  EXPECT_FALSE(prompt_opens_reasoning("<｜Assistant｜>"));

  // Off for a template that never thinks, unless the prompt itself opened a block.
  EXPECT_FALSE(ReasoningSplitter::for_prompt("plain", "<｜Assistant｜>").enabled());
  const ReasoningSplitter opened = ReasoningSplitter::for_prompt("plain", "<｜Assistant｜><think>\n");
  EXPECT_TRUE(opened.enabled());
  EXPECT_TRUE(opened.in_reasoning());
  const ReasoningSplitter closed = ReasoningSplitter::for_prompt("x</think>y", "<｜Assistant｜><think></think>");
  EXPECT_TRUE(closed.enabled());
  EXPECT_FALSE(closed.in_reasoning());
}

TEST(Reasoning, StartsInsideWhenThePromptOpened) {
  check_case({true, true, "\nLet me think.\nStill thinking.\n</think>\n\nThe answer is 4.", "Let me think.\nStill thinking.",
              "The answer is 4."});
  check_case({true, true, "a < b, c </ d </think>x</think>", "a < b, c </ d", "x</think>"});
  check_case({true, true, "Ünïcødé 思考</think>答え", "Ünïcødé 思考", "答え"});
}

TEST(Reasoning, OutputThatOpensItsOwnBlock) {
  check_case({true, false, "<think>\nhmm\n</think>\n\nHi!", "hmm", "Hi!"});
  check_case({true, false, "\n <think>hmm</think>Hi!", "hmm", "Hi!"});
  // Not at the start: ordinary text.
  check_case({true, false, "Hi <think>no</think>", "", "Hi <think>no</think>"});
  check_case({true, false, "<thinking>", "", "<thinking>"});
  check_case({true, false, "<thi", "", "<thi"});
  check_case({true, false, "  ", "", "  "});
}

TEST(Reasoning, OffLeavesEverythingAsContent) {
  check_case({false, false, "<think>hmm</think>\nHi", "", "<think>hmm</think>\nHi"});
  check_case({false, true, "hmm</think>Hi", "", "hmm</think>Hi"});
}

TEST(Reasoning, EndingInsideTheBlock) {
  check_case({true, true, "still going", "still going", ""});
  check_case({true, true, "cut at </thi", "cut at </thi", ""});
  check_case({true, true, "trailing space \n", "trailing space \n", ""});
  check_case({true, false, "<think>", "", ""});
}

TEST(Reasoning, HoldsBackOnlyWhatMightClose) {
  ReasoningSplitter s(true, true);
  EXPECT_EQ(s.push("abc</th").reasoning, "abc");
  ReasoningDelta d = s.push("ought");
  EXPECT_EQ(d.reasoning, "</thought");
  d = s.push(" more\n");
  EXPECT_EQ(d.reasoning, " more");  // the newline might end the reasoning
  d = s.push("x");
  EXPECT_EQ(d.reasoning, "\nx");
  d = s.push("</think>\n\nAn");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "An");
  EXPECT_FALSE(s.in_reasoning());
  d = s.push("swer <think> ");
  EXPECT_EQ(d.content, "swer <think> ");  // content is never held
  EXPECT_TRUE(s.finish().empty());
  EXPECT_EQ(s.reasoning(), "abc</thought more\nx");
  EXPECT_EQ(s.content(), "Answer <think> ");
}

}  // namespace
}  // namespace dsv3::api
