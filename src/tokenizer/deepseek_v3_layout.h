// What makes a byte-level BPE tokenizer a DeepSeek-V3-style one, as facts taken from the published
// DeepSeek-V3 tokenizer.json: its pre-tokenizer (three regex Splits, then ByteLevel without a regex)
// and the strings of its special and chat tokens. The tokenizer trainer splits its corpus with
// exactly this pre-tokenizer and writes these tokens, so a trained tokenizer encodes like V3 does.
#pragma once

#include <array>
#include <string_view>

#include "tokenizer/added_tokens.h"
#include "tokenizer/pretokenizer.h"

namespace dsv3::tok {

//! DeepSeek-V3's pre-tokenizer Split patterns, in order, each with behavior Isolated (digits in
//! runs of at most three; CJK ideograph / kana runs; then words, punctuation and whitespace). The
//! string literals use the same escapes as the JSON file, so \r and \n are the characters.
inline constexpr std::array<std::string_view, 3> kDeepSeekV3SplitPatterns = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
};

//! The pre-tokenizer built from kDeepSeekV3SplitPatterns (what Tokenizer::load builds from a
//! tokenizer.json that lists them).
PreTokenizer deepseek_v3_pretokenizer();

struct TokenSpec {
  std::string_view content;
  bool special;  //!< special: skipped by decode(skip_special) and matched before normalization
};

//! bos, eos and pad, which trained tokenizers put at ids 0, 1, 2 as DeepSeek-V3 does.
inline constexpr std::array<TokenSpec, 3> kLeadingTokens = {{
    {"<｜begin▁of▁sentence｜>", true},
    {"<｜end▁of▁sentence｜>", true},
    {"<｜▁pad▁｜>", true},
}};
inline constexpr int32_t kBosId = 0, kEosId = 1, kPadId = 2;

//! The chat, reasoning and tool-call tokens, which trained tokenizers put after the merges (V3
//! has them after its merges too). Not special in V3 (R1 for <think> / </think>): decode with
//! skip_special keeps them, as the chat format needs.
inline constexpr std::array<TokenSpec, 13> kTrailingTokens = {{
    {"<｜User｜>", false},
    {"<｜Assistant｜>", false},
    {"<think>", false},
    {"</think>", false},
    {"<｜tool▁calls▁begin｜>", false},
    {"<｜tool▁calls▁end｜>", false},
    {"<｜tool▁call▁begin｜>", false},
    {"<｜tool▁call▁end｜>", false},
    {"<｜tool▁outputs▁begin｜>", false},
    {"<｜tool▁outputs▁end｜>", false},
    {"<｜tool▁output▁begin｜>", false},
    {"<｜tool▁output▁end｜>", false},
    {"<｜tool▁sep｜>", false},
}};

//! A TokenSpec as the AddedToken V3's tokenizer.json declares: special tokens are matched in the
//! raw text (normalized = false), the others after normalization; no stripping.
AddedToken to_added_token(const TokenSpec& spec, int32_t id);

}  // namespace dsv3::tok
