// Unit tests of the tokenizer's stages: UTF-8 repair, the PCRE2 rewrite, the two BPE merge
// loops against each other, the streaming detokenizer, split-special mode, metadata, and a small
// synthetic tokenizer (tests/data/tokenizer_synthetic.json) whose variants exercise added-token
// flags and Split behaviours the V3 file does not use, with Hugging Face's ids as goldens.
#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace dsv3 {
namespace {

using json = nlohmann::json;
const std::string kFFFD = "\xEF\xBF\xBD";

TEST(TokenizerUtf8, LossyFollowsMaximalSubparts) {
  EXPECT_EQ(utf8::lossy("abc"), "abc");
  EXPECT_EQ(utf8::lossy("\xFF"), kFFFD);
  EXPECT_EQ(utf8::lossy("\xE4\xBD"), kFFFD);                   // one truncated sequence: one U+FFFD
  EXPECT_EQ(utf8::lossy("\xE4\xBD" "A"), kFFFD + "A");         // broken by ASCII
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);  // surrogate: ED then 2 strays
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98"), kFFFD);
  EXPECT_EQ(utf8::lossy("\xC0\xAF"), kFFFD + kFFFD);  // overlong lead is never valid
  EXPECT_EQ(utf8::lossy("\xF4\x90\x80\x80"), kFFFD + kFFFD + kFFFD + kFFFD);
  EXPECT_FALSE(utf8::valid("\xC3"));
  EXPECT_TRUE(utf8::valid("\xC3\xA9\xF0\x9F\x98\x80 plain ascii text longer than eight bytes"));
}

TEST(TokenizerUtf8, AppendLossyHoldsAnIncompleteTail) {
  std::string out;
  EXPECT_EQ(utf8::append_lossy(out, "ab\xE4\xBD", false), 2u);  // keeps the 2-byte prefix of 你
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(utf8::append_lossy(out, "ab\xFF", false), 3u);  // can never complete: repaired now
  EXPECT_EQ(out, "ab" + kFFFD);
}

TEST(TokenizerRegex, RewritesWhitespaceAndCategories) {
  const std::string ws = tok::rewrite_for_pcre2("\\s+");
  EXPECT_EQ(ws.front(), '[');
  EXPECT_EQ(ws.find("180E"), std::string::npos) << "U+180E is not White_Space";
  EXPECT_NE(ws.find("\\x{85}"), std::string::npos);
  EXPECT_EQ(tok::rewrite_for_pcre2("[^\\s]").substr(0, 4), "[^\\t");
  EXPECT_NE(tok::rewrite_for_pcre2("\\p{L}").find("\\x{31350}"), std::string::npos);  // CJK Ext. H
  EXPECT_EQ(tok::rewrite_for_pcre2("\\p{Han}"), "\\p{Han}");
  EXPECT_EQ(tok::rewrite_for_pcre2("[\\]\\s]").substr(0, 5), "[\\]\\t");  // escaped ] stays in class
  EXPECT_CONTAINS(testutil::error_of([] { tok::rewrite_for_pcre2("[\\S]"); }), "inside a character class");
  EXPECT_CONTAINS(testutil::error_of([] { tok::Regex("(unclosed"); }), "does not compile");

  const tok::Regex re("\\s+(?!\\S)|\\s+");
  std::vector<std::pair<size_t, size_t>> m;
  re.for_each_match("a \xE1\xA0\x8E b\xC2\x85", [&](size_t s, size_t e) { m.push_back({s, e}); });
  // U+180E (3 bytes) is not a space, U+0085 (2 bytes) is.
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{1, 2}, {5, 6}, {7, 9}}));
}

TEST(TokenizerRegex, EmptyMatchesFollowOnigFindIter) {
  const tok::Regex re("x*");
  std::vector<std::pair<size_t, size_t>> m;
  re.for_each_match("axxb", [&](size_t s, size_t e) { m.push_back({s, e}); });
  // onig crate: (0,0), (1,3); the empty match at 3 right after a match is skipped; (4,4).
  EXPECT_EQ(m, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
}

// The three merge loops must agree on every word: the array scan serves short words, the radix
// heap long ones (the binary heap is the fallback for merge lists without monotone ranks).
TEST(TokenizerBpe, MergeLoopsAgree) {
  const Tokenizer& t = testutil::deepseek_v3();
  const tok::Bpe& bpe = *t.impl().bpe;
  ASSERT_TRUE(bpe.is_monotone()) << "V3's merges should let the radix heap serve long words";
  std::mt19937 rng(7);
  const json corpus = testutil::read_json_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_corpus.json");
  std::vector<std::string> words;
  for (const json& s : corpus)
    for (std::string_view p : t.pre_tokenize(s.get_ref<const std::string&>())) words.emplace_back(p);
  for (int k = 0; k < 300; ++k) {  // random bytes, including invalid UTF-8
    std::string w(1 + rng() % 300, ' ');
    for (char& c : w) c = char(rng() % 4 == 0 ? rng() % 256 : "abcdethinsg "[rng() % 12]);
    words.push_back(w);
  }
  for (const std::string& w : words) {
    std::vector<int32_t> scan, heap, radix;
    bpe.merge_word(w, scan, tok::Bpe::MergeLoop::kScan);
    bpe.merge_word(w, heap, tok::Bpe::MergeLoop::kHeap);
    bpe.merge_word(w, radix, tok::Bpe::MergeLoop::kRadix);
    ASSERT_EQ(scan, heap) << "word of " << w.size() << " bytes: " << utf8::lossy(w.substr(0, 80));
    ASSERT_EQ(scan, radix) << "word of " << w.size() << " bytes: " << utf8::lossy(w.substr(0, 80));
    std::string bytes;
    for (int32_t id : scan) bytes += t.token_bytes(id);
    ASSERT_EQ(bytes, w) << "BPE must not lose or add bytes";
  }
}

TEST(TokenizerStream, CjkAndEmojiNeverBreakUtf8) {
  const Tokenizer& t = testutil::deepseek_v3();
  const std::string text = "你好世界，こんにちは 👨‍👩‍👧‍👦🇯🇵👍🏽 안녕 é̃ 𓑠𱍐";
  const std::vector<int32_t> ids = t.encode(text);
  StreamDecoder sd(t);
  std::string all;
  int held = 0;
  for (int32_t id : ids) {
    const std::string piece = sd.push(id);
    ASSERT_TRUE(utf8::valid(piece)) << "push(" << id << ") emitted broken UTF-8";
    held += piece.empty();
    all += piece;
  }
  all += sd.flush();
  EXPECT_EQ(all, text);
  EXPECT_EQ(all, t.decode(ids));
  EXPECT_GT(held, 0) << "some tokens hold a partial character; the test should exercise that";
}

TEST(TokenizerStream, DanglingAndInvalidBytes) {
  const Tokenizer& t = testutil::deepseek_v3();
  auto byte_token = [&](uint8_t b) { return *t.token_id(tok::byte_level_encode(std::string(1, char(b)))); };
  StreamDecoder sd(t);
  EXPECT_EQ(sd.push(byte_token(0xE4)), "");
  EXPECT_EQ(sd.push(byte_token(0xBD)), "");
  EXPECT_EQ(sd.flush(), kFFFD);  // the dangling prefix of 你 becomes one U+FFFD at the end
  EXPECT_EQ(sd.flush(), "");
  EXPECT_EQ(sd.push(byte_token(0xFF)), kFFFD);  // can never become valid: repaired at once
  EXPECT_EQ(sd.push(byte_token(0xE4)), "");
  EXPECT_EQ(sd.push(byte_token('A')), kFFFD + "A");
  StreamDecoder skip(t, /*skip_special=*/true);
  EXPECT_EQ(skip.push(t.bos_id()), "");
  EXPECT_EQ(skip.push(*t.token_id("<｜User｜>")), "<｜User｜>");  // not special in V3
}

TEST(TokenizerV3, Metadata) {
  const Tokenizer& t = testutil::deepseek_v3();
  EXPECT_EQ(t.vocab_size(), 128815);
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(t.eos_token(), "<｜end▁of▁sentence｜>");
  EXPECT_TRUE(t.add_bos_by_default());
  EXPECT_CONTAINS(t.chat_template(), "add_generation_prompt");
  EXPECT_EQ(t.token_id("<｜User｜>"), 128803);
  EXPECT_EQ(t.token_id("<｜Assistant｜>"), 128804);
  EXPECT_EQ(t.token_id("Ġthe"), 270);  // vocab entries by their byte-level spelling
  EXPECT_EQ(t.token_id("no such token"), std::nullopt);
  EXPECT_EQ(t.token_bytes(270), " the");
  EXPECT_EQ(t.token_bytes(128803), "<｜User｜>");
  EXPECT_TRUE(t.is_special(0));
  EXPECT_TRUE(t.is_special(128000));
  EXPECT_FALSE(t.is_special(128803));  // the chat role tokens are added but not special
  EXPECT_FALSE(t.is_special(270));
  EXPECT_FALSE(t.is_special(-5));
}

TEST(TokenizerV3, SplitSpecialMode) {
  const Tokenizer& t = testutil::deepseek_v3();
  const std::string text = "<｜begin▁of▁sentence｜><｜User｜>hi<｜end▁of▁sentence｜>";
  const auto normal = t.encode(text);
  ASSERT_EQ(normal.size(), 4u);
  EXPECT_EQ(normal.front(), 0);
  EXPECT_EQ(normal.back(), 1);
  const auto split = t.encode(text, false, /*split_special=*/true);
  EXPECT_EQ(std::count(split.begin(), split.end(), 0), 0);  // special: tokenized as text
  EXPECT_EQ(std::count(split.begin(), split.end(), 1), 0);
  EXPECT_EQ(std::count(split.begin(), split.end(), 128803), 1);  // non-special: still matched
  EXPECT_EQ(t.decode(split), text);
  EXPECT_EQ(t.encode("", true), std::vector<int32_t>{0});
}

// encode is const and thread-safe (per-thread scratch, a locked word cache): threads encoding
// the corpus at once get exactly the single-threaded ids.
TEST(TokenizerV3, ConcurrentEncodeMatches) {
  const Tokenizer& t = testutil::deepseek_v3();
  const json corpus = testutil::read_json_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_corpus.json");
  std::vector<std::vector<int32_t>> want;
  for (const json& s : corpus) want.push_back(t.encode(s.get<std::string>()));
  const Tokenizer copy = t;  // copies share the loaded state
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 3; ++rep)
        for (size_t i = 0; i < corpus.size(); ++i)
          bad[size_t(k)] += (k % 2 ? copy : t).encode(corpus[(i + size_t(k) * 37) % corpus.size()].get<std::string>()) !=
                            want[(i + size_t(k) * 37) % corpus.size()];
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; ++k) EXPECT_EQ(bad[size_t(k)], 0) << "thread " << k;
}

// Each synthetic variant: base tokenizer + variant's pre_tokenizer / added tokens /
// post_processor, written to a file, loaded, and checked against HF's ids and decodes.
TEST(TokenizerSynthetic, VariantsMatchHuggingFace) {
  const json syn = testutil::read_json_file(std::string(DSV3_SOURCE_DIR) + "/tests/data/tokenizer_synthetic.json");
  testutil::TempDir dir("tok_syn");
  for (const json& v : syn["variants"]) {
    json tj = syn["base"];
    tj["added_tokens"] = v["added_tokens"];
    tj["pre_tokenizer"] = v["pre_tokenizer"];
    tj["post_processor"] = v["post_processor"];
    const std::string path = dir / (v["name"].get<std::string>() + ".json");
    testutil::write_file(path, tj.dump());
    const Tokenizer t = Tokenizer::load(path);
    const bool template_bos = !v["post_processor"].is_null();
    EXPECT_EQ(t.add_bos_by_default(), template_bos) << v["name"];
    for (const json& c : v["cases"]) {
      const std::string& text = c["text"].get_ref<const std::string&>();
      const std::string what = v["name"].get<std::string>() + ": \"" + text + "\"";
      EXPECT_EQ(t.encode(text), c["ids"].get<std::vector<int32_t>>()) << what;
      EXPECT_EQ(t.encode(text, template_bos), c["ids_add_special"].get<std::vector<int32_t>>()) << what;
      EXPECT_EQ(t.decode(c["ids"].get<std::vector<int32_t>>()), c["decoded"].get<std::string>()) << what;
      EXPECT_EQ(t.decode(c["ids"].get<std::vector<int32_t>>(), true), c["decoded_skip_special"].get<std::string>())
          << what;
    }
  }
}

}  // namespace
}  // namespace dsv3
