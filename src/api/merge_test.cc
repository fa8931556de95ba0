// Adapters at inference and `nibble merge`: the merged weights against W + s·B·A computed
// here from the adapter file's own tensors (bit for bit, the product summed in double as
// PEFT's CPU merge), the merged model's logits against the unmerged adapter's (f32
// rounding), and the adapters nibble must refuse (GPT-2's, another model's shapes).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "api/adapter.h"
#include "api/model_loader.h"
#include "io/atomic_writer.h"
#include "io/safetensors.h"
#include "model/llama_batch.h"
#include "nibble/error.h"
#include "nibble/finetune.h"
#include "nibble/model.h"
#include "nibble/quantize.h"
#include "train/adapter_io.h"
#include "util/test_paths.h"

namespace nibble {
namespace {
namespace fs = std::filesystem;

std::string Temp(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("nibble-merge-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

// An adapter on every Linear but lm_head with A and B both drawn (init_lora_weights=false,
// so ΔW ≠ 0), written by nibble's PEFT writer.
void MakeAdapter(const model::LlamaConfig& c, const std::string& dir, bool rslora) {
  peft::LoraConfig lc;
  lc.r = 4;
  lc.lora_alpha = 16;
  lc.target_modules = {"all-linear"};
  lc.init = peft::LoraInit::kNone;
  lc.use_rslora = rslora;
  model::ParamIndex index;
  const peft::LoraModel lora(c, lc, index, 11);
  std::vector<float> p(index.total());
  lora.Init(index, p.data());
  io::AtomicDir d(dir, false, {});
  train::WriteLoraAdapter(d, lora, index, p.data(), "base", c);
  d.Commit();
}

std::vector<float> F32(const io::SafetensorsTensor& t) {
  EXPECT_EQ(t.dtype, DType::kF32) << t.name;
  std::vector<float> v(t.data.size() / 4);
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

TEST(Merge, MergedWeightsAreExactlyWPlusScaledBA) {
  const std::string base = test::SharedData("hf-tiny-random-llama");
  for (const bool rslora : {false, true}) {
    const std::string dir = Temp(rslora ? "rs" : "plain"), adapter = dir + "/adapter", out = dir + "/merged";
    fs::create_directories(dir);
    ExecContext ctx(2);
    api::LoadOptions lo;
    lo.load_tokenizer = false;
    MakeAdapter(api::LoadModel(base, lo, ctx)->config, adapter, rslora);
    MergeOptions o;
    o.model_path = base;
    o.adapter_path = adapter;
    o.out_dir = out;
    const MergeReport r = Merge(o);
    EXPECT_EQ(r.merged_modules, 14u);  // 7 Linears × 2 layers
    const io::SafetensorsFile w0 = io::SafetensorsFile::Open(base + "/model.safetensors");
    const io::SafetensorsFile w1 = io::SafetensorsFile::Open(out + "/model.safetensors");
    const io::SafetensorsFile ad = io::SafetensorsFile::Open(adapter + "/adapter_model.safetensors");
    const double s = rslora ? 16.0 / 2.0 : 16.0 / 4.0;  // alpha/√r or alpha/r
    size_t changed = 0;
    for (const io::SafetensorsTensor& t : w0.tensors()) {
      const io::SafetensorsTensor* m = w1.FindTensor(t.name);
      ASSERT_NE(m, nullptr) << t.name;
      std::vector<float> want = F32(t);
      const std::string module = t.name.substr(0, t.name.size() - 7);  // without ".weight"
      const io::SafetensorsTensor* a = ad.FindTensor("base_model.model." + module + ".lora_A.weight");
      if (a != nullptr) {
        const std::vector<float> A = F32(*a), B = F32(*ad.FindTensor("base_model.model." + module + ".lora_B.weight"));
        const size_t out_dim = static_cast<size_t>(t.shape[0]), in = static_cast<size_t>(t.shape[1]), rk = 4;
        for (size_t oi = 0; oi < out_dim; ++oi)
          for (size_t i = 0; i < in; ++i) {
            double acc = 0;
            for (size_t k = 0; k < rk; ++k) acc += static_cast<double>(B[oi * rk + k]) * A[k * in + i];
            want[oi * in + i] += static_cast<float>(s * acc);
          }
        ++changed;
      }
      const std::vector<float> got = F32(*m);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0) << t.name;
    }
    EXPECT_EQ(changed, 14u);
    fs::remove_all(dir);
  }
}

std::vector<float> Logits(const api::LoadedModel& m, const std::vector<int32_t>& tokens) {
  Allocator alloc;
  model::BatchActivations acts(alloc, alloc, m.config, model::Batch{1, tokens.size(), 0}, 2);
  const model::LinearCall call{2, &alloc, false, 0, m.model->quant_policy()};
  model::ForwardBatch(*m.model, tokens, acts, call);
  return std::vector<float>(acts.logits(), acts.logits() + tokens.size() * static_cast<size_t>(m.config.vocab_size));
}

// stories260K (llama2.c: Meta's RoPE row order, so the merged HF directory has its q/k rows
// permuted): the adapter applied unmerged and the merged model give the same logits to
// f32 rounding (1e-4 of the largest logit: W + ΔW rounded once against two GEMMs summed).
TEST(Merge, MergedLogitsEqualTheUnmergedAdapter) {
  const std::string base = test::SharedData("llama2c-stories260K/stories260K.bin");
  const std::string dir = Temp("logits"), adapter = dir + "/adapter", out = dir + "/merged";
  fs::create_directories(dir);
  ExecContext ctx(2);
  api::LoadOptions lo;
  auto plain = api::LoadModel(base, lo, ctx);
  MakeAdapter(plain->config, adapter, false);
  MergeOptions o;
  o.model_path = base;
  o.adapter_path = adapter;
  o.out_dir = out;
  Merge(o);
  auto with = api::LoadModel(base, lo, ctx);
  std::vector<std::string> warnings;
  const auto attached = api::AttachLoraAdapter(*with, adapter, &warnings);
  auto merged = api::LoadModel(out, lo, ctx);
  const std::vector<int32_t> tokens = plain->tokenizer->Encode("Once upon a time, there was a little dog.", true, false);
  const std::vector<float> l0 = Logits(*plain, tokens), l1 = Logits(*with, tokens), l2 = Logits(*merged, tokens);
  float top = 0, moved = 0;
  for (size_t i = 0; i < l1.size(); ++i) {
    top = std::max(top, std::fabs(l1[i]));
    moved = std::max(moved, std::fabs(l1[i] - l0[i]));
  }
  EXPECT_GT(moved, 0.05f * top);  // the adapter changes the model
  for (size_t i = 0; i < l1.size(); ++i) ASSERT_NEAR(l1[i], l2[i], 1e-4f * top) << i;
  // The same through the public API: -a on a Model.
  ModelOptions mo;
  mo.model_path = base;
  mo.adapter_path = adapter;
  const Model m(mo);
  EXPECT_EQ(m.num_layers(), plain->config.num_hidden_layers);
  fs::remove_all(dir);
}

// An adapter saved for stories260K.bin (held in Meta's RoPE row order) is in PEFT's HF row
// order: applied to the model's HF export (rotate-half rows) it gives the logits it gives
// on the .bin (f32 rounding of the two RoPE layouts: 1e-4 of the largest logit), and the
// q_proj/k_proj lora_B rows in the file are the HF permutation of the trainer's.
TEST(Adapter, MetaOrderModelsAdapterIsInHfRowOrder) {
  const std::string bin = test::SharedData("llama2c-stories260K/stories260K.bin");
  const std::string dir = Temp("order"), adapter = dir + "/adapter", hf = dir + "/hf";
  fs::create_directories(dir);
  ExecContext ctx(2);
  api::LoadOptions lo;
  auto a = api::LoadModel(bin, lo, ctx);
  ASSERT_EQ(a->config.rope_layout, kernels::RopeLayout::kAdjacentPairs);
  MakeAdapter(a->config, adapter, false);
  QuantizeOptions q;
  q.method = "none";
  q.dtype = "f32";
  Quantize(bin, hf, q);
  auto b = api::LoadModel(hf, lo, ctx);
  ASSERT_EQ(b->config.rope_layout, kernels::RopeLayout::kRotateHalf);
  std::vector<std::string> warnings;
  const auto aa = api::AttachLoraAdapter(*a, adapter, &warnings);
  const auto ab = api::AttachLoraAdapter(*b, adapter, &warnings);
  const std::vector<int32_t> tokens = a->tokenizer->Encode("Lily and Tom went to the park to play.", true, false);
  const std::vector<float> la = Logits(*a, tokens), lb = Logits(*b, tokens);
  float top = 0;
  for (float v : la) top = std::max(top, std::fabs(v));
  for (size_t i = 0; i < la.size(); ++i) ASSERT_NEAR(la[i], lb[i], 1e-4f * top) << i;
  // In memory the .bin's adapter holds q_proj's B in Meta order, the file in HF's.
  const io::SafetensorsFile f = io::SafetensorsFile::Open(adapter + "/adapter_model.safetensors");
  const std::string name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  std::vector<float> file = F32(*f.FindTensor(name));
  model::PermuteRopeRows(file.data(), a->config.num_attention_heads, a->config.HeadDim(), 4, /*to_hf=*/false);
  for (const model::ParamEntry& e : aa->index.entries())
    if (e.name == name) {
      EXPECT_EQ(std::memcmp(file.data(), aa->params.data() + e.offset, file.size() * 4), 0);
    }
  fs::remove_all(dir);
}

TEST(Adapter, Gpt2AdapterIsReadAndRefusedAsUnsupportedArchitecture) {
  const std::string gpt2 = test::SharedData("peft-lora-gpt2");
  const train::AdapterSummary s = train::ReadAdapterSummary(gpt2);
  EXPECT_EQ(s.architecture, "gpt2");
  EXPECT_EQ(s.r, 8);
  EXPECT_EQ(s.base_model, "gpt2");
  EXPECT_EQ(s.modules, 36u);  // 12 blocks × attn.c_attn, attn.c_proj, mlp.c_proj
  ModelOptions mo;
  mo.model_path = test::SharedData("llama2c-stories260K/stories260K.bin");
  mo.adapter_path = gpt2;
  try {
    const Model m(mo);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported architecture: gpt2"), std::string::npos) << e.what();
  }
}

TEST(Adapter, AnotherModelsAdapterIsRefusedNamingTheTensor) {
  const std::string dir = Temp("mismatch");
  fs::create_directories(dir);
  ExecContext ctx(2);
  api::LoadOptions lo;
  lo.load_tokenizer = false;
  MakeAdapter(api::LoadModel(test::SharedData("hf-tiny-random-llama"), lo, ctx)->config, dir + "/a", false);
  ModelOptions mo;
  mo.model_path = test::SharedData("llama2c-stories260K/stories260K.bin");
  mo.adapter_path = dir + "/a";
  try {
    const Model m(mo);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("expected shape"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lora_A.weight"), std::string::npos) << e.what();
  }
  MergeOptions o;
  o.model_path = mo.model_path;
  o.adapter_path = dir + "/a";
  o.out_dir = dir + "/out";
  EXPECT_THROW(Merge(o), ConfigError);
  EXPECT_FALSE(fs::exists(dir + "/out"));
  fs::remove_all(dir);
}

// A bitsandbytes NF4 base (QLoRA's): the merge dequantizes it (warned), and the merged
// model's logits equal the adapter applied unmerged to the 4-bit base (f32 compute: both
// use the same dequantized weights; 1e-4 of the largest logit). --quantize nf4 writes a
// 4-bit checkpoint again and reports the rounding it added.
TEST(Merge, IntoAQuantizedBaseDequantizesAndCanRequantize) {
  const std::string bin = test::SharedData("llama2c-stories260K/stories260K.bin");
  const std::string dir = Temp("nf4"), nf4 = dir + "/nf4", adapter = dir + "/adapter";
  fs::create_directories(dir);
  QuantizeOptions q;
  q.method = "nf4";
  q.double_quant = true;
  q.skip_modules = {};  // every Linear quantized
  Quantize(bin, nf4, q);
  ExecContext ctx(2);
  api::LoadOptions lo;
  auto base = api::LoadModel(nf4, lo, ctx);
  MakeAdapter(base->config, adapter, false);
  MergeOptions o;
  o.model_path = nf4;
  o.adapter_path = adapter;
  o.out_dir = dir + "/merged";
  const MergeReport r = Merge(o);
  ASSERT_FALSE(r.warnings.empty());
  bool warned = false;
  for (const std::string& w : r.warnings) warned |= w.find("dequantized before the merge") != std::string::npos;
  EXPECT_TRUE(warned);
  std::vector<std::string> warnings;
  const auto attached = api::AttachLoraAdapter(*base, adapter, &warnings);
  auto merged = api::LoadModel(o.out_dir, lo, ctx);
  const std::vector<int32_t> tokens = base->tokenizer->Encode("The cat sat on the mat.", true, false);
  const std::vector<float> l1 = Logits(*base, tokens), l2 = Logits(*merged, tokens);
  float top = 0;
  for (float v : l1) top = std::max(top, std::fabs(v));
  for (size_t i = 0; i < l1.size(); ++i) ASSERT_NEAR(l1[i], l2[i], 1e-4f * top) << i;

  o.out_dir = dir + "/requant";
  o.quantize = "nf4";
  o.double_quant = true;
  const MergeReport rq = Merge(o);
  EXPECT_GT(rq.requant_rms_error, 0);
  EXPECT_TRUE(fs::exists(dir + "/requant/config.json"));
  auto requant = api::LoadModel(dir + "/requant", lo, ctx);
  EXPECT_TRUE(requant->quant_config.has_value());
  for (const auto& e : fs::directory_iterator(dir))  // the f32 merge in between is gone
    EXPECT_EQ(e.path().filename().string().find(".nibble-tmp-"), std::string::npos) << e.path();
  fs::remove_all(dir);
}

// ---- PEFT's own adapters (tests/golden/peft, scripts/goldens/make_peft_goldens.py) ----

struct PeftCase {
  const char* dir;  // under tests/golden/peft
  const char* base; // "hf-tiny", "stories-bin" (Meta row order), "stories-hf" (nibble's HF export)
};

class PeftGolden : public ::testing::TestWithParam<PeftCase> {};

// PEFT's logits (f32, eager attention) against nibble's with the adapter applied unmerged:
// 1e-4 of the largest logit, as the transformers logits test (f32 rounding is ~1e-6 there;
// a wrong scale, a missed target or a wrong row order moves them by 1e-1 or more: the
// adapters move the logits by 0.5 (hf-tiny) to 23 (stories260K)). The whole-vocabulary
// logsumexp checks the columns not stored. The base logits are checked too, so a
// difference can only come from the adapter.
TEST_P(PeftGolden, NibbleReproducesPeftsLogits) {
  const PeftCase c = GetParam();
  const std::string dir = test::SourcePath(std::string("tests/golden/peft/") + c.dir);
  const io::SafetensorsFile ref = io::SafetensorsFile::Open(dir + "/reference.safetensors");
  const io::SafetensorsTensor* ids_t = ref.FindTensor("input_ids");
  ASSERT_NE(ids_t, nullptr);
  std::vector<int32_t> ids(ids_t->data.size() / 4);
  std::memcpy(ids.data(), ids_t->data.data(), ids_t->data.size());
  const std::vector<float> want = F32(*ref.FindTensor("logits")), base_want = F32(*ref.FindTensor("base_logits"));
  const std::vector<float> lse = F32(*ref.FindTensor("lse"));
  const size_t T = ids.size(), C = want.size() / T;

  const std::string tmp = Temp(std::string("peft-") + c.dir + "-" + c.base);
  fs::create_directories(tmp);
  std::string model_path;
  api::LoadOptions lo;
  if (std::string(c.base) == "hf-tiny") {
    model_path = test::SharedData("hf-tiny-random-llama");
    lo.load_tokenizer = false;
  } else {
    model_path = test::SharedData("llama2c-stories260K/stories260K.bin");
    if (std::string(c.base) == "stories-hf") {
      QuantizeOptions q;
      q.method = "none";
      q.dtype = "f32";
      Quantize(model_path, tmp + "/hf", q);
      model_path = tmp + "/hf";
    }
  }
  ExecContext ctx(2);
  auto base = api::LoadModel(model_path, lo, ctx);
  auto tuned = api::LoadModel(model_path, lo, ctx);
  std::vector<std::string> warnings;
  const auto adapter = api::AttachLoraAdapter(*tuned, dir, &warnings);
  const std::vector<float> got = Logits(*tuned, ids), base_got = Logits(*base, ids);
  const size_t V = got.size() / T;
  float top = 0;
  for (float v : want) top = std::max(top, std::fabs(v));
  for (size_t t = 0; t < T; ++t) {
    for (size_t v = 0; v < C; ++v) {
      ASSERT_NEAR(got[t * V + v], want[t * C + v], 1e-4f * top) << "position " << t << " token " << v;
      ASSERT_NEAR(base_got[t * V + v], base_want[t * C + v], 1e-4f * top) << "base, position " << t << " token " << v;
    }
    double m = -INFINITY, sum = 0;
    for (size_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(got[t * V + v]));
    for (size_t v = 0; v < V; ++v) sum += std::exp(got[t * V + v] - m);
    EXPECT_NEAR(m + std::log(sum), lse[t], 1e-4 * top) << "position " << t;
  }
  fs::remove_all(tmp);
}

INSTANTIATE_TEST_SUITE_P(Adapters, PeftGolden,
                         ::testing::Values(PeftCase{"hf-tiny-random-llama-plain", "hf-tiny"},
                                           PeftCase{"hf-tiny-random-llama-rslora", "hf-tiny"},
                                           PeftCase{"stories260K-plain", "stories-bin"},
                                           PeftCase{"stories260K-plain", "stories-hf"},
                                           PeftCase{"stories260K-rslora", "stories-bin"},
                                           PeftCase{"stories260K-rslora", "stories-hf"}),
                         [](const ::testing::TestParamInfo<PeftCase>& i) {
                           std::string n = std::string(i.param.dir) + "_" + i.param.base;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace nibble
