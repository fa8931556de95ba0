// The role table: every name maps back to its role, GGUF names translate to the HF names
// llama.cpp's convert_hf_to_gguf.py gives them (its TensorNameMap for LLAMA), and the walk
// visits each role of a config once, in checkpoint order.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/llama_weights.h"

namespace nibble::model {
namespace {

LlamaConfig Config(bool bias, bool tied) {
  LlamaConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.vocab_size = 32;
  c.max_position_embeddings = 16;
  c.attention_bias = bias;
  c.tie_word_embeddings = tied;
  return c;
}

std::vector<std::string> Names(const LlamaConfig& c) {
  std::vector<std::string> names;
  ForEachRole(c, [&](const RoleAt& r) { names.push_back(r.HfName()); });
  return names;
}

TEST(WeightRoles, WalkVisitsTheConfigsRolesInCheckpointOrder) {
  const std::vector<std::string> untied = Names(Config(false, false));
  ASSERT_EQ(untied.size(), 1 + 2 * 9 + 2u);
  EXPECT_EQ(untied.front(), "model.embed_tokens.weight");
  EXPECT_EQ(untied[1], "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(untied[2], "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(untied[10], "model.layers.1.input_layernorm.weight");
  EXPECT_EQ(untied[untied.size() - 2], "model.norm.weight");
  EXPECT_EQ(untied.back(), "lm_head.weight");
  const std::vector<std::string> tied_bias = Names(Config(true, true));
  EXPECT_EQ(tied_bias.size(), 1 + 2 * 12 + 1u);  // + 3 biases per layer, no lm_head
  EXPECT_EQ(tied_bias[6], "model.layers.0.self_attn.q_proj.bias");
  EXPECT_EQ(std::set<std::string>(tied_bias.begin(), tied_bias.end()).size(), tied_bias.size());
}

TEST(WeightRoles, NamesMapBackToTheirRole) {
  ForEachRole(Config(true, false), [&](const RoleAt& r) {
    const std::optional<RoleAt> back = RoleFromHfName(r.HfName());
    ASSERT_TRUE(back) << r.HfName();
    EXPECT_EQ(back->role, r.role);
    EXPECT_EQ(back->layer, r.layer);
    EXPECT_EQ(HfNameFromGguf(r.GgufName()), r.HfName());
  });
  EXPECT_EQ(HfNameFromGguf("blk.11.ffn_down.weight"), "model.layers.11.mlp.down_proj.weight");
  EXPECT_EQ(HfNameFromGguf("blk.0.attn_output.weight"), "model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(HfNameFromGguf("output.weight"), "lm_head.weight");
  EXPECT_EQ(HfNameFromGguf("rope_freqs.weight"), "rope_freqs.weight");  // outside the table: unchanged
  EXPECT_EQ(HfNameFromGguf("blk.x.attn_q.weight"), "blk.x.attn_q.weight");
  EXPECT_FALSE(RoleFromHfName("model.layers.0.mlp.up_proj.scales"));
  EXPECT_FALSE(RoleFromHfName("model.layers..mlp.up_proj.weight"));
  EXPECT_FALSE(RoleFromHfName("model.layers.-1.mlp.up_proj.weight"));
  const std::optional<RoleAt> up = RoleFromHfName("model.layers.7.mlp.up_proj.weight");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->Label(), "layer 7 w_up");
  EXPECT_EQ(up->role->kind, RoleKind::kLinear);
  EXPECT_FALSE(RoleFromHfName("model.norm.weight")->role->is_matrix());
}

TEST(WeightRoles, ShapesFollowTheConfig) {
  const LlamaConfig c = Config(true, false);
  std::map<std::string, Shape> want = {{"embed", Shape{32, 8}},   {"wq", Shape{8, 8}},   {"wk", Shape{4, 8}},
                                       {"wo", Shape{8, 8}},       {"bk", Shape{4}},      {"w_gate", Shape{16, 8}},
                                       {"w_down", Shape{8, 16}},  {"lm_head", Shape{32, 8}}, {"final_norm", Shape{8}}};
  for (const WeightRole& r : WeightRoles()) {
    auto it = want.find(std::string(r.name));
    if (it != want.end()) {
      EXPECT_EQ(r.ShapeIn(c), it->second) << r.name;
    }
  }
}

}  // namespace
}  // namespace nibble::model
