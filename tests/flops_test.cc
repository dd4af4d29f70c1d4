// The forward pass's multiply-add count (what `dsv3 bench` reports GFLOP/s from) and a
// training step's FLOPs (what `dsv3 train` reports MFU from) against counts done by hand for
// a small mixed dense/MoE config.
#include <gtest/gtest.h>

#include "model/flops.h"
#include "train/train_flops.h"

namespace dsv3 {
namespace {

model::ModelConfig small_config() {
  model::ModelConfig c;
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.first_k_dense_replace = 1;  // layer 0 dense, layer 1 MoE
  c.num_attention_heads = 2;
  c.q_lora_rank = 0;
  c.qk_nope_head_dim = 4;
  c.qk_rope_head_dim = 2;
  c.v_head_dim = 4;
  c.kv_lora_rank = 6;
  c.intermediate_size = 16;
  c.moe_intermediate_size = 4;
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 2;
  c.n_shared_experts = 1;
  return c;
}

TEST(Flops, LayersByHand) {
  const model::ModelConfig c = small_config();
  ASSERT_FALSE(c.is_moe_layer(0));
  ASSERT_TRUE(c.is_moe_layer(1));
  // attention per layer: q 8*2*6 = 96, kv_a 8*8 = 64, kv_b 2*(4+4)*6 = 96, o 2*4*8 = 64: 320
  // dense MLP: 3*8*16 = 384; MoE: router 8*4 = 32 + experts 3*8*4*(2+1) = 288: 320
  EXPECT_EQ(model::layer_macs_per_token(c), 320 + 384 + 320 + 320);
  EXPECT_EQ(model::attention_macs_per_pair(c), 2 * 2 * (6 + 4));
  EXPECT_EQ(model::head_macs(c), 80);
}

TEST(Flops, PrefillCountsTheHeadOnceWhenOnlyTheLastTokenSamples) {
  const model::ModelConfig c = small_config();
  // 4 tokens after 3 cached: queries see 4, 5, 6, 7 keys = 22 pairs.
  EXPECT_EQ(model::forward_macs(c, 3, 4, /*last_only=*/true), 4 * 1344 + 22 * 40 + 80);
  EXPECT_EQ(model::forward_macs(c, 3, 4, /*last_only=*/false), 4 * 1344 + 22 * 40 + 4 * 80);
  // One decode step at position 9: 10 keys.
  EXPECT_EQ(model::forward_macs(c, 9, 1, false), 1344 + 10 * 40 + 80);
}

TEST(Flops, TrainingStepByHand) {
  const model::ModelConfig c = small_config();
  // The MTP block (layer index 2) follows the MoE rule: 320 + 320.
  EXPECT_EQ(model::layer_macs(c, 2), 640);
  // A window of 5 tokens: layers on 5 tokens (5 * 1344), 15 causal pairs (15 * 40), the
  // head on the 4 rows with a next token (4 * 80); forward + backward = 3x, 2 FLOPs each.
  const double main = 5 * 1344 + 15 * 40 + 4 * 80;
  EXPECT_EQ(train::train_flops_per_window(c, 5, false), 6 * main);
  // The MTP module on 3 rows: eh_proj 2 * 8 * 8 = 128, its block 640, the head 80 per row,
  // and its one layer's attention over 6 causal pairs of 2 * (6 + 4) = 20 multiply-adds.
  EXPECT_EQ(train::train_flops_per_window(c, 5, true), 6 * (main + 3 * (128 + 640 + 80) + 6 * 20));
}

}  // namespace
}  // namespace dsv3
