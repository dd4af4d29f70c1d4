#include "train/checkpoint_export.h"

#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "model/hf_writer.h"
#include "model/tensor_table.h"

namespace dsv3::train {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

uint64_t export_hf_checkpoint(const std::string& dir, const model::ModelConfig& config,
                              const std::map<std::string, ExportTensor>& tensors, const ExportOptions& opts) {
  namespace fs = std::filesystem;
  const std::vector<model::TensorSpec> specs = model::tensor_table(config);
  std::map<std::string, const model::TensorSpec*> wanted;
  for (const model::TensorSpec& s : specs) {
    if (s.tied()) continue;
    wanted[s.name] = &s;
    const auto it = tensors.find(s.name);
    if (it == tensors.end()) fail("export: the model has no tensor '", s.name, "' (shape ", shape_str(s.shape), ")");
    if (it->second.shape != s.shape)
      fail("export: tensor '", s.name, "' has shape ", shape_str(it->second.shape), ", config.json implies ",
           shape_str(s.shape));
  }
  for (const auto& [name, t] : tensors)
    if (!wanted.count(name)) fail("export: tensor '", name, "' has no place in the checkpoint layout of this config");

  auto values = [&tensors](const model::TensorSpec& s, std::vector<float>& out) {
    const ExportTensor& t = tensors.at(s.source);  // tied MTP copies read the main tensor
    out.assign(t.data, t.data + s.numel());
  };
  const uint64_t bytes = model::write_hf_checkpoint(dir, config, specs, values, model::HfWriteOptions{opts.dtype, opts.shards, false});
  if (!opts.tokenizer.empty()) {
    const fs::path src = fs::is_directory(opts.tokenizer) ? fs::path(opts.tokenizer) : fs::path(opts.tokenizer).parent_path();
    const fs::path tok_json = fs::is_directory(opts.tokenizer) ? src / "tokenizer.json" : fs::path(opts.tokenizer);
    if (!fs::exists(tok_json)) fail("export: no tokenizer at '", tok_json.string(), "'");
    fs::copy_file(tok_json, fs::path(dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
    if (fs::exists(src / "tokenizer_config.json"))
      fs::copy_file(src / "tokenizer_config.json", fs::path(dir) / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  }
  return bytes;
}

std::map<std::string, ExportTensor> named_tensors(Trainable& model) {
  std::map<std::string, ExportTensor> out;
  for (const ParamView& p : model.params())
    if (!out.emplace(*p.name, ExportTensor{*p.shape, p.value}).second) fail("the model has two tensors named '", *p.name, "'");
  for (int64_t i = 0; i < model.num_moe_layers(); ++i) {
    const std::vector<float>& b = model.gate_bias(i);
    if (!out.emplace(model.gate_bias_name(i), ExportTensor{{int64_t(b.size())}, b.data()}).second)
      fail("the model has two tensors named '", model.gate_bias_name(i), "'");
  }
  return out;
}

}  // namespace dsv3::train
