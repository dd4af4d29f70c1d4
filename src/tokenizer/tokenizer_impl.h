// Internal: the immutable state behind dsv3::Tokenizer, filled by the loader
// (tokenizer_load.cc) and read by encode/decode (tokenizer.cc).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace dsv3 {

struct Tokenizer::Impl {
  enum Kind : uint8_t { kMissing, kVocab, kAdded, kAddedSpecial };

  // Per id, indexed 0 .. vocab_size-1 (ids missing from both vocab and added tokens: kMissing).
  std::vector<std::string> text;   // spelling in tokenizer.json (added content wins over vocab)
  std::vector<std::string> bytes;  // raw bytes the ByteLevel decoder produces for the token
  std::vector<uint8_t> kind;

  std::unordered_map<std::string, int32_t> vocab;  // model vocab spelling -> id
  std::unordered_map<std::string, int32_t> added;  // added token content -> id

  std::unique_ptr<tok::AddedTokenSplitter> splitter;
  tok::PreTokenizer pretok;
  std::unique_ptr<tok::Bpe> bpe;

  int32_t bos_id = -1, eos_id = -1;
  std::string bos_token, eos_token, chat_template;
  bool add_bos = false;
};

}  // namespace dsv3
