// nibble::Finetune: load, tokenize and pack the text, build the trainer, run the steps,
// write the adapter or model directory with metrics.jsonl.
#include "nibble/finetune.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "api/hf_dir.h"
#include "api/model_impl.h"
#include "api/model_loader.h"
#include "core/memory_probe.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "optim/schedule.h"
#include "train/adapter_io.h"
#include "train/trainer.h"

namespace nibble {
namespace fs = std::filesystem;
namespace {

void CheckOptions(const FinetuneOptions& o) {
  if (o.model_path.empty()) throw ConfigError("option 'model_path' (-m) is required");
  if (o.text_path.empty()) throw ConfigError("option 'text_path' (--text) is required");
  if (o.out_dir.empty()) throw ConfigError("option 'out_dir' (-o) is required");
  auto positive = [](int64_t v, const char* name, int64_t max) {
    if (v < 1 || v > max) throw ConfigError(fmt::format("option '{}': expected 1..{}, got {}", name, max, v));
  };
  positive(o.seq_len, "seq_len", 1 << 20);
  positive(o.batch_size, "batch_size", 1 << 16);
  positive(o.grad_accum, "grad_accum", 1 << 16);
  positive(o.max_steps, "max_steps", int64_t{1} << 40);
  positive(o.logging_steps, "logging_steps", int64_t{1} << 40);
  if (o.warmup_steps < 0) throw ConfigError(fmt::format("option 'warmup_steps': expected >= 0, got {}", o.warmup_steps));
  if (!(o.max_grad_norm >= 0) || !std::isfinite(o.max_grad_norm))
    throw ConfigError(fmt::format("option 'max_grad_norm': expected >= 0, got {}", o.max_grad_norm));
  if (o.num_threads != 0) CheckThreadCount(o.num_threads, "num_threads");
}

train::TrainConfig ToTrainConfig(const FinetuneOptions& o) {
  train::TrainConfig c;
  c.method = train::ParseMethod(o.method);
  c.seq_len = static_cast<size_t>(o.seq_len);
  c.batch_size = static_cast<size_t>(o.batch_size);
  c.grad_accum = o.grad_accum;
  c.max_steps = o.max_steps;
  c.lr = o.lr;
  c.schedule = optim::ParseLrSchedule(o.lr_scheduler);
  c.warmup_steps = o.warmup_steps;
  c.weight_decay = o.weight_decay;
  c.max_grad_norm = o.max_grad_norm;
  c.seed = o.seed;
  c.lora.r = o.r;
  c.lora.lora_alpha = o.lora_alpha;
  c.lora.lora_dropout = o.lora_dropout;
  c.lora.target_modules = o.target_modules;
  c.lora.use_rslora = o.use_rslora;
  c.lora.init = peft::ParseLoraInit(o.init_lora_weights);
  return c;
}

// The full model as a Hugging Face directory: every trained tensor under its HF name
// (q/k rows back in HF's rotate-half order for a Meta-layout source), f32.
void WriteFullModel(api::HfDirWriter& out, const api::LoadedModel& m, const train::Trainer& tr) {
  const model::LlamaConfig& c = m.config;
  const bool meta_rope = c.rope_layout == kernels::RopeLayout::kAdjacentPairs;
  std::vector<std::vector<float>> permuted;
  std::vector<io::SafetensorsWriteTensor> tensors;
  for (const model::ParamEntry& e : tr.index().entries()) {
    const float* p = tr.params() + e.offset;
    const bool q = e.name.find("self_attn.q_proj.") != std::string::npos;
    const bool k = e.name.find("self_attn.k_proj.") != std::string::npos;
    if (meta_rope && (q || k)) {
      std::vector<float>& v = permuted.emplace_back(p, p + e.count);
      const int64_t cols = e.shape.rank() == 2 ? e.shape[1] : 1;
      api::PermuteMetaToHf(v.data(), q ? c.num_attention_heads : c.num_key_value_heads, c.HeadDim(), cols);
      p = v.data();
    }
    tensors.push_back({e.name, DType::kF32, e.shape, {reinterpret_cast<const uint8_t*>(p), e.count * sizeof(float)}});
  }
  io::WriteSafetensors(out.File("model.safetensors"), tensors, {{"format", "pt"}}, io::Existing::kRefuse);
  out.Add("model.safetensors");
  nlohmann::json config;
  if (m.source.format() == api::FileFormat::kSafetensors) {
    const fs::path d = fs::is_directory(m.source.path()) ? fs::path(m.source.path()) : fs::path(m.source.path()).parent_path();
    config = io::ReadJsonObject((d / "config.json").string(), "config.json");
    config.erase("quantization_config");
    config.erase("dtype");
    config["torch_dtype"] = "float32";
  } else {
    config = api::LlamaConfigToHfJson(c, "float32", m.tokenizer ? &m.tokenizer->vocab() : nullptr);
  }
  out.WriteText("config.json", config.dump(2) + "\n");
  api::WriteTokenizerFiles(out, m.source, m.tokenizer ? &m.tokenizer->vocab() : nullptr, c.max_position_embeddings);
}

FinetuneReport Run(const Model& model, const FinetuneOptions& o, const std::string& text);

}  // namespace

FinetuneReport Finetune(const FinetuneOptions& o) {
  CheckOptions(o);
  ToTrainConfig(o);  // every option checked before the model loads
  const std::string text = io::ReadRegularFile(o.text_path, "training text (--text)", io::kMaxTextFileBytes);
  const Model model(api::ModelOptionsFrom(o));
  return Run(model, o, text);
}

FinetuneReport Finetune(const Model& model, const FinetuneOptions& options) {
  FinetuneOptions o = options;  // the model's files, for the checks, the messages and the adapter config
  o.model_path = model.options().model_path;
  o.tokenizer_path = model.options().tokenizer_path;
  CheckOptions(o);
  const std::string text = io::ReadRegularFile(o.text_path, "training text (--text)", io::kMaxTextFileBytes);
  return Run(model, o, text);
}

namespace {

FinetuneReport Run(const Model& model, const FinetuneOptions& o, const std::string& text) {
  const train::TrainConfig tc = ToTrainConfig(o);
  const api::LoadedModel* loaded = model.impl().loaded.get();
  if (loaded->tokenizer == nullptr) throw ConfigError("finetune: the model was loaded without its tokenizer");
  ExecContext ctx(model.options().num_threads);  // the trainer's buffers and scratch
  const model::LlamaConfig& cfg = loaded->config;
  if (o.seq_len > cfg.max_position_embeddings)
    throw ConfigError(fmt::format("option 'seq_len': {} exceeds the model's context of {} tokens "
                                  "(max_position_embeddings of {})",
                                  o.seq_len, cfg.max_position_embeddings, o.model_path));

  // The output directory before any work: an existing OUT fails now.
  std::vector<std::string> inputs = {o.model_path, o.text_path};
  if (!o.tokenizer_path.empty()) inputs.push_back(o.tokenizer_path);
  api::HfDirWriter out(o.out_dir, o.overwrite, inputs);

  const train::PackedText data(loaded->tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/false),
                               tc.seq_len, o.text_path);
  train::Trainer tr(*loaded->model, tc, ctx);
  if (tc.method == train::Method::kFull) {
    // The weights now live in the trainer's f32 buffer: the mapped file's pages need not stay
    // resident (513 MiB of SmolLM2-135M's peak RSS).
    for (const auto& t : loaded->source.tensors()) io::DropPages(t.data);
  }
  train::WindowOrder order(data.num_windows(), o.seed);

  FinetuneReport r;
  r.method = o.method;
  r.text_tokens = data.num_windows() * tc.seq_len;
  r.windows = data.num_windows();
  r.trainable_params = tr.num_trainable();
  model::ForEachRole(cfg, [&](const model::RoleAt& ra) { r.total_params += ra.role->ShapeIn(cfg).NumElems(); });
  if (tc.method == train::Method::kLora) r.total_params += r.trainable_params;

  const size_t per_step = tc.batch_size * tc.seq_len * static_cast<size_t>(tc.grad_accum);
  std::vector<int32_t> tokens(per_step), targets(per_step);
  std::string metrics;
  double logged_loss = 0;
  int64_t logged = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < o.max_steps; ++s) {
    for (size_t w = 0; w < per_step / tc.seq_len; ++w)
      data.Fill(order.Next(), tokens.data() + w * tc.seq_len, targets.data() + w * tc.seq_len);
    const auto ts = std::chrono::steady_clock::now();
    const train::StepResult sr = tr.Step(tokens, targets);
    const auto te = std::chrono::steady_clock::now();
    if (s == 0) r.first_loss = sr.loss;
    r.last_loss = sr.loss;
    r.tokens += per_step;
    logged_loss += sr.loss;
    ++logged;
    FinetuneOptions::Step st{sr.step, o.max_steps, sr.loss, sr.lr, sr.grad_norm, order.epoch(),
                             static_cast<double>(per_step) / std::chrono::duration<double>(te - ts).count(),
                             std::chrono::duration<double>(te - t0).count()};
    if (sr.step % o.logging_steps == 0 || sr.step == o.max_steps) {
      // HF Trainer's log_history row: the mean training loss since the last row.
      nlohmann::json row = {{"step", sr.step},         {"loss", logged_loss / static_cast<double>(logged)},
                            {"learning_rate", sr.lr},  {"grad_norm", sr.grad_norm},
                            {"epoch", order.epoch()}};
      metrics += row.dump() + "\n";
      logged_loss = 0;
      logged = 0;
    }
    if (o.on_step) o.on_step(st);
  }
  r.steps = o.max_steps;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.tokens_per_s = static_cast<double>(r.tokens) / r.seconds;

  if (tc.method == train::Method::kLora) {
    train::WriteLoraAdapter(out.atomic(), *tr.lora(), tr.index(), tr.params(), o.model_path);
    out.Add("adapter_config.json");
    out.Add("adapter_model.safetensors");
  } else {
    WriteFullModel(out, *loaded, tr);
  }
  out.WriteText("metrics.jsonl", metrics);
  r.files = out.Commit();

  const train::TrainMemory mem = tr.memory();
  r.weight_bytes = mem.weights;
  r.gradient_bytes = mem.gradients;
  r.optimizer_bytes = mem.optimizer;
  r.activation_bytes = mem.activations;
  r.logits_bytes = mem.logits;
  r.scratch_bytes = mem.scratch;
  for (const auto& t : loaded->source.tensors()) r.base_mapped_bytes += t.data.size();
  r.peak_rss_bytes = ReadRss().peak_bytes;
  return r;
}

}  // namespace
}  // namespace nibble
