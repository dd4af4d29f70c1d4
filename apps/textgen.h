// What `generate` and `chat` share: loading a model with its tokenizer and chat template
// (with a progress bar), the sampling flags, and rendering a conversation to token ids.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "dist/expert_parallel.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::app {

struct TextModel {
  std::unique_ptr<model::Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
};

//! How the weights are held: --hugepages (read into anonymous huge pages) or mapped, with
//! --recache to bring a mapped checkpoint into 2 MB page-cache folios first.
struct WeightFlags {
  bool hugepages = false, recache = false;
  io::WeightMemory memory() const { return hugepages ? io::WeightMemory::HugePages : io::WeightMemory::Map; }
};
void add_weight_flags(CLI::App* cmd, WeightFlags& flags);

//! Touches every page of the weights the forward pass reads (with a progress bar on a
//! terminal when `progress`; not the MTP layer when it was not loaded, nor tied copies); for
//! mapped weights reports how much is mapped in 2 MB pages, and with flags.recache first reads
//! the rest again into 2 MB folios. Returns the share of the weights in 2 MB pages.
double settle_weights(const model::ModelWeights& w, const WeightFlags& flags, bool progress);

//! Loads DIR's weights, tokenizer and chat template; touches every weight page once with a
//! progress bar on a terminal so the first answer is not slowed by page faults.
//! need_template: fail clearly when the tokenizer_config has no chat_template.
//! load_mtp: also bind the MTP module (speculative decoding drafts with it).
TextModel load_text_model(const std::string& dir, bool need_template, const dist::EpOptions& ep, const WeightFlags& weights = {},
                          bool load_mtp = false);



//! Registers the sampling flags (temperature, top-k, ...) and max tokens / stop / seed.
void add_generation_flags(CLI::App* cmd, runtime::GenerateOptions& opts);

//! Renders messages through the model's chat template and tokenizes the text (special
//! tokens in the rendered text are real special tokens).
std::vector<int32_t> chat_prompt(const TextModel& tm, const nlohmann::json& messages);

//! "prompt 34 tok (12 cached) 350.1 tok/s | output 57 tok 9.8 tok/s | stop", and with drafts
//! "| drafts accepted 71% 48% (pos 1..2) over 80 verify steps, 2.19 tok/step"
std::string stats_line(const runtime::GenerateResult& r);

}  // namespace dsv3::app
