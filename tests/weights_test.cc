// Binding a checkpoint to the model (src/model/weights.h): a generated `tiny` FP8 model binds
// cleanly, and each kind of broken checkpoint fails with a message naming the tensor.
// Broken checkpoints are made by copying the generated folder and rewriting the one shard
// that holds the tensor in question (and the index to match).
#include "model/weights.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/numeric.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/model.h"
#include "model/testgen.h"
#include "test_util.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;
using testutil::error_of;
using testutil::TempDir;

struct TensorCopy {
  std::string name;
  io::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
using ShardEdit = std::function<void(std::vector<TensorCopy>&)>;

TensorCopy* find_tensor(std::vector<TensorCopy>& ts, const std::string& name) {
  for (TensorCopy& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

class WeightsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TempDir("tiny_fp8");
    model::TestModelOptions o;
    o.preset = "tiny";
    o.dtype = "fp8";
    o.seed = 3;
    o.shards = 2;
    o.out = model_dir_->str();
    model::make_test_model(o);
  }
  static void TearDownTestSuite() {
    delete model_dir_;
    model_dir_ = nullptr;
  }

  static std::string model() { return model_dir_->str(); }
  static model::ModelConfig config() { return model::ModelConfig::load(model_dir_->operator/("config.json")); }

  static model::ModelWeights bind(const std::string& dir, bool load_mtp = true) {
    const model::ModelConfig c = model::ModelConfig::load((fs::path(dir) / "config.json").string());
    return model::ModelWeights::bind(c, std::make_shared<const io::Checkpoint>(io::Checkpoint::open(dir)), load_mtp);
  }

  // Copies the generated model into a fresh folder, rewrites the shard holding `tensor`
  // through `edit`, and rebuilds the index from the shards. Returns the rewritten shard path.
  std::string broken_copy(const std::string& tensor, const ShardEdit& edit) {
    broken_ = std::make_unique<TempDir>("broken");
    fs::copy(model(), broken_->path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    const io::Checkpoint original = io::Checkpoint::open(model());
    const io::TensorRef* ref = original.find(tensor);
    EXPECT_NE(ref, nullptr) << tensor << " is not in the generated model";
    if (!ref) return "";
    const std::string shard = fs::path(*ref->file).filename().string();

    const io::SafetensorsFile f = io::SafetensorsFile::open(*ref->file);
    std::vector<TensorCopy> ts;
    for (const io::TensorInfo& t : f.tensors()) {
      const uint8_t* p = f.data(t);
      ts.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes())});
    }
    edit(ts);
    io::SafetensorsWriter w;
    for (const TensorCopy& t : ts) w.add_bytes(t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
    const std::string shard_path = (*broken_) / shard;
    w.write(shard_path);

    std::map<std::string, std::string> weight_map;
    uint64_t total = 0;
    for (const auto& entry : fs::directory_iterator(broken_->path())) {
      if (entry.path().extension() != ".safetensors") continue;
      const io::SafetensorsFile s = io::SafetensorsFile::open(entry.path().string());
      for (const io::TensorInfo& t : s.tensors()) {
        weight_map[t.name] = entry.path().filename().string();
        total += t.nbytes();
      }
    }
    io::write_safetensors_index((*broken_) / "model.safetensors.index.json", weight_map, total);
    return shard_path;
  }

  // Replaces `name` in its shard with a tensor of another dtype/shape (zero bytes).
  std::string replace_tensor(const std::string& name, io::DType dtype, std::vector<int64_t> shape) {
    return broken_copy(name, [&](std::vector<TensorCopy>& ts) {
      TensorCopy* t = find_tensor(ts, name);
      ASSERT_NE(t, nullptr);
      uint64_t n = io::dtype_size(dtype);
      for (int64_t d : shape) n *= uint64_t(d);
      t->dtype = dtype;
      t->shape = shape;
      t->bytes.assign(n, 0);
    });
  }

  std::string broken() const { return broken_->str(); }

  static TempDir* model_dir_;
  std::unique_ptr<TempDir> broken_;
};

TempDir* WeightsTest::model_dir_ = nullptr;

// ---- The generated model binds -------------------------------------------------------------

TEST_F(WeightsTest, GeneratedTinyModelBindsWithNothingUnused) {
  const model::ModelConfig c = config();
  ASSERT_TRUE(c.quantization.has_value());
  const auto ck = std::make_shared<const io::Checkpoint>(io::Checkpoint::open(model()));
  EXPECT_EQ(ck->files().size(), 2u);
  const model::ModelWeights w = model::ModelWeights::bind(c, ck);
  EXPECT_TRUE(w.unused.empty()) << w.unused.size() << " unused, first: " << w.unused.front();

  ASSERT_EQ(int64_t(w.layers.size()), c.num_hidden_layers);
  EXPECT_EQ(w.embed.rows, c.vocab_size);
  EXPECT_EQ(w.embed.cols, c.hidden_size);
  EXPECT_EQ(w.embed.dtype, io::DType::BF16);  // never quantized
  EXPECT_EQ(w.lm_head.dtype, io::DType::BF16);
  EXPECT_EQ(int64_t(w.final_norm.size()), c.hidden_size);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    SCOPED_TRACE(i);
    const model::LayerWeights& L = w.layers[size_t(i)];
    EXPECT_EQ(L.moe, c.is_moe_layer(i));
    EXPECT_EQ(L.attn.q_a.dtype, io::DType::F8_E4M3);
    EXPECT_EQ(L.attn.q_a.rows, c.q_lora_rank);
    EXPECT_TRUE(L.attn.q.empty());
    EXPECT_EQ(int64_t(L.attn.kv_a_norm.size()), c.kv_lora_rank);
    // hidden 200 in blocks of 128: two block columns, the second partial.
    EXPECT_EQ(L.attn.kv_a.scale_cols, 2);
    EXPECT_NE(L.attn.kv_a.scale, nullptr);
    if (L.moe) {
      EXPECT_EQ(int64_t(L.experts.experts.size()), c.n_routed_experts);
      EXPECT_EQ(int64_t(L.experts.bias.size()), c.n_routed_experts);
      EXPECT_EQ(L.experts.gate.dtype, io::DType::BF16);  // the router stays high precision
      EXPECT_TRUE(L.experts.shared.has_value());
      EXPECT_EQ(L.experts.experts[0].down.rows, c.hidden_size);
      EXPECT_EQ(L.experts.experts[0].down.cols, c.moe_intermediate_size);
    } else {
      EXPECT_EQ(L.dense.gate.rows, c.intermediate_size);
    }
  }
  ASSERT_TRUE(w.mtp.has_value());
  EXPECT_EQ(w.mtp->eh_proj.cols, 2 * c.hidden_size);
  EXPECT_TRUE(w.mtp->block.moe);
}

TEST_F(WeightsTest, BoundFp8WeightsDecodeToTheStoredValues) {
  const model::ModelWeights w = bind(model());
  const kernels::WeightMatrix& m = w.layers[1].attn.kv_a;  // [latent 176, hidden 200]
  const io::Checkpoint ck = io::Checkpoint::open(model());
  const io::TensorRef* q = ck.find("model.layers.1.self_attn.kv_a_proj_with_mqa.weight");
  const io::TensorRef* s = ck.find("model.layers.1.self_attn.kv_a_proj_with_mqa.weight_scale_inv");
  ASSERT_TRUE(q && s);
  for (int64_t r : {0, 127, 128, 175})
    for (int64_t col : {0, 127, 128, 199}) {
      float scale;
      std::memcpy(&scale, s->data + 4 * ((r / 128) * 2 + col / 128), 4);
      EXPECT_EQ(m.at(r, col), e4m3_to_f32(q->data[r * 200 + col]) * scale) << r << "," << col;
    }
}

TEST_F(WeightsTest, BytesByDtypeMatchTheCheckpoint) {
  const model::ModelWeights w = bind(model());
  const io::Checkpoint ck = io::Checkpoint::open(model());
  uint64_t want[16] = {};
  for (const std::string& name : ck.names()) want[size_t(ck.find(name)->info->dtype)] += ck.find(name)->info->nbytes();
  uint64_t total = 0;
  for (int d = 0; d < 16; ++d) {
    EXPECT_EQ(w.bytes_by_dtype[d], want[d]) << io::dtype_name(io::DType(d));
    total += w.bytes_by_dtype[d];
  }
  EXPECT_EQ(total, ck.total_bytes());  // every tensor bound exactly once
  EXPECT_GT(w.bytes_by_dtype[size_t(io::DType::F8_E4M3)], 0u);
  EXPECT_GT(w.bytes_by_dtype[size_t(io::DType::BF16)], 0u);
  EXPECT_GT(w.bytes_by_dtype[size_t(io::DType::F32)], 0u);  // scales and gate biases
  EXPECT_EQ(w.bytes_by_dtype[size_t(io::DType::I32)], 0u);

  // Without the MTP layer fewer bytes are bound, and its tensors are not "unused".
  const model::ModelWeights no_mtp = bind(model(), /*load_mtp=*/false);
  EXPECT_FALSE(no_mtp.mtp.has_value());
  EXPECT_TRUE(no_mtp.unused.empty());
  uint64_t total_no_mtp = 0;
  for (int d = 0; d < 16; ++d) total_no_mtp += no_mtp.bytes_by_dtype[d];
  EXPECT_LT(total_no_mtp, total);
}

TEST_F(WeightsTest, ModelLoadWorksOnTheGeneratedFolder) {
  const model::Model m = model::Model::load(model());
  EXPECT_EQ(m.config().hidden_size, config().hidden_size);
  EXPECT_TRUE(m.weights().mtp.has_value());
}

// ---- Broken checkpoints --------------------------------------------------------------------

TEST_F(WeightsTest, MissingTensorIsNamed) {
  const std::string name = "model.layers.1.mlp.experts.3.up_proj.weight";
  broken_copy(name, [&](std::vector<TensorCopy>& ts) {
    std::erase_if(ts, [&](const TensorCopy& t) { return t.name == name; });
  });
  const std::string msg = error_of([&] { bind(broken()); });
  EXPECT_CONTAINS(msg, "'" + name + "'");
  EXPECT_CONTAINS(msg, "missing");
  EXPECT_CONTAINS(msg, "[72, 200]");  // the expected shape
}

TEST_F(WeightsTest, WrongShapeNamesTensorFileAndShapes) {
  const std::string name = "model.layers.0.self_attn.o_proj.weight";  // [hidden 200, 4 heads * v 24]
  const std::string shard = broken_copy(name, [&](std::vector<TensorCopy>& ts) {
    TensorCopy* t = find_tensor(ts, name);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->shape, (std::vector<int64_t>{200, 96}));
    t->shape = {96, 200};  // same bytes, transposed shape
  });
  const std::string msg = error_of([&] { bind(broken()); });
  EXPECT_CONTAINS(msg, name);
  EXPECT_CONTAINS(msg, shard);
  EXPECT_CONTAINS(msg, "[96, 200]");  // got
  EXPECT_CONTAINS(msg, "[200, 96]");  // expected
}

TEST_F(WeightsTest, WrongScaleShapeIsNamed) {
  const std::string name = "model.layers.2.self_attn.kv_b_proj.weight_scale_inv";
  broken_copy(name, [&](std::vector<TensorCopy>& ts) {
    TensorCopy* t = find_tensor(ts, name);
    ASSERT_NE(t, nullptr);
    t->shape = {t->shape[1], t->shape[0]};
    if (t->shape[0] == t->shape[1]) t->shape = {t->shape[0] * t->shape[1]};
  });
  EXPECT_CONTAINS(error_of([&] { bind(broken()); }), name);
}

TEST_F(WeightsTest, Fp8WeightWithoutScalesIsAnError) {
  const std::string name = "model.layers.2.self_attn.kv_b_proj.weight";
  broken_copy(name, [&](std::vector<TensorCopy>& ts) {
    std::erase_if(ts, [&](const TensorCopy& t) { return t.name == name + "_scale_inv"; });
  });
  const std::string msg = error_of([&] { bind(broken()); });
  EXPECT_CONTAINS(msg, "'" + name + "'");
  EXPECT_CONTAINS(msg, name + "_scale_inv");
}

TEST_F(WeightsTest, Fp8WhereNeverQuantizedIsAnError) {
  for (auto [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"model.norm.weight", {200}},
           {"model.embed_tokens.weight", {1000, 200}},
           {"lm_head.weight", {1000, 200}},
           {"model.layers.1.mlp.gate.weight", {16, 200}},
       }) {
    SCOPED_TRACE(name);
    replace_tensor(name, io::DType::F8_E4M3, shape);
    const std::string msg = error_of([&] { bind(broken()); });
    EXPECT_CONTAINS(msg, "'" + name + "'");
    EXPECT_CONTAINS(msg, "F8_E4M3");
  }
}

TEST_F(WeightsTest, IntegerWeightIsAnError) {
  const std::string name = "model.layers.1.mlp.experts.0.gate_proj.weight";
  replace_tensor(name, io::DType::I32, {72, 200});
  const std::string msg = error_of([&] { bind(broken()); });
  EXPECT_CONTAINS(msg, "'" + name + "'");
  EXPECT_CONTAINS(msg, "I32");

  const std::string norm = "model.layers.0.input_layernorm.weight";
  replace_tensor(norm, io::DType::I32, {200});
  const std::string msg2 = error_of([&] { bind(broken()); });
  EXPECT_CONTAINS(msg2, "'" + norm + "'");
  EXPECT_CONTAINS(msg2, "I32");
}

TEST_F(WeightsTest, ExtraTensorIsReportedUnused) {
  const std::string extra = "model.layers.0.self_attn.rotary_emb.inv_freq";
  broken_copy("model.layers.0.self_attn.o_proj.weight", [&](std::vector<TensorCopy>& ts) {
    ts.push_back({extra, io::DType::F32, {8}, std::vector<uint8_t>(32, 0)});
  });
  const model::ModelWeights w = bind(broken());
  EXPECT_EQ(w.unused, std::vector<std::string>{extra});
}

// ---- model::Model::load on folders that are not models --------------------------------------------

TEST(ModelLoadErrors, MissingFolder) {
  TempDir dir("load");
  const std::string path = dir / "no_such_model";
  const std::string msg = error_of([&] { model::Model::load(path); });
  EXPECT_CONTAINS(msg, path);
  EXPECT_CONTAINS(msg, "does not exist");
}

TEST(ModelLoadErrors, FolderWithoutConfig) {
  TempDir dir("load");
  const std::string msg = error_of([&] { model::Model::load(dir.str()); });
  EXPECT_CONTAINS(msg, "config.json");
  EXPECT_CONTAINS(msg, dir.str());
}

TEST(ModelLoadErrors, FileInsteadOfFolder) {
  TempDir dir("load");
  const std::string file = dir / "model.safetensors";
  io::SafetensorsWriter().write(file);
  const std::string msg = error_of([&] { model::Model::load(file); });
  EXPECT_CONTAINS(msg, file);
  EXPECT_CONTAINS(msg, "folder");
}

TEST(ModelLoadErrors, ConfigWithoutWeights) {
  TempDir dir("load");
  model::ModelConfig c = model::test_model_config("tiny");
  std::ofstream(dir / "config.json") << c.to_json();
  const std::string msg = error_of([&] { model::Model::load(dir.str()); });
  EXPECT_CONTAINS(msg, dir.str());
  EXPECT_CONTAINS(msg, "safetensors");
}

}  // namespace
}  // namespace dsv3
