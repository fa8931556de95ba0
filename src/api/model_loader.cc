// LoadModel: LlamaConfig from the file's own keys (llama2.c header, GGUF `llama.*`,
// HF config.json), weights bound by their HF names (GGUF names translated), f32 views
// borrowed from the map or converted into owned tensors, and the tokenizer.
#include "api/model_loader.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/cpu_features.h"
#include "io/mapped_file.h"
#include "io/text_file.h"
#include "kernels/convert.h"
#include "kernels/nonfinite.h"
#include "nibble/error.h"
#include "quant/qgemv4_i8.h"
#include "quant/registry.h"

namespace nibble::api {
namespace {
namespace fs = std::filesystem;

// llama2.c run.c hard-codes these (rmsnorm epsilon and RoPE base).
constexpr float kLlama2cRmsEps = 1e-5f;
constexpr float kLlama2cRopeTheta = 10000.0f;
// llama.cpp's defaults for absent GGUF keys (llama_hparams / llm_load_hparams).
constexpr double kGgufDefaultRopeBase = 10000.0;
constexpr double kGgufDefaultRmsEps = 1e-5;

model::LlamaConfig ConfigFromLlama2c(const io::Llama2cConfig& h) {
  model::LlamaConfig c;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.vocab_size = h.vocab_size;
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = kLlama2cRmsEps;
  c.rope_theta = kLlama2cRopeTheta;
  c.tie_word_embeddings = h.shared_classifier;
  c.rope_layout = kernels::RopeLayout::kAdjacentPairs;  // q/k rows keep the Meta order
  return c;
}

// Typed access to GGUF metadata with errors naming the key.
struct GgufKeys {
  const io::GgufFile& g;

  const io::GgufValue* Find(const std::string& key) const {
    const io::GgufKv* kv = g.FindKey(key);
    return kv == nullptr ? nullptr : &kv->value;
  }
  const io::GgufValue& Require(const std::string& key) const {
    const io::GgufValue* v = Find(key);
    if (v == nullptr) throw ConfigError(fmt::format("{}: GGUF key '{}' is missing", g.source(), key));
    return *v;
  }
  int64_t Int(const std::string& key, const io::GgufValue& v) const {
    if (const auto* u = std::get_if<uint64_t>(&v.value); u && *u <= static_cast<uint64_t>(INT64_MAX))
      return static_cast<int64_t>(*u);
    if (const auto* i = std::get_if<int64_t>(&v.value)) return *i;
    throw ConfigError(fmt::format("{}: GGUF key '{}': expected an integer, got {} {}", g.source(), key,
                                  GgufValueTypeName(v), GgufValueToString(v)));
  }
  int64_t Int(const std::string& key) const { return Int(key, Require(key)); }
  // A size: an integer >= 1 (0 would otherwise surface later as an unrelated error).
  int64_t Positive(const std::string& key, int64_t v) const {
    if (v < 1) throw ConfigError(fmt::format("{}: GGUF key '{}': expected a positive integer, got {}", g.source(), key, v));
    return v;
  }
  int64_t Positive(const std::string& key) const { return Positive(key, Int(key)); }
  int64_t IntOr(const std::string& key, int64_t fallback) const {
    const io::GgufValue* v = Find(key);
    return v == nullptr ? fallback : Int(key, *v);
  }
  double FloatOr(const std::string& key, double fallback) const {
    const io::GgufValue* v = Find(key);
    if (v == nullptr) return fallback;
    if (const auto* d = std::get_if<double>(&v->value)) return *d;
    throw ConfigError(
        fmt::format("{}: GGUF key '{}': expected a float, got {}", g.source(), key, GgufValueTypeName(*v)));
  }
  std::string String(const std::string& key) const {
    const io::GgufValue& v = Require(key);
    if (const auto* s = std::get_if<std::string>(&v.value)) return *s;
    throw ConfigError(
        fmt::format("{}: GGUF key '{}': expected a string, got {}", g.source(), key, GgufValueTypeName(v)));
  }
};

model::LlamaConfig ConfigFromGguf(const io::GgufFile& g) {
  const GgufKeys k{g};
  const std::string arch = k.String("general.architecture");
  if (arch != "llama")
    throw ConfigError(
        fmt::format("{}: unsupported architecture: GGUF key 'general.architecture' is \"{}\", expected \"llama\"",
                    g.source(), arch));
  model::LlamaConfig c;
  c.hidden_size = k.Positive("llama.embedding_length");
  c.intermediate_size = k.Positive("llama.feed_forward_length");
  c.num_hidden_layers = k.Positive("llama.block_count");
  c.num_attention_heads = k.Positive("llama.attention.head_count");
  c.num_key_value_heads =
      k.Positive("llama.attention.head_count_kv", k.IntOr("llama.attention.head_count_kv", c.num_attention_heads));
  c.head_dim = k.IntOr("llama.attention.key_length", 0);
  c.max_position_embeddings = k.Positive("llama.context_length");
  c.rms_norm_eps = static_cast<float>(k.FloatOr("llama.attention.layer_norm_rms_epsilon", kGgufDefaultRmsEps));
  c.rope_theta = static_cast<float>(k.FloatOr("llama.rope.freq_base", kGgufDefaultRopeBase));
  if (const io::GgufValue* s = k.Find("llama.rope.scaling.type")) {
    const auto* type = std::get_if<std::string>(&s->value);
    if (type != nullptr && *type == "linear") {
      c.rope_scaling.type = model::RopeScalingType::kLinear;
      c.rope_scaling.factor = static_cast<float>(k.FloatOr("llama.rope.scaling.factor", 1.0));
    } else if (type == nullptr || *type != "none") {
      throw ConfigError(fmt::format(
          "{}: GGUF key 'llama.rope.scaling.type' = {}: only \"none\" and \"linear\" are supported", g.source(),
          GgufValueToString(*s)));
    }
  }
  // llama.cpp's converter stores Llama 3.1 scaling as per-frequency divisors.
  if (const io::GgufTensor* f = g.FindTensor("rope_freqs.weight")) {
    if (c.rope_scaling.type != model::RopeScalingType::kNone)
      throw ConfigError(fmt::format("{}: both 'llama.rope.scaling.type' and tensor 'rope_freqs.weight' are present",
                                    g.source()));
    const bool floats = kernels::IsConvertible(f->dtype) && f->shape.rank() == 1 &&
                        f->data.size() == DTypeBytes(f->dtype, static_cast<uint64_t>(f->shape.NumElems()));
    if (!floats)
      throw ConfigError(fmt::format("{}: tensor 'rope_freqs.weight' must be a 1-D float tensor, got {} {}",
                                    g.source(), DTypeName(f->dtype), f->shape.ToString()));
    c.rope_scaling.type = model::RopeScalingType::kFreqFactors;
    c.rope_scaling.freq_factors.resize(static_cast<size_t>(f->shape.NumElems()));
    kernels::ConvertToF32Parallel(1, f->dtype, f->data.data(), c.rope_scaling.freq_factors.data(),
                                  c.rope_scaling.freq_factors.size());
  }
  // Partial rotary embeddings (fewer rotated dims than the head has) are not implemented.
  if (const io::GgufValue* rd = k.Find("llama.rope.dimension_count")) {
    const int64_t dims = k.Int("llama.rope.dimension_count", *rd);
    const int64_t head_dim =
        c.head_dim > 0 ? c.head_dim : (c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
    if (dims != head_dim)
      throw ConfigError(
          fmt::format("{}: GGUF key 'llama.rope.dimension_count' is {} but the head dimension is {}: "
                      "partial RoPE is not supported",
                      g.source(), dims, head_dim));
  }
  // Vocabulary size: llama.vocab_size, else the token embedding's rows.
  if (const io::GgufValue* v = k.Find("llama.vocab_size")) {
    c.vocab_size = k.Int("llama.vocab_size", *v);
  } else if (const io::GgufTensor* e = g.FindTensor("token_embd.weight"); e && e->shape.rank() == 2) {
    c.vocab_size = e->shape.dims()[0];
  } else {
    throw ConfigError(
        fmt::format("{}: neither GGUF key 'llama.vocab_size' nor tensor 'token_embd.weight' gives the vocabulary size",
                    g.source()));
  }
  c.tie_word_embeddings = g.FindTensor("output.weight") == nullptr;
  c.attention_bias = g.FindTensor("blk.0.attn_q.bias") != nullptr;
  // llama.cpp's converter permutes HF q/k rows into the Meta (adjacent-pair) order.
  c.rope_layout = kernels::RopeLayout::kAdjacentPairs;
  return c;
}

// One rope_scaling / rope_parameters object. Types other than default, linear and
// llama3 (dynamic NTK, yarn, longrope) are a ConfigError naming the value.
model::RopeScaling RopeScalingFromHf(const nlohmann::json& r, const char* field, const std::string& cfg,
                                     int64_t max_positions, float& rope_theta) {
  if (!r.is_object()) throw ConfigError(fmt::format("{}: field '{}' must be an object, got {}", cfg, field, r.dump()));
  auto num = [&](const char* key, double fallback) -> double {
    if (!r.contains(key) || r[key].is_null()) return fallback;
    if (!r[key].is_number())
      throw ConfigError(fmt::format("{}: field '{}.{}' must be a number, got {}", cfg, field, key, r[key].dump()));
    return r[key].get<double>();
  };
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (r.contains(key) && r[key].is_string()) {
      type = r[key].get<std::string>();
      break;
    }
  }
  if (r.contains("rope_theta")) rope_theta = static_cast<float>(num("rope_theta", rope_theta));
  model::RopeScaling s;
  if (type == "default") return s;
  auto require = [&](const char* key) {
    if (!r.contains(key) || r[key].is_null())
      throw ConfigError(fmt::format("{}: field '{}.{}' is missing (rope_type \"{}\")", cfg, field, key, type));
    return num(key, 0);
  };
  if (type == "linear") {
    s.type = model::RopeScalingType::kLinear;
    s.factor = static_cast<float>(require("factor"));
  } else if (type == "llama3") {
    s.type = model::RopeScalingType::kLlama3;
    s.factor = static_cast<float>(require("factor"));
    s.low_freq_factor = static_cast<float>(require("low_freq_factor"));
    s.high_freq_factor = static_cast<float>(require("high_freq_factor"));
    const double orig = num("original_max_position_embeddings", static_cast<double>(max_positions));
    if (orig != std::floor(orig) || orig < 1 || orig > 1e9)
      throw ConfigError(fmt::format("{}: field '{}.original_max_position_embeddings' must be a positive integer, got {}",
                                    cfg, field, orig));
    s.original_max_position_embeddings = static_cast<int64_t>(orig);
  } else {
    throw ConfigError(fmt::format(
        "{}: field '{}' has rope_type \"{}\": only default, linear and llama3 are supported", cfg, field, type));
  }
  return s;
}

model::LlamaConfig ConfigFromHf(const std::string& path) {
  const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  const std::string cfg = (dir / "config.json").string();
  const std::optional<nlohmann::json> parsed = io::ReadJsonObjectIfExists(cfg, "config.json");
  if (!parsed) throw ConfigError(fmt::format("{}: config.json is missing (needed for the architecture)", cfg));
  const nlohmann::json& j = *parsed;
  auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  auto get_int = [&](const char* key) -> int64_t {
    if (!has(key)) throw ConfigError(fmt::format("{}: field '{}' is missing", cfg, key));
    if (!j[key].is_number_integer())
      throw ConfigError(fmt::format("{}: field '{}' must be an integer, got {}", cfg, key, j[key].dump()));
    return j[key].get<int64_t>();
  };
  auto get_float = [&](const char* key, double fallback) -> double {
    if (!has(key)) return fallback;
    if (!j[key].is_number())
      throw ConfigError(fmt::format("{}: field '{}' must be a number, got {}", cfg, key, j[key].dump()));
    return j[key].get<double>();
  };
  auto get_bool = [&](const char* key, bool fallback) -> bool {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean())
      throw ConfigError(fmt::format("{}: field '{}' must be true or false, got {}", cfg, key, j[key].dump()));
    return j[key].get<bool>();
  };
  const std::string type = has("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (type != "llama" && type != "mistral" && type != "qwen2")
    throw ConfigError(fmt::format(
        "{}: unsupported architecture: field 'model_type' is \"{}\", expected llama, mistral or qwen2", cfg, type));
  model::LlamaConfig c;
  c.hidden_size = get_int("hidden_size");
  c.intermediate_size = get_int("intermediate_size");
  c.num_hidden_layers = get_int("num_hidden_layers");
  c.num_attention_heads = get_int("num_attention_heads");
  c.num_key_value_heads = has("num_key_value_heads") ? get_int("num_key_value_heads") : c.num_attention_heads;
  c.head_dim = has("head_dim") ? get_int("head_dim") : 0;
  c.vocab_size = get_int("vocab_size");
  c.max_position_embeddings = get_int("max_position_embeddings");
  // transformers' LlamaConfig defaults.
  c.rms_norm_eps = static_cast<float>(get_float("rms_norm_eps", 1e-6));
  c.rope_theta = static_cast<float>(get_float("rope_theta", 10000.0));
  c.tie_word_embeddings = get_bool("tie_word_embeddings", false);
  c.attention_bias = type == "qwen2" || get_bool("attention_bias", false);
  c.rope_layout = kernels::RopeLayout::kRotateHalf;
  // transformers <= 4.x: "rope_scaling" {"type"|"rope_type", ...}; 5.x may write
  // "rope_parameters" {"rope_type", "rope_theta", ...} instead.
  for (const char* field : {"rope_scaling", "rope_parameters"}) {
    if (has(field)) c.rope_scaling = RopeScalingFromHf(j[field], field, cfg, c.max_position_embeddings, c.rope_theta);
  }
  return c;
}

}  // namespace

std::string GgufToHfName(const std::string& name) { return model::HfNameFromGguf(name); }

namespace {

// An f32 view of `t`: the mapped bytes themselves when they are f32 and 4-byte
// aligned, else a converted copy appended to `owned`.
ConstTensorView F32View(const SourceTensor& t, const std::string& file, ExecContext& ctx, std::vector<Tensor>& owned) {
  Tensor scratch;
  const float* v = SourceAsF32(ctx, t, file, scratch);
  if (scratch.data() == nullptr) return {v, DType::kF32, t.shape};  // borrowed: aligned f32 in the map
  owned.push_back(std::move(scratch));
  return {owned.back().data(), DType::kF32, t.shape};
}

// Matrices are the roles a matmul reads (embedding, projections, classifier); norms
// and biases stay f32 whatever WeightDtype asks for.
bool IsMatrix(std::string_view hf_name) {
  const std::optional<model::RoleAt> r = model::RoleFromHfName(hf_name);
  return r && r->role->is_matrix();
}

// A view of matrix `t` in the dtype `want` asks for: bf16-stored data is borrowed when
// bf16 is wanted (kAuto, kBf16) and aligned; anything else goes through an f32 view and,
// for kBf16, is rounded to bf16 into `owned` (the f32 temporary is released at once).
ConstTensorView MatrixView(const SourceTensor& t, WeightDtype want, const std::string& file, ExecContext& ctx,
                           std::vector<Tensor>& owned) {
  if (want == WeightDtype::kF32) return F32View(t, file, ctx, owned);
  const int64_t n = t.shape.NumElems();
  if (t.dtype == DType::kBF16 && t.data.size() == DTypeBytes(DType::kBF16, static_cast<uint64_t>(n)) &&
      reinterpret_cast<uintptr_t>(t.data.data()) % alignof(uint16_t) == 0)
    return {t.data.data(), DType::kBF16, t.shape};
  if (want == WeightDtype::kAuto) return F32View(t, file, ctx, owned);
  std::vector<Tensor> f32_tmp;
  const ConstTensorView f32 = F32View(t, file, ctx, f32_tmp);
  Tensor out(ctx.allocator(), DType::kBF16, t.shape);
  kernels::ConvertFromF32Parallel(ctx.num_threads(), DType::kBF16, static_cast<const float*>(f32.data), out.data(),
                                  static_cast<size_t>(n));
  owned.push_back(std::move(out));
  return owned.back().view();
}

}  // namespace

std::vector<std::string> LinearWeightNames(const model::LlamaConfig& c) {
  std::vector<std::string> names;
  model::ForEachRole(c, [&](const model::RoleAt& r) {
    if (r.role->kind == model::RoleKind::kLinear) names.push_back(r.HfName());
  });
  return names;
}

std::optional<io::QuantizationConfig> QuantConfigFromSource(const ModelSource& src) {
  if (src.format() != FileFormat::kSafetensors) return std::nullopt;
  const fs::path dir = fs::is_directory(src.path()) ? fs::path(src.path()) : fs::path(src.path()).parent_path();
  const std::string cfg = (dir / "config.json").string();
  const std::optional<nlohmann::json> parsed = io::ReadJsonObjectIfExists(cfg, "config.json");
  if (!parsed) return std::nullopt;
  const nlohmann::json& j = *parsed;
  if (!j.contains("quantization_config") || j["quantization_config"].is_null()) return std::nullopt;
  return io::ParseQuantizationConfig(j["quantization_config"], cfg);
}

model::LlamaConfig ConfigFromSource(const ModelSource& src) {
  switch (src.format()) {
    case FileFormat::kLlama2c:
      return ConfigFromLlama2c(src.llama2c()->config());
    case FileFormat::kGguf:
      return ConfigFromGguf(*src.gguf());
    case FileFormat::kSafetensors:
      return ConfigFromHf(src.path());
  }
  throw ConfigError(fmt::format("{}: unknown format", src.path()));
}

std::unique_ptr<LoadedModel> LoadModel(const std::string& path, const LoadOptions& options, ExecContext& ctx) {
  auto m = std::make_unique<LoadedModel>(LoadedModel{ModelSource::Open(path), {}, {}, {}, std::nullopt, nullptr, nullptr, {}});
  m->config = ConfigFromSource(m->source);
  m->config.Validate();
  if (options.load_tokenizer) {
    tokenizer::Vocab vocab;
    if (!options.tokenizer_path.empty()) {
      m->tokenizer_source = options.tokenizer_path;
      vocab = VocabFromFile(options.tokenizer_path, m->config.vocab_size);
    } else if (m->source.format() == FileFormat::kGguf) {
      m->tokenizer_source = path;
      vocab = VocabFromGguf(*m->source.gguf());
    } else if (m->source.format() == FileFormat::kLlama2c) {
      m->tokenizer_source = FindDefaultTokenizer(path);
      vocab = VocabFromFile(m->tokenizer_source, m->config.vocab_size);
    } else {
      m->tokenizer_source = FindHfTokenizer(path);
      vocab = VocabFromFile(m->tokenizer_source, m->config.vocab_size);
    }
    if (vocab.size() != m->config.vocab_size)
      throw ConfigError(fmt::format("{}: tokenizer has {} tokens but the model's vocab_size is {}", m->tokenizer_source,
                                    vocab.size(), m->config.vocab_size));
    m->tokenizer = std::make_unique<tokenizer::Tokenizer>(std::move(vocab), m->tokenizer_source);
  }
  if (options.load_weights) {
    std::map<std::string, const SourceTensor*, std::less<>> by_hf_name;
    const bool gguf = m->source.format() == FileFormat::kGguf;
    for (const SourceTensor& t : m->source.tensors()) by_hf_name[gguf ? GgufToHfName(t.name) : t.name] = &t;
    // Converted copies are appended while binding (a Tensor's storage stays put when
    // the vector grows, so earlier views remain valid).
    m->owned.reserve(m->source.tensors().size());
    const auto lookup = [&](std::string_view name) -> std::optional<ConstTensorView> {
      auto it = by_hf_name.find(name);
      if (it == by_hf_name.end()) return std::nullopt;
      const SourceTensor& t = *it->second;
      // The source bytes, scanned once (this also faults in the mapped pages the first
      // forward pass would read anyway); converted copies of finite values are finite.
      if (!options.allow_nonfinite && IsFloat(t.dtype) &&
          t.data.size() == DTypeBytes(t.dtype, static_cast<uint64_t>(t.shape.NumElems()))) {
        const int64_t bad = kernels::FindNonFinite(ctx.num_threads(), t.dtype, t.data.data(), t.shape.NumElems());
        if (bad >= 0) throw NonFiniteError(path, t.name, bad);
      }
      return IsMatrix(name) ? MatrixView(*it->second, options.weights, path, ctx, m->owned)
                            : F32View(*it->second, path, ctx, m->owned);
    };
    // Quantized Linears (bitsandbytes 4/8-bit, nibble formats) become QTensors.
    std::map<std::string, const quant::QTensor*, std::less<>> quantized;
    m->quant_config = QuantConfigFromSource(m->source);
    if (m->quant_config) {
      const io::RawLookup raw = [&](std::string_view name) -> std::optional<io::RawTensor> {
        auto it = by_hf_name.find(name);
        if (it == by_hf_name.end()) return std::nullopt;
        return io::RawTensor{it->second->dtype, it->second->shape, it->second->data};
      };
      for (const std::string& name : LinearWeightNames(m->config)) {
        const std::string prefix = name.substr(0, name.size() - std::string_view(".weight").size());
        if (io::IsQuantizedLinear(raw, prefix)) {
          m->quantized.push_back(std::make_unique<quant::QTensor>(
              io::ReadQuantizedLinear(raw, prefix, path, *m->quant_config, ctx.allocator())));
          quantized[name] = m->quantized.back().get();
        } else if (m->quant_config->kind == io::QuantizationConfig::Kind::kBnb8bit &&
                   m->quant_config->llm_int8_has_fp16_weight && by_hf_name.count(name) &&
                   !io::SkippedModule(prefix, m->quant_config->llm_int8_skip_modules.value_or(
                                                  std::vector<std::string>{"lm_head"}))) {
          // llm_int8_has_fp16_weight (spec §5.6): the checkpoint keeps 16-bit weights and
          // bitsandbytes quantizes them to CB/SCB when the layer runs; nibble does it at load.
          std::vector<Tensor> tmp;
          const ConstTensorView w = F32View(*by_hf_name[name], path, ctx, tmp);
          m->quantized.push_back(std::make_unique<quant::QTensor>(quant::QuantizeMatrix(
              ctx.allocator(), static_cast<const float*>(w.data), w.shape, by_hf_name[name]->dtype,
              {.method = quant::QuantMethod::kLlmInt8, .threshold = static_cast<float>(m->quant_config->llm_int8_threshold)},
              ctx.num_threads())));
          quantized[name] = m->quantized.back().get();
        }
      }
    }
    m->checkpoint_quantized_layers = static_cast<int64_t>(m->quantized.size());
    if (options.quantize_linears) {
      // QLoRA / k-bit LoRA: the stored Linear weights quantized at load (lm_head skipped, as
      // transformers' BitsAndBytesConfig skips it); the mapped pages are dropped after each.
      for (const std::string& name : LinearWeightNames(m->config)) {
        auto it = by_hf_name.find(name);
        if (name == "lm_head.weight" || quantized.count(name) || it == by_hf_name.end()) continue;
        const SourceTensor& t = *it->second;
        if (IsFloat(t.dtype) && t.data.size() == DTypeBytes(t.dtype, static_cast<uint64_t>(t.shape.NumElems()))) {
          const int64_t bad = kernels::FindNonFinite(ctx.num_threads(), t.dtype, t.data.data(), t.shape.NumElems());
          if (bad >= 0) throw NonFiniteError(path, t.name, bad);  // has no quantized form
        }
        std::vector<Tensor> tmp;
        const ConstTensorView w = F32View(t, path, ctx, tmp);
        m->quantized.push_back(std::make_unique<quant::QTensor>(
            quant::QuantizeMatrix(ctx.allocator(), static_cast<const float*>(w.data), w.shape,
                                  IsFloat(t.dtype) ? t.dtype : DType::kF32, *options.quantize_linears,
                                  ctx.num_threads())));
        quantized[name] = m->quantized.back().get();
        io::DropPages(t.data);
      }
      m->load_quantized_layers = static_cast<int64_t>(m->quantized.size()) - m->checkpoint_quantized_layers;
    }
    if (options.int8_activations) {
      for (const auto& q : m->quantized) m->int8_activation_layers += quant::SupportsInt8Activations(*q) ? 1 : 0;
    }
    const model::QuantizedLookup qlookup = [&](std::string_view name) -> const quant::QTensor* {
      auto it = quantized.find(name);
      return it == quantized.end() ? nullptr : it->second;
    };
    model::LlamaWeights weights = model::BindHfTensors(m->config, lookup, qlookup);
    m->classifier_was_quantized = !m->config.tie_word_embeddings && weights.lm_head.q != nullptr;
    if (options.int8_classifier && !m->classifier_was_quantized) {
      const ConstTensorView cls = weights.Classifier(m->config).dense;
      m->quantized.push_back(std::make_unique<quant::QTensor>(quant::QuantizeLlmInt8Stored(
          ctx.allocator(), cls.data, cls.dtype, cls.shape, cls.dtype, /*threshold=*/0.0f, ctx.num_threads())));
      weights.classifier_q = m->quantized.back().get();
    }
    m->model = std::make_unique<model::LlamaModel>(
        m->config, std::move(weights),
        quant::QLinearPolicy{.compute = options.compute, .int8_activations = options.int8_activations});
  }
  return m;
}

model::LlamaConfig ConfigFromHfConfigJson(const std::string& path) { return ConfigFromHf(path); }

std::vector<std::string> Int8OptionWarnings(const LoadedModel& m, const LoadOptions& options) {
  std::vector<std::string> w;
  if (options.int8_activations && m.int8_activation_layers == 0) {
    if (m.checkpoint_quantized_layers == 0) {
      w.emplace_back("--int8-activations: the model has no quantized layers (write one with `nibble quantize "
                     "--method nf4`); it runs as without the option");
    } else {
      w.push_back(fmt::format("--int8-activations: none of the {} quantized layers is 4-bit with rows of whole "
                              "blocks of a multiple of 64 (the model runs as without the option)",
                              m.checkpoint_quantized_layers));
    }
  } else if (options.int8_activations && quant::ChooseInt8ActivationsPath() == quant::Int8ActivationsPath::kRef) {
    w.emplace_back(fmt::format("--int8-activations: the CPU cap is {} (no AVX2 or AVX512-VNNI kernel may run), so the "
                               "int8 path runs its scalar reference (correct, much slower than without the option)",
                               CpuLevelName(EffectiveCpuLevel())));
  }
  if (options.int8_classifier && m.classifier_was_quantized)
    w.emplace_back("--int8-classifier: the checkpoint's lm_head is already quantized; it runs as stored");
  return w;
}

}  // namespace nibble::api
