// The one tensor table (src/model/tensor_table.h): the published names, shapes and order,
// one struct member per entry on both the inference and the training side, the loader's
// fallbacks for tensors checkpoints may leave out, and the trainer's parameter order.
#include "model/tensor_table.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "model/hf_writer.h"
#include "model/testgen.h"
#include "model/weights.h"
#include "test_util.h"
#include "train/model_tensors.h"
#include "train/params.h"

namespace dsv3 {
namespace {

using model::TensorKind;
using model::TensorRole;
using model::TensorSpec;

const TensorSpec* find(const std::vector<TensorSpec>& t, const std::string& name) {
  for (const TensorSpec& s : t)
    if (s.name == name) return &s;
  return nullptr;
}

TEST(TensorTable, PublishedNamesShapesAndOrder) {
  const model::ModelConfig c = model::test_model_config("tiny");  // 3 layers (first dense), 16 experts, MTP
  const std::vector<TensorSpec> t = model::tensor_table(c);
  // embed; dense layer 0: 2 norms + 7 attention + 3 MLP; MoE layers 1, 2 and the MTP block:
  // 2 + 7 + gate + bias + 16 * 3 + 3 shared; norm, head; the MTP module's 6.
  const size_t moe_layer = 2 + 7 + 2 + 16 * 3 + 3;
  EXPECT_EQ(t.size(), 1 + 12 + 2 * moe_layer + 2 + 6 + moe_layer);
  EXPECT_EQ(t.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(t[1].name, "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(t[2].name, "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(t.back().name, "model.layers.3.mlp.shared_experts.down_proj.weight");

  const TensorSpec* kv_b = find(t, "model.layers.2.self_attn.kv_b_proj.weight");
  ASSERT_NE(kv_b, nullptr);
  EXPECT_EQ(kv_b->shape, (std::vector<int64_t>{4 * (32 + 24), 160}));
  EXPECT_EQ(kv_b->kind, TensorKind::KvB);
  EXPECT_EQ(kv_b->layer, 2);
  EXPECT_FALSE(kv_b->mtp);
  EXPECT_TRUE(kv_b->fp8_eligible);

  const TensorSpec* expert = find(t, "model.layers.3.mlp.experts.11.up_proj.weight");
  ASSERT_NE(expert, nullptr);
  EXPECT_EQ(expert->owner, model::MlpOwner::Expert);
  EXPECT_EQ(expert->expert, 11);
  EXPECT_TRUE(expert->mtp);
  EXPECT_EQ(expert->shape, (std::vector<int64_t>{72, 200}));

  // Only decoder-layer Linears may be FP8; the router, eh_proj and the vocabulary-sized
  // matrices never are.
  for (const TensorSpec& s : t)
    EXPECT_EQ(s.fp8_eligible, s.role == TensorRole::Linear && s.kind != TensorKind::MtpEhProj) << s.name;

  const TensorSpec* copy = find(t, "model.layers.3.shared_head.head.weight");
  ASSERT_NE(copy, nullptr);
  EXPECT_TRUE(copy->tied());
  EXPECT_EQ(copy->source, "lm_head.weight");
  EXPECT_EQ(copy->fallback, "lm_head.weight");
  EXPECT_EQ(find(t, "lm_head.weight")->fallback, "");  // untied: the head must be there

  // Variants change entries, not code: plain q_proj, no gate bias without noaux_tc, no MTP.
  const std::vector<TensorSpec> v2 = model::tensor_table(model::test_model_config("tiny-v2"));
  EXPECT_NE(find(v2, "model.layers.1.self_attn.q_proj.weight"), nullptr);
  EXPECT_EQ(find(v2, "model.layers.1.self_attn.q_a_proj.weight"), nullptr);
  EXPECT_TRUE(std::none_of(v2.begin(), v2.end(), [](const TensorSpec& s) { return s.role == TensorRole::Bias || s.mtp; }));
}

// Every entry binds to its own member of the inference structs; on the training side to its
// own member too, except the tied MTP copies and the gate biases, which training keeps apart.
TEST(TensorTable, EveryEntryHasItsOwnMember) {
  const model::ModelConfig c = model::test_model_config("tiny");
  const std::vector<TensorSpec> t = model::tensor_table(c);
  model::ModelWeights w;
  train::ModelTensors<float> tr;
  for (const TensorSpec& s : t) {
    EXPECT_TRUE(model::bind_member(s, w, [](auto&) {})) << s.name;
    EXPECT_EQ(model::bind_member(s, tr, [](float*&) {}), !s.tied() && s.role != TensorRole::Bias) << s.name;
  }
  // Slots exist now, so addresses are stable: no two entries share a member.
  std::set<const void*> seen_w, seen_t;
  for (const TensorSpec& s : t) {
    model::bind_member(s, w, [&](auto& m) { EXPECT_TRUE(seen_w.insert(&m).second) << s.name; });
    model::bind_member(s, tr, [&](float*& m) { EXPECT_TRUE(seen_t.insert(&m).second) << s.name; });
  }
  ASSERT_EQ(w.layers.size(), 3u);
  EXPECT_FALSE(w.layers[0].moe);
  EXPECT_TRUE(w.layers[1].moe);
  ASSERT_TRUE(w.mtp.has_value());
  EXPECT_TRUE(w.mtp->block.moe);
  EXPECT_EQ(w.layers[2].experts.experts.size(), 16u);
  EXPECT_TRUE(w.layers[2].experts.shared.has_value());
  EXPECT_TRUE(tr.mtp.block.moe);
}

// Checkpoints that leave out a tensor the table gives a fallback still load, from the
// fallback: the MTP copies of embedding and head, and lm_head of a tied-embedding model.
TEST(TensorTable, LoaderFallsBackForOmittedTensors) {
  testutil::TempDir dir("table_fallback");
  model::ModelConfig c = model::test_model_config("tiny");
  c.tie_word_embeddings = true;
  std::vector<TensorSpec> specs = model::tensor_table(c);
  std::erase_if(specs, [](const TensorSpec& s) { return !s.fallback.empty(); });
  model::write_hf_checkpoint(dir.str(), c, specs, [](const TensorSpec& s, std::vector<float>& v) {
    v.assign(s.numel(), s.role == TensorRole::Norm ? 1.0f : 0.01f);
  }, model::HfWriteOptions{});
  const io::Checkpoint probe = io::Checkpoint::open(dir.str());
  ASSERT_EQ(probe.find("lm_head.weight"), nullptr);
  ASSERT_EQ(probe.find("model.layers.3.embed_tokens.weight"), nullptr);

  const model::ModelWeights w =
      model::ModelWeights::bind(c, std::make_shared<const io::Checkpoint>(io::Checkpoint::open(dir.str())));
  EXPECT_TRUE(w.unused.empty());
  EXPECT_EQ(w.lm_head.data, w.embed.data);
  ASSERT_TRUE(w.mtp.has_value());
  EXPECT_EQ(w.mtp->embed.data, w.embed.data);
  EXPECT_EQ(w.mtp->head.data, w.embed.data);  // the head's fallback, itself the embedding

  c.tie_word_embeddings = false;  // now the head is required
  const std::string msg = testutil::error_of([&] {
    model::ModelWeights::bind(c, std::make_shared<const io::Checkpoint>(io::Checkpoint::open(dir.str())));
  });
  EXPECT_CONTAINS(msg, "'lm_head.weight'");
  EXPECT_CONTAINS(msg, "missing");
}

// Training's parameters come in the order the forward pass reads them.
TEST(TensorTable, TrainableSpecsInForwardOrder) {
  const model::ModelConfig c = model::test_model_config("tiny");
  const std::vector<TensorSpec> t = train::trainable_specs(c);
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < t.size(); ++i) at[t[i].name] = i;
  EXPECT_EQ(at.size(), t.size());
  EXPECT_EQ(at.count("model.layers.3.embed_tokens.weight"), 0u);  // tied copies are not kept
  EXPECT_EQ(at["model.embed_tokens.weight"], 0u);
  const std::string l1 = "model.layers.1.";
  EXPECT_LT(at[l1 + "input_layernorm.weight"], at[l1 + "self_attn.q_a_proj.weight"]);
  EXPECT_LT(at[l1 + "self_attn.o_proj.weight"], at[l1 + "post_attention_layernorm.weight"]);
  EXPECT_LT(at[l1 + "post_attention_layernorm.weight"], at[l1 + "mlp.gate.weight"]);
  EXPECT_LT(at["model.layers.2.mlp.shared_experts.down_proj.weight"], at["model.norm.weight"]);
  EXPECT_LT(at["lm_head.weight"], at["model.layers.3.enorm.weight"]);
  EXPECT_LT(at["model.layers.3.eh_proj.weight"], at["model.layers.3.input_layernorm.weight"]);
  EXPECT_EQ(t.back().name, "model.layers.3.shared_head.norm.weight");
}

}  // namespace
}  // namespace dsv3
