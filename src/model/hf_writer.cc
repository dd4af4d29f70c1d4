#include "model/hf_writer.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "base/error.h"
#include "base/numeric.h"
#include "io/safetensors.h"

namespace dsv3::model {
namespace {

class Progress {
 public:
  Progress(uint64_t total, bool on) : total_(total), on_(on && isatty(STDERR_FILENO)) {}
  void add(uint64_t bytes) {
    done_ += bytes;
    if (!on_) return;
    const int pct = total_ ? int(100.0 * double(done_) / double(total_)) : 100;
    if (pct == last_) return;
    last_ = pct;
    const int bar = pct * 30 / 100;
    std::fprintf(stderr, "\rwriting  [%.*s%*s] %3d%%  %.1f / %.1f MB", bar, "##############################",
                 30 - bar, "", pct, double(done_) / 1e6, double(total_) / 1e6);
    if (done_ >= total_) std::fprintf(stderr, "\n");
  }

 private:
  uint64_t total_, done_ = 0;
  bool on_;
  int last_ = -1;
};

struct Out {
  std::string name;
  io::DType dtype;
  std::vector<int64_t> shape;
  uint64_t nbytes;
  io::SafetensorsWriter::Filler fill;
};

}  // namespace

std::vector<float> fp8_block_scales(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t bs) {
  const int64_t sr = (rows + bs - 1) / bs, sc = (cols + bs - 1) / bs;
  std::vector<float> amax(size_t(sr * sc), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float& a = amax[size_t((r / bs) * sc + c / bs)];
      a = std::max(a, std::fabs(w[size_t(r * cols + c)]));
    }
  for (float& a : amax) a = a > 0 ? a / 448.0f : 1.0f;
  return amax;
}

uint64_t write_hf_checkpoint(const std::string& dir, ModelConfig c, const std::vector<TensorSpec>& specs,
                             const HfTensorValues& values, const HfWriteOptions& o) {
  namespace fs = std::filesystem;
  const bool fp8 = o.dtype == "fp8";
  if (!fp8 && o.dtype != "bf16" && o.dtype != "f32") fail("checkpoint dtype must be fp8, bf16 or f32, got '", o.dtype, "'");
  if (o.shards < 1) fail("the number of shards must be at least 1, got ", o.shards);
  if (dir.empty()) fail("no output folder given for the checkpoint");
  c.torch_dtype = o.dtype == "f32" ? "float32" : "bfloat16";
  c.quantization = fp8 ? std::optional<QuantizationConfig>(QuantizationConfig{}) : std::nullopt;
  constexpr int64_t kBlock = 128;
  const io::DType plain = o.dtype == "f32" ? io::DType::F32 : io::DType::BF16;

  auto get = [values](const TensorSpec& s) {
    std::vector<float> v;
    values(s, v);
    if (v.size() != s.numel()) fail("tensor '", s.name, "': got ", v.size(), " values, expected ", s.numel());
    return v;
  };
  std::vector<Out> outs;
  for (const TensorSpec& s : specs) {
    const uint64_t n = s.numel();
    if (s.role == TensorRole::Bias) {  // the gate bias is F32 in published checkpoints
      outs.push_back({s.name, io::DType::F32, s.shape, n * 4, [s, get](uint8_t* dst, uint64_t) {
                        const std::vector<float> v = get(s);
                        std::memcpy(dst, v.data(), v.size() * 4);
                      }});
    } else if (fp8 && s.fp8_eligible) {
      const int64_t rows = s.shape.at(0), cols = s.shape.at(1);
      outs.push_back({s.name, io::DType::F8_E4M3, s.shape, n, [s, get, rows, cols](uint8_t* dst, uint64_t) {
                        const std::vector<float> v = get(s);
                        const std::vector<float> sc = fp8_block_scales(v, rows, cols, kBlock);
                        const int64_t scols = (cols + kBlock - 1) / kBlock;
                        for (int64_t r = 0; r < rows; ++r)
                          for (int64_t col = 0; col < cols; ++col)
                            dst[r * cols + col] =
                                f32_to_e4m3(v[size_t(r * cols + col)] / sc[size_t((r / kBlock) * scols + col / kBlock)]);
                      }});
      const std::vector<int64_t> sshape = {(rows + kBlock - 1) / kBlock, (cols + kBlock - 1) / kBlock};
      outs.push_back({s.name + "_scale_inv", io::DType::F32, sshape, uint64_t(sshape[0] * sshape[1]) * 4,
                      [s, get, rows, cols](uint8_t* dst, uint64_t) {
                        const std::vector<float> sc = fp8_block_scales(get(s), rows, cols, kBlock);
                        std::memcpy(dst, sc.data(), sc.size() * 4);
                      }});
    } else {
      outs.push_back({s.name, plain, s.shape, n * io::dtype_size(plain), [s, get, plain](uint8_t* dst, uint64_t) {
                        const std::vector<float> v = get(s);
                        if (plain == io::DType::F32) {
                          std::memcpy(dst, v.data(), v.size() * 4);
                        } else {
                          for (size_t i = 0; i < v.size(); ++i) {
                            const uint16_t h = f32_to_bf16(v[i]);
                            std::memcpy(dst + 2 * i, &h, 2);
                          }
                        }
                      }});
    }
  }

  uint64_t total = 0;
  for (const Out& t : outs) total += t.nbytes;
  fs::create_directories(dir);
  {
    std::ofstream cfg(fs::path(dir) / "config.json");
    cfg << c.to_json();
    if (!cfg) fail("cannot write ", (fs::path(dir) / "config.json").string());
  }
  // Shards of roughly equal size, tensors in declaration order, named as Hugging Face does.
  auto progress = std::make_shared<Progress>(total, o.progress);
  std::map<std::string, std::string> weight_map;
  const int shards = int(std::min<size_t>(size_t(o.shards), outs.size()));
  size_t next = 0;
  uint64_t written = 0;
  for (int k = 0; k < shards; ++k) {
    char fname[64];
    std::snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", k + 1, shards);
    io::SafetensorsWriter w;
    const uint64_t target = total * uint64_t(k + 1) / uint64_t(shards);
    while (next < outs.size() && (written < target || w.size() == 0 || k == shards - 1) &&
           outs.size() - next > size_t(shards - k - 1)) {
      Out& t = outs[next++];
      auto fill = t.fill;
      w.add(t.name, t.dtype, t.shape, [fill, progress](uint8_t* dst, uint64_t nb) {
        fill(dst, nb);
        progress->add(nb);
      });
      weight_map[t.name] = fname;
      written += t.nbytes;
    }
    w.set_metadata("format", "pt");
    w.write((fs::path(dir) / fname).string());
  }
  io::write_safetensors_index((fs::path(dir) / "model.safetensors.index.json").string(), weight_map, total);
  return total;
}

}  // namespace dsv3::model
