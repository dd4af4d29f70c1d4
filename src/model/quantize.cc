#include "model/quantize.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/safetensors.h"
#include "kernels/weight_matrix.h"
#include "model/config.h"
#include "model/hf_writer.h"
#include "model/tensor_table.h"

namespace dsv3::model {

QuantizeResult quantize_checkpoint(const std::string& in, const std::string& out, const QuantizeOptions& opts) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(in)) fail("quantize: ", in, " is not a model folder");
  if (fs::exists(out) && fs::equivalent(in, out)) fail("quantize: --out must differ from --in (", in, ")");
  const std::string cfg_path = (fs::path(in) / "config.json").string();
  const ModelConfig config = ModelConfig::load(cfg_path);
  if (config.quantization) fail("quantize: ", in, " is already quantized (config.json has quantization_config)");
  const io::Checkpoint ck = io::Checkpoint::open(in);

  const std::vector<TensorSpec> specs = tensor_table(config);
  std::set<std::string> known;
  QuantizeResult res;
  for (const TensorSpec& s : specs) {
    known.insert(s.name);
    const io::TensorRef* t = ck.find(s.name);
    if (!t && !s.fallback.empty()) t = ck.find(s.fallback);
    if (!t) fail("quantize: ", in, " has no tensor '", s.name, "'");
    if (t->info->dtype == io::DType::F8_E4M3) fail("quantize: '", s.name, "' is already FP8");
    if (t->info->shape != s.shape) fail("quantize: '", s.name, "' has the wrong shape for this config");
    res.bytes_in += t->info->nbytes();
    (s.fp8_eligible ? res.fp8_tensors : res.kept_tensors) += 1;
  }
  for (const std::string& name : ck.names())
    if (!known.count(name)) fail("quantize: ", in, ": tensor '", name, "' has no place in this config");

  const int shards = opts.shards > 0 ? opts.shards : int(ck.files().size());
  auto values = [&](const TensorSpec& s, std::vector<float>& v) {
    const io::TensorRef* t = ck.find(s.name);
    if (!t) t = ck.find(s.fallback);
    kernels::WeightMatrix w;
    w.name = s.name;
    w.dtype = t->info->dtype;
    w.data = t->data;
    w.rows = s.shape.size() == 2 ? s.shape[0] : 1;
    w.cols = s.shape.back();
    v.resize(size_t(w.rows * w.cols));
    for (int64_t r = 0; r < w.rows; ++r) kernels::decode_row(w, r, &v[size_t(r * w.cols)]);
  };
  res.bytes_out = write_hf_checkpoint(out, config, specs, values, HfWriteOptions{"fp8", shards, opts.progress});

  // config.json: the input's own (every key it had, known to us or not) plus the FP8 keys.
  {
    std::ifstream f(cfg_path);
    nlohmann::json j = nlohmann::json::parse(f);
    std::ifstream g(fs::path(out) / "config.json");
    const nlohmann::json written = nlohmann::json::parse(g);
    j["quantization_config"] = written.at("quantization_config");
    j["torch_dtype"] = written.at("torch_dtype");
    std::ofstream o(fs::path(out) / "config.json");
    o << j.dump(2) << "\n";
    if (!o) fail("quantize: cannot write ", (fs::path(out) / "config.json").string());
  }
  // Tokenizer, generation config and the like.
  for (const auto& e : fs::directory_iterator(in)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name == "config.json" || name == "model.safetensors.index.json" ||
        e.path().extension() == ".safetensors")
      continue;
    fs::copy_file(e.path(), fs::path(out) / name, fs::copy_options::overwrite_existing);
  }
  return res;
}

}  // namespace dsv3::model
