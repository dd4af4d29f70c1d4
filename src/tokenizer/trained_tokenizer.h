// The files `dsv3 train-tokenizer` writes: a tokenizer.json and tokenizer_config.json in the
// form of DeepSeek-V3's, around a trained BpeModel, loadable by Tokenizer::load and by Hugging
// Face tokenizers / transformers alike.
//
// Id layout (as DeepSeek-V3's): 0 bos, 1 eos, 2 pad (kLeadingTokens); then the 256 byte symbols
// and the merges' symbols in BpeModel order; then kTrailingTokens (chat, reasoning and tool-call
// tokens). bos and eos ids are therefore 0 and 1 whatever the vocabulary size.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/bpe_trainer.h"

namespace dsv3::tok {

//! Ids taken by added tokens in a trained vocabulary.
inline constexpr int32_t kTrainedAddedTokens = 16;
//! Smallest vocabulary a trained tokenizer can have: the added tokens and the 256 bytes.
inline constexpr int32_t kTrainedMinVocab = 256 + kTrainedAddedTokens;

//! Vocabulary size (highest id + 1) of a trained tokenizer with `merges` merges.
inline int32_t trained_vocab_size(size_t merges) { return kTrainedMinVocab + int32_t(merges); }

//! tokenizer.json for model: V3's normalizer, pre-tokenizer, post-processor and decoder, the BPE
//! vocab (leading tokens and symbols in their byte-level spelling) and merges ("left right",
//! rank order), and every added token. Deterministic: same model, same bytes.
std::string trained_tokenizer_json(const BpeModel& model);

//! tokenizer_config.json: bos / eos / pad tokens, add_bos_token, model_max_length,
//! tokenizer_class and trained_chat_template().
std::string trained_tokenizer_config_json(int64_t model_max_length);

//! Our Jinja chat template in DeepSeek-V3's conversation format: bos, then the system prompts
//! (joined by a blank line), then per message <｜User｜>content, <｜Assistant｜>content<｜end▁of▁sentence｜>,
//! tool calls and tool outputs in V3's tokens; add_generation_prompt appends <｜Assistant｜>.
//! Plain conversations render exactly as V3's own template; where V3's template loses or garbles
//! tool-call structure this one stays regular (see the comment at its definition).
const std::string& trained_chat_template();

}  // namespace dsv3::tok
