#include "tokenizer/trained_tokenizer.h"

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/deepseek_v3_layout.h"

namespace dsv3::tok {
namespace {

using ojson = nlohmann::ordered_json;

static_assert(kTrainedAddedTokens == int32_t(kLeadingTokens.size() + kTrailingTokens.size()));

ojson added_token_json(const TokenSpec& spec, int32_t id) {
  const AddedToken t = to_added_token(spec, id);
  return {{"id", t.id},           {"content", t.content},       {"single_word", t.single_word}, {"lstrip", t.lstrip},
          {"rstrip", t.rstrip}, {"normalized", t.normalized}, {"special", t.special}};
}

// A ByteLevel step as V3's file writes it for the post-processor and decoder (where only the
// offsets behaviour of add_prefix_space / trim_offsets matters, never the text).
ojson byte_level_json(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", trim_offsets},
          {"use_regex", use_regex}};
}

}  // namespace

std::string trained_tokenizer_json(const BpeModel& model) {
  const int32_t first_symbol = int32_t(kLeadingTokens.size());
  const int32_t first_trailing = first_symbol + int32_t(model.symbols.size());
  DSV3_CHECK(model.symbols.size() == 256 + model.merges.size());

  ojson added = ojson::array();
  for (size_t i = 0; i < kLeadingTokens.size(); ++i) added.push_back(added_token_json(kLeadingTokens[i], int32_t(i)));
  for (size_t i = 0; i < kTrailingTokens.size(); ++i)
    added.push_back(added_token_json(kTrailingTokens[i], first_trailing + int32_t(i)));

  ojson splits = ojson::array();
  for (std::string_view pattern : kDeepSeekV3SplitPatterns)
    splits.push_back({{"type", "Split"},
                      {"pattern", {{"Regex", std::string(pattern)}}},
                      {"behavior", "Isolated"},
                      {"invert", false}});
  splits.push_back(byte_level_json(false, true, false));

  // V3 lists bos / eos / pad in the model vocab as well as among the added tokens; so do we.
  ojson vocab = ojson::object();
  for (size_t i = 0; i < kLeadingTokens.size(); ++i) vocab[std::string(kLeadingTokens[i].content)] = int32_t(i);
  std::vector<std::string> spelled;
  spelled.reserve(model.symbols.size());
  for (size_t i = 0; i < model.symbols.size(); ++i) {
    spelled.push_back(byte_level_encode(model.symbols[i]));
    vocab[spelled.back()] = first_symbol + int32_t(i);
  }
  DSV3_CHECK(vocab.size() == kLeadingTokens.size() + model.symbols.size(), "two symbols with the same bytes");
  ojson merges = ojson::array();
  for (const BpeModel::Merge& m : model.merges)
    merges.push_back(spelled[size_t(m.left)] + " " + spelled[size_t(m.right)]);

  const ojson j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", ojson::array()}}},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", splits}}},
      {"post_processor", byte_level_json(true, false, true)},
      {"decoder", byte_level_json(true, true, true)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  return j.dump(2) + "\n";
}

std::string trained_tokenizer_config_json(int64_t model_max_length) {
  const ojson j = {
      {"add_bos_token", true},
      {"add_eos_token", false},
      {"bos_token", std::string(kLeadingTokens[kBosId].content)},
      {"eos_token", std::string(kLeadingTokens[kEosId].content)},
      {"pad_token", std::string(kLeadingTokens[kPadId].content)},
      {"unk_token", nullptr},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", model_max_length},
      // What makes transformers honour add_bos_token (the file's post-processor adds nothing).
      {"tokenizer_class", "LlamaTokenizerFast"},
      {"chat_template", trained_chat_template()},
  };
  return j.dump(2) + "\n";
}

// Written for dsv3 from the DeepSeek-V3 conversation format. Where V3's own template differs:
// - an assistant message with tool_calls always opens with <｜Assistant｜><｜tool▁calls▁begin｜> and
//   closes with <｜tool▁calls▁end｜><｜end▁of▁sentence｜> (V3's emits the closing tokens only after
//   the second call of a message, never opens a second tool-calling message, and drops content
//   sent together with tool_calls; here content comes first, then the calls);
// - a run of tool messages always opens with <｜tool▁outputs▁begin｜> and closes with
//   <｜tool▁outputs▁end｜> before whatever follows (V3's opens only the first run of a
//   conversation and leaves it unclosed before a user message);
// - arguments given as an object are printed with tojson (V3's needs a string);
// - an assistant message with null content and no tool calls renders as an empty answer.
// As in V3, an assistant message right after tool outputs has no <｜Assistant｜> of its own, and
// no generation prompt follows tool outputs (the model answers straight after them).
const std::string& trained_chat_template() {
  static const std::string t = R"TEMPLATE({%- set ns = namespace(system_prompt='', has_system=false, in_outputs=false) -%}
{%- for message in messages -%}
  {%- if message['role'] == 'system' -%}
    {%- if ns.has_system -%}
      {%- set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] -%}
    {%- else -%}
      {%- set ns.system_prompt = message['content'] -%}
      {%- set ns.has_system = true -%}
    {%- endif -%}
  {%- endif -%}
{%- endfor -%}
{{- bos_token -}}{{- ns.system_prompt -}}
{%- for message in messages -%}
  {%- if message['role'] == 'tool' -%}
    {%- if not ns.in_outputs -%}
      {{- '<｜tool▁outputs▁begin｜>' -}}
    {%- else -%}
      {{- '\n' -}}
    {%- endif -%}
    {{- '<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>' -}}
    {%- set ns.in_outputs = true -%}
  {%- elif message['role'] == 'user' or message['role'] == 'assistant' -%}
    {%- set after_outputs = ns.in_outputs -%}
    {%- if ns.in_outputs -%}
      {{- '<｜tool▁outputs▁end｜>' -}}
      {%- set ns.in_outputs = false -%}
    {%- endif -%}
    {%- if message['role'] == 'user' -%}
      {{- '<｜User｜>' + message['content'] -}}
    {%- else -%}
      {%- if not after_outputs -%}
        {{- '<｜Assistant｜>' -}}
      {%- endif -%}
      {%- if message['content'] is not none -%}
        {{- message['content'] -}}
      {%- endif -%}
      {%- if message['tool_calls'] -%}
        {{- '<｜tool▁calls▁begin｜>' -}}
        {%- for call in message['tool_calls'] -%}
          {%- if not loop.first -%}
            {{- '\n' -}}
          {%- endif -%}
          {%- set arguments = call['function']['arguments'] -%}
          {%- if arguments is not string -%}
            {%- set arguments = arguments | tojson -%}
          {%- endif -%}
          {{- '<｜tool▁call▁begin｜>' + call['type'] + '<｜tool▁sep｜>' + call['function']['name'] -}}
          {{- '\n```json\n' + arguments + '\n```<｜tool▁call▁end｜>' -}}
        {%- endfor -%}
        {{- '<｜tool▁calls▁end｜>' -}}
      {%- endif -%}
      {{- '<｜end▁of▁sentence｜>' -}}
    {%- endif -%}
  {%- endif -%}
{%- endfor -%}
{%- if ns.in_outputs -%}
  {{- '<｜tool▁outputs▁end｜>' -}}
{%- elif add_generation_prompt -%}
  {{- '<｜Assistant｜>' -}}
{%- endif -%})TEMPLATE";
  return t;
}

}  // namespace dsv3::tok
