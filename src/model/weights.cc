#include "model/weights.h"

#include <cstring>
#include <type_traits>

#include "base/error.h"
#include "base/numeric.h"
#include "model/tensor_table.h"

namespace dsv3::model {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Binds names to tensors, checking each declaration, and remembers what was used.
class Binder {
 public:
  Binder(const ModelConfig& cfg, const io::Checkpoint& ck, ModelWeights& out) : cfg_(cfg), ck_(ck), out_(out) {}

  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }

  const io::TensorRef& require(const std::string& name, const std::vector<int64_t>& shape) {
    const io::TensorRef* t = ck_.find(name);
    if (!t) fail("checkpoint is missing tensor '", name, "' (expected shape ", shape_str(shape), ")");
    if (t->info->shape != shape)
      fail(*t->file, ": tensor '", name, "' has shape ", shape_str(t->info->shape), ", expected ", shape_str(shape),
           " from config.json");
    used_.insert(name);
    return *t;
  }

  // A Linear weight: F32 / BF16 / F16, or F8_E4M3 with its `_scale_inv` block scales.
  kernels::WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols, bool allow_fp8 = true) {
    const io::TensorRef& t = require(name, {rows, cols});
    kernels::WeightMatrix w;
    w.name = name;
    w.dtype = t.info->dtype;
    w.rows = rows;
    w.cols = cols;
    w.data = aligned(t);
    switch (w.dtype) {
      case io::DType::F32: case io::DType::BF16: case io::DType::F16: break;
      case io::DType::F8_E4M3: {
        if (!allow_fp8)
          fail(*t.file, ": tensor '", name, "' is F8_E4M3, but this tensor is never quantized in DeepSeek checkpoints");
        if (cfg_.quantization) {
          w.block_rows = cfg_.quantization->block_rows;
          w.block_cols = cfg_.quantization->block_cols;
          w.ue8m0 = cfg_.quantization->scale_fmt == "ue8m0";
        }
        const int64_t sr = (rows + w.block_rows - 1) / w.block_rows;
        w.scale_cols = (cols + w.block_cols - 1) / w.block_cols;
        const std::string sname = name + "_scale_inv";
        if (!has(sname)) fail(*t.file, ": FP8 tensor '", name, "' has no block scales '", sname, "'");
        w.scale = floats(sname, {sr, w.scale_cols}, /*always_copy=*/false);
        break;
      }
      default:
        fail(*t.file, ": tensor '", name, "' has dtype ", io::dtype_name(w.dtype),
             "; weights must be F32, BF16, F16 or F8_E4M3");
    }
    out_.bytes_by_dtype[size_t(w.dtype)] += t.info->nbytes();
    return w;
  }

  // A small vector (norm weight, gate bias) converted to fp32.
  std::vector<float> vector(const std::string& name, int64_t n) {
    const float* p = floats(name, {n}, /*always_copy=*/true);
    std::vector<float> v(p, p + n);
    out_.owned.pop_back();
    return v;
  }

  const std::set<std::string>& used() const { return used_; }

 private:
  // fp32 view of a F32/BF16/F16/F8_E8M0 tensor; F32 is viewed in place when aligned.
  const float* floats(const std::string& name, const std::vector<int64_t>& shape, bool always_copy) {
    const io::TensorRef& t = require(name, shape);
    const uint64_t n = t.info->numel();
    out_.bytes_by_dtype[size_t(t.info->dtype)] += t.info->nbytes();
    if (t.info->dtype == io::DType::F32 && !always_copy && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(t.data);
    std::vector<float> v(n);
    for (uint64_t i = 0; i < n; ++i) {
      switch (t.info->dtype) {
        case io::DType::F32: std::memcpy(&v[i], t.data + 4 * i, 4); break;
        case io::DType::BF16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); v[i] = bf16_to_f32(h); break; }
        case io::DType::F16: { uint16_t h; std::memcpy(&h, t.data + 2 * i, 2); v[i] = f16_to_f32(h); break; }
        case io::DType::F8_E8M0: v[i] = e8m0_to_f32(t.data[i]); break;
        default: fail(*t.file, ": tensor '", name, "' has dtype ", io::dtype_name(t.info->dtype), ", expected a float type");
      }
    }
    out_.owned.push_back(std::move(v));
    return out_.owned.back().data();
  }

  // mmapped data is used in place unless misaligned for its element type (possible in
  // hand-made files: safetensors does not require alignment), in which case it is copied.
  const void* aligned(const io::TensorRef& t) {
    const size_t a = io::dtype_size(t.info->dtype);
    if (reinterpret_cast<uintptr_t>(t.data) % a == 0) return t.data;
    std::vector<float> v((t.info->nbytes() + 3) / 4);
    std::memcpy(v.data(), t.data, t.info->nbytes());
    out_.owned.push_back(std::move(v));
    return out_.owned.back().data();
  }

  const ModelConfig& cfg_;
  const io::Checkpoint& ck_;
  ModelWeights& out_;
  std::set<std::string> used_;
};

// Byte-identical matrices (the MTP layer's copies of the embedding and head in published
// checkpoints): the second need never be read again.
bool same_matrix(const kernels::WeightMatrix& a, const kernels::WeightMatrix& b) {
  if (a.empty() || b.empty() || a.dtype != b.dtype || a.rows != b.rows || a.cols != b.cols) return false;
  if (a.scale || b.scale) return false;  // block-scaled copies are compared nowhere: not in the published layout
  return std::memcmp(a.data, b.data, size_t(a.rows) * size_t(a.cols) * io::dtype_size(a.dtype)) == 0;
}

}  // namespace

ModelWeights ModelWeights::bind(const ModelConfig& c, std::shared_ptr<const io::Checkpoint> ck, bool load_mtp,
                                const std::function<bool(const TensorSpec&)>& want) {
  ModelWeights w;
  w.checkpoint = ck;
  Binder b(c, *ck, w);
  const std::vector<TensorSpec> table = tensor_table(c);
  // The matrix already bound for `name` (fallbacks come later in the table than their targets).
  auto bound = [&](const std::string& name) {
    kernels::WeightMatrix out;
    for (const TensorSpec& t : table)
      if (t.name == name)
        bind_member(t, w, [&](auto& m) {
          if constexpr (std::is_same_v<std::decay_t<decltype(m)>, kernels::WeightMatrix>) out = m;
        });
    DSV3_CHECK(!out.empty(), "fallback tensor ", name, " is not bound");
    return out;
  };
  std::set<std::string> skipped;  // not wanted here (expert parallelism: another process reads them)
  for (const TensorSpec& s : table) {
    if (s.mtp && !load_mtp) continue;
    if (want && !want(s)) {
      skipped.insert(s.name);
      bind_member(s, w, [](auto&) {});  // the slot exists (empty), so layer and expert indices stay put
      continue;
    }
    const bool absent = !s.fallback.empty() && !b.has(s.name);
    const kernels::WeightMatrix stand_in = absent ? bound(s.fallback) : kernels::WeightMatrix{};
    bind_member(s, w, [&](auto& m) {
      if constexpr (std::is_same_v<std::decay_t<decltype(m)>, kernels::WeightMatrix>)
        m = absent ? stand_in : b.matrix(s.name, s.shape.at(0), s.shape.at(1), s.fp8_eligible);
      else
        m = b.vector(s.name, s.shape.at(0));
    });
  }

  // Tied copies: decoding reads the main tensors, so the copies' pages are not touched again.
  if (w.mtp) {
    for (kernels::WeightMatrix* copy : {&w.mtp->embed, &w.mtp->head}) {
      const kernels::WeightMatrix& main = copy == &w.mtp->embed ? w.embed : w.lm_head;
      if (copy->data == main.data || !same_matrix(*copy, main)) continue;
      w.idle.insert(copy->name);
      *copy = main;
    }
  }

  const std::string mtp_prefix = "model.layers." + std::to_string(c.num_hidden_layers) + ".";
  for (const std::string& name : ck->names()) {
    if (b.used().count(name)) continue;
    w.idle.insert(name);
    const std::string base = name.ends_with("_scale_inv") ? name.substr(0, name.size() - 10) : name;
    if (skipped.count(base)) continue;  // not wanted here, block scales included
    if (!load_mtp && name.rfind(mtp_prefix, 0) == 0) continue;
    w.unused.push_back(name);
  }
  return w;
}

}  // namespace dsv3::model
