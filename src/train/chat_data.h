// Chat-format training data (data.format "chat", docs/training.md): JSONL files of
// conversations ({"messages": [...], "tools": [...]} as chat completions take them) rendered
// through the tokenizer's chat template exactly as `dsv3 serve` renders a prompt, with the
// loss on the assistants' answers only: every token an assistant turn adds after its prompt
// (tool calls and the end-of-sequence token included), nothing of the system, user or tool
// messages.
//
// Each assistant turn's prompt is what the template renders for the conversation up to that
// turn with the generation prompt, so training sees what inference sees. When the template
// renders history as a continuation of earlier prompts (DeepSeek V3's does), a conversation is
// one example with all its answers; a template that rewrites earlier turns gives one example
// per assistant turn instead. A template whose rendering of an answer does not continue its
// own generation prompt (R1's strips the thoughts even from the last answer, and its prompt
// opens a <think> block) cannot be trained on this way and is refused with an error.
//
// Packing: examples are laid into windows of seq_len+1 tokens in file order, as many whole
// examples per window as fit, the rest padded (padding never counts). Examples in one window
// can attend to earlier ones (no attention mask between them): each starts with its own BOS
// and template markers, and positions run on, which RoPE's relative form makes harmless; a
// longer example is cut to one window (counted in the load summary).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/prompt.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace dsv3::train {

struct ChatExample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> answer;  //!< per token: 1 when an assistant turn wrote it
};

//! The examples of one conversation (a parsed JSONL line); `where` names it in errors
//! ("file:line"). A conversation without an assistant message gives none.
std::vector<ChatExample> chat_examples(const api::ChatPromptBuilder& chat, const Tokenizer& tok,
                                       const nlohmann::ordered_json& conversation, const std::string& where);

struct PackStats {
  int64_t examples = 0, windows = 0, cut = 0;
  int64_t answer_tokens = 0, padding = 0;
};

//! Appends the examples packed into windows of `window` tokens to tokens / answer (whole
//! windows, padded with `pad`).
PackStats pack_examples(const std::vector<ChatExample>& examples, int64_t window, int32_t pad,
                        std::vector<int32_t>& tokens, std::vector<uint8_t>& answer);

//! Reads data.train_files (and data.eval_files, or holds out the last eval_fraction of the
//! conversations) as chat data packed into windows of `window` tokens: TokenData with
//! `packed` set and the answer flags filled. Prints nothing; `summary` gets one line.
TokenData load_chat_data(const DataChoice& d, int64_t window, std::string* summary = nullptr);

}  // namespace dsv3::train
