// HfDirWriter, config.json for a Llama, tokenizer files and the Meta -> HF RoPE row order.
#include "api/hf_dir.h"

#include <fmt/format.h>

#include <filesystem>
#include <vector>

#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/convert.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "tokenizer/hf_tokenizer_writer.h"

namespace nibble::api {
namespace fs = std::filesystem;

HfDirWriter::HfDirWriter(std::string out_dir, bool overwrite, std::vector<std::string> inputs)
    : dir_(std::move(out_dir), overwrite, std::move(inputs)) {}

void HfDirWriter::WriteText(std::string_view name, std::string_view text) {
  dir_.WriteFile(name, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  files_.emplace_back(name);
}

void HfDirWriter::CopyFrom(const std::string& src_path, std::string_view name) {
  const std::string text = io::ReadRegularFile(src_path, "tokenizer file", io::kMaxConfigFileBytes);
  WriteText(name, text);
}

std::vector<std::string> HfDirWriter::Commit() {
  dir_.Commit();
  return files_;
}

nlohmann::json LlamaConfigToHfJson(const model::LlamaConfig& c, std::string_view torch_dtype,
                                   const tokenizer::Vocab* vocab) {
  nlohmann::json j;
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["head_dim"] = c.HeadDim();
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = static_cast<double>(c.rms_norm_eps);
  j["rope_theta"] = static_cast<double>(c.rope_theta);
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  j["mlp_bias"] = false;
  j["torch_dtype"] = std::string(torch_dtype);
  j["use_cache"] = true;
  switch (c.rope_scaling.type) {
    case model::RopeScalingType::kNone:
      break;
    case model::RopeScalingType::kLinear:
      j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
      break;
    case model::RopeScalingType::kLlama3:
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", c.rope_scaling.factor},
                           {"low_freq_factor", c.rope_scaling.low_freq_factor},
                           {"high_freq_factor", c.rope_scaling.high_freq_factor},
                           {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
      break;
    default:
      throw ConfigError(
          "export: the model's RoPE scaling comes from GGUF per-frequency divisors (rope_freqs.weight), which "
          "config.json cannot express");
  }
  if (vocab != nullptr) {
    j["bos_token_id"] = vocab->bos_id >= 0 ? nlohmann::json(vocab->bos_id) : nlohmann::json(nullptr);
    j["eos_token_id"] = vocab->eos_id >= 0 ? nlohmann::json(vocab->eos_id) : nlohmann::json(nullptr);
    if (vocab->pad_id >= 0) j["pad_token_id"] = vocab->pad_id;
  }
  return j;
}

void WriteTokenizerFiles(HfDirWriter& out, const ModelSource& src, const tokenizer::Vocab* vocab,
                         int64_t model_max_length) {
  if (src.format() == FileFormat::kSafetensors) {
    const fs::path dir = fs::is_directory(src.path()) ? fs::path(src.path()) : fs::path(src.path()).parent_path();
    bool any = false;
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                             "generation_config.json"}) {
      if (fs::exists(dir / name)) {
        out.CopyFrom((dir / name).string(), name);
        any = true;
      }
    }
    if (any || vocab == nullptr) return;
  }
  if (vocab == nullptr) return;
  std::string chat_template;
  if (const io::GgufFile* g = src.gguf()) {
    if (const io::GgufKv* kv = g->FindKey("tokenizer.chat_template"))
      if (const auto* s = std::get_if<std::string>(&kv->value.value)) chat_template = *s;
  }
  out.WriteText("tokenizer.json", tokenizer::TokenizerJsonFromVocab(*vocab));
  out.WriteText("tokenizer_config.json",
                tokenizer::TokenizerConfigJsonFromVocab(*vocab, model_max_length, chat_template));
}

void WriteHfModel(HfDirWriter& out, const LoadedModel& m, const model::ParamIndex& index, const float* params,
                  DType dtype) {
  const model::LlamaConfig& c = m.config;
  std::vector<std::vector<float>> permuted;
  std::vector<std::vector<uint8_t>> cast;
  std::vector<io::SafetensorsWriteTensor> tensors;
  for (const model::ParamEntry& e : index.entries()) {
    const float* p = params + e.offset;
    if (const int64_t heads = model::RopeRowHeads(c, e.name)) {
      std::vector<float>& v = permuted.emplace_back(p, p + e.count);
      model::PermuteRopeRows(v.data(), heads, c.HeadDim(), e.shape.rank() == 2 ? e.shape[1] : 1);
      p = v.data();
    }
    if (dtype == DType::kF32) {
      tensors.push_back({e.name, DType::kF32, e.shape, {reinterpret_cast<const uint8_t*>(p), e.count * sizeof(float)}});
    } else {
      std::vector<uint8_t>& b = cast.emplace_back(DTypeBytes(dtype, e.count));
      kernels::ConvertFromF32Parallel(1, dtype, p, b.data(), e.count);
      tensors.push_back({e.name, dtype, e.shape, b});
    }
  }
  io::WriteSafetensors(out.File("model.safetensors"), tensors, {{"format", "pt"}}, io::Existing::kRefuse);
  out.Add("model.safetensors");
  const char* torch_dtype = dtype == DType::kBF16 ? "bfloat16" : dtype == DType::kF16 ? "float16" : "float32";
  nlohmann::json config;
  if (m.source.format() == FileFormat::kSafetensors) {
    const fs::path d = fs::is_directory(m.source.path()) ? fs::path(m.source.path()) : fs::path(m.source.path()).parent_path();
    config = io::ReadJsonObject((d / "config.json").string(), "config.json");
    config.erase("quantization_config");
    config.erase("dtype");
    config["torch_dtype"] = torch_dtype;
  } else {
    config = LlamaConfigToHfJson(c, torch_dtype, m.tokenizer ? &m.tokenizer->vocab() : nullptr);
  }
  out.WriteText("config.json", config.dump(2) + "\n");
  WriteTokenizerFiles(out, m.source, m.tokenizer ? &m.tokenizer->vocab() : nullptr, c.max_position_embeddings);
}

void PermuteMetaToHf(float* data, int64_t heads, int64_t head_dim, int64_t cols, bool inverse) {
  model::PermuteRopeRows(data, heads, head_dim, cols, !inverse);
}

}  // namespace nibble::api
