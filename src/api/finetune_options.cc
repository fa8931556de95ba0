// The finetune options checked and turned into the trainer's configuration; QLoRA's
// defaults, load options and base checks.
#include "api/finetune_options.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <map>

#include "api/memory_estimate.h"
#include "core/cpu_features.h"
#include "core/dtype.h"
#include "nibble/error.h"
#include "train/sft_data.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "peft/lora.h"
#include "quant/registry.h"

namespace nibble::api {

void CheckFinetuneOptions(const FinetuneOptions& o) {
  if (o.model_path.empty()) throw ConfigError("option 'model_path' (-m) is required");
  if (o.text_path.empty() == o.data_path.empty())
    throw ConfigError("give the training data as either --text FILE (plain text) or --data FILE (instruction JSONL)");
  if (o.out_dir.empty()) throw ConfigError("option 'out_dir' (-o) is required");
  auto positive = [](int64_t v, const char* name, int64_t max) {
    if (v < 1 || v > max) throw ConfigError(fmt::format("option '{}': expected 1..{}, got {}", name, max, v));
  };
  positive(o.seq_len, "seq_len", 1 << 20);
  positive(o.batch_size, "batch_size", 1 << 16);
  positive(o.grad_accum, "grad_accum", 1 << 16);
  if (o.max_steps > (int64_t{1} << 40))
    throw ConfigError(fmt::format("option 'max_steps': expected at most 2^40, got {}", o.max_steps));
  if (o.max_steps <= 0 && !(o.epochs > 0 && o.epochs <= 1e6))
    throw ConfigError(fmt::format("option 'epochs': expected a positive number (or give --max-steps), got {}",
                                  o.epochs));
  positive(o.logging_steps, "logging_steps", int64_t{1} << 40);
  for (auto [v, name] : {std::pair{o.eval_every, "eval_every"}, std::pair{o.save_every, "save_every"},
                         std::pair{o.save_total_limit, "save_total_limit"}, std::pair{o.warmup_steps, "warmup_steps"}})
    if (v < 0) throw ConfigError(fmt::format("option '{}': expected >= 0, got {}", name, v));
  if (!(o.val_split >= 0 && o.val_split < 1))
    throw ConfigError(fmt::format("option 'val_split': expected a fraction in [0, 1), got {}", o.val_split));
  if (o.val_split > 0 && !o.val_file.empty()) throw ConfigError("give either --val-split or --val-file, not both");
  if (!(o.max_grad_norm >= 0) || !std::isfinite(o.max_grad_norm))
    throw ConfigError(fmt::format("option 'max_grad_norm': expected >= 0, got {}", o.max_grad_norm));
  if (o.num_threads != 0) CheckThreadCount(o.num_threads, "num_threads");
  if (o.method != "full" && o.method != "lora" && o.method != "qlora")
    throw ConfigError(fmt::format("option 'method': expected full, lora or qlora, got \"{}\"", o.method));
  optim::ParseOptim(o.optim);
  if (o.method == "qlora") {
    if (o.bnb_4bit_quant_type != "nf4" && o.bnb_4bit_quant_type != "fp4")
      throw ConfigError(fmt::format("option 'bnb_4bit_quant_type': expected nf4 or fp4, got \"{}\"",
                                    o.bnb_4bit_quant_type));
    if (o.bnb_4bit_compute_dtype != "auto") quant::ParseComputeDtype(o.bnb_4bit_compute_dtype, "option 'bnb_4bit_compute_dtype'");
    if (o.load_in_8bit) throw ConfigError("--load-in-8bit is LoRA over an 8-bit base; --method qlora is the 4-bit one");
  }
  if (!o.max_memory.empty()) ParseByteSize(o.max_memory, "max_memory");
  if (o.load_in_8bit && o.method != "lora")
    throw ConfigError("--load-in-8bit trains LoRA adapters over a frozen 8-bit base: it needs --method lora");
  const train::PromptTemplate t = train::ParsePromptTemplate(o.template_name);
  if (!o.text_path.empty() && (t != train::PromptTemplate::kAuto || o.train_on_prompt))
    throw ConfigError("--template and --train-on-prompt apply to instruction data (--data), not to --text");
}

uint64_t ParseByteSize(const std::string& s, std::string_view option) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::string unit = s.substr(pos);
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const std::pair<const char*, double> units[] = {{"", 1},        {"b", 1},         {"kb", 1e3},      {"mb", 1e6},
                                                  {"gb", 1e9},    {"tb", 1e12},     {"kib", 1024.0},  {"mib", 1048576.0},
                                                  {"gib", 1073741824.0}, {"tib", 1099511627776.0}};
  for (const auto& [name, mul] : units)
    if (pos > 0 && unit == name && v > 0 && std::isfinite(v * mul) && v * mul < 1.8e19)
      return static_cast<uint64_t>(v * mul);
  throw ConfigError(fmt::format("option '{}': expected a size such as 24GiB or 512MB, got \"{}\"", option, s));
}

train::TrainConfig TrainConfigFrom(const FinetuneOptions& o) {
  train::TrainConfig c;
  c.method = train::ParseMethod(o.method == "qlora" ? "lora" : o.method);
  c.optim = optim::ParseOptim(o.optim);
  c.paged_dir = o.paged_dir.empty() ? o.out_dir : o.paged_dir;
  c.gradient_checkpointing = o.gradient_checkpointing;
  c.seq_len = static_cast<size_t>(o.seq_len);
  c.batch_size = static_cast<size_t>(o.batch_size);
  c.grad_accum = o.grad_accum;
  c.max_steps = std::max<int64_t>(o.max_steps, 1);  // set from the data when counted in epochs
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

FinetuneOptions WithMethodDefaults(FinetuneOptions o) {
  if (o.target_modules.empty())
    o.target_modules = o.method == "qlora" ? std::vector<std::string>{"all-linear"}
                                           : std::vector<std::string>{"q_proj", "v_proj"};
  return o;
}

std::string ResolvedComputeDtype(const FinetuneOptions& o) {
  if (o.method != "qlora") return "";
  if (o.bnb_4bit_compute_dtype != "auto")
    return std::string(quant::ComputeDtypeName(quant::ParseComputeDtype(o.bnb_4bit_compute_dtype, "option "
                                                                                                  "'bnb_4bit_compute_dtype'")));
  return CpuHasAvx512Bf16() ? "bfloat16" : "float32";
}

ModelOptions QuantizedBaseOptions(const FinetuneOptions& o, ModelOptions mo) {
  if (o.method == "qlora") {
    mo.load_quantized = o.bnb_4bit_quant_type;
    mo.load_double_quant = o.bnb_4bit_use_double_quant;
    mo.compute_dtype = ResolvedComputeDtype(o);
  } else if (o.load_in_8bit) {
    mo.load_quantized = "int8";
  }
  return mo;
}

void CheckQuantizedBase(const FinetuneOptions& o, const LoadedModel& m, std::vector<std::string>* notes) {
  if (o.method != "qlora" && !o.load_in_8bit) return;
  std::map<std::string, int64_t> formats;
  for (const auto& q : m.quantized) ++formats[std::string(quant::MethodName(q->method))];
  const int64_t n = static_cast<int64_t>(m.quantized.size());
  if (o.method == "qlora") {
    for (const auto& [name, count] : formats) {
      if (name == "nf4" || name == "fp4") continue;
      throw ConfigError(fmt::format("{}: {} of its layers are {}; --method qlora trains through a 4-bit NF4 or FP4 "
                                    "base{}",
                                    o.model_path, count, name == "int8" ? "LLM.int8() (8-bit)" : name,
                                    name == "int8" ? " (use --method lora for LoRA over the 8-bit base)"
                                                   : " (dequantize it with `nibble dequantize`, or pass the "
                                                     "unquantized model)"));
    }
    if (n == 0)
      throw ConfigError(fmt::format("--method qlora: {} holds no 4-bit layers (load the Model with "
                                    "ModelOptions::load_quantized = nf4, or pass a bnb 4-bit checkpoint)",
                                    o.model_path));
  }
  if (m.load_quantized_layers > 0) {
    const bool dq = o.method == "qlora" && o.bnb_4bit_use_double_quant;
    notes->push_back(fmt::format("base: {} Linear layers quantized at load to {}{}; lm_head, embeddings and norms "
                                 "kept as stored",
                                 m.load_quantized_layers,
                                 o.method == "qlora" ? fmt::format("{} (blocks of 64)", o.bnb_4bit_quant_type == "nf4"
                                                                                             ? "NF4"
                                                                                             : "FP4")
                                                     : std::string("LLM.int8() (threshold 6.0)"),
                                 dq ? " + double quantization" : ""));
  }
  if (m.checkpoint_quantized_layers > 0)
    notes->push_back(fmt::format("base: {} layers used as the checkpoint stores them", m.checkpoint_quantized_layers));
  for (const SourceTensor& t : m.source.tensors()) {
    if (IsPacked(t.dtype) && m.load_quantized_layers > 0) {
      notes->push_back(fmt::format("base: {} stores {} blocks; they were dequantized at load and then quantized "
                                   "again (two roundings: measure with `nibble perplexity --kld-base`)",
                                   o.model_path, DTypeName(t.dtype)));
      break;
    }
  }
  if (o.method == "qlora") {
    const std::string cd = ResolvedComputeDtype(o);
    const bool fast_bf16 = CpuHasAvx512Bf16();
    if (cd == "bfloat16")
      notes->push_back(fast_bf16 ? std::string("compute dtype: bfloat16 (AVX512-BF16: vdpbf16ps)")
                                 : fmt::format("warning: compute dtype bfloat16 without AVX512-BF16 under the {} cap: "
                                               "bf16 products are emulated in f32 (correct, slower); float32 is "
                                               "faster here",
                                               CpuLevelName(EffectiveCpuLevel())));
    else if (cd == "float16")
      notes->push_back("warning: compute dtype float16: these CPUs have no fp16 arithmetic; values are rounded to "
                       "f16 and multiplied in f32 (slower than float32)");
    else
      notes->push_back(fmt::format("compute dtype: float32{}", o.bnb_4bit_compute_dtype == "auto"
                                                                  ? " (auto: this CPU has no AVX512-BF16 under the cap)"
                                                                  : ""));
  }
}

}  // namespace nibble::api

namespace nibble::api {

void CheckMaxMemory(const FinetuneOptions& o, const LoadedModel& m, int threads) {
  if (o.max_memory.empty()) return;
  const uint64_t limit = ParseByteSize(o.max_memory, "max_memory");
  std::string storage;
  const train::MemoryComponents e =
      train::EstimateTrainingMemory(m.config, EstimateOptionsFor(o, &m.source, "", threads, &storage));
  if (e.total() <= limit) return;
  FinetuneOptions lean = o;
  lean.optim = "paged_adamw_8bit";
  lean.gradient_checkpointing = true;
  const train::MemoryComponents l =
      train::EstimateTrainingMemory(m.config, EstimateOptionsFor(lean, &m.source, "", threads, &storage));
  auto gib = [](uint64_t b) { return fmt::format("{:.2f} GiB", static_cast<double>(b) / 1073741824.0); };
  throw ConfigError(fmt::format(
      "--max-memory {}: this run needs about {} (weights {}, quantization constants {}, gradients {}, optimizer "
      "{}, activations {}, logits {}, scratch {}); {}",
      o.max_memory, gib(e.total()), gib(e.weights), gib(e.quant_constants), gib(e.gradients), gib(e.optimizer_state),
      gib(e.activations), gib(e.logits), gib(e.scratch),
      l.total() <= limit
          ? fmt::format("with --optim paged_adamw_8bit --gradient-checkpointing it needs {}", gib(l.total()))
          : fmt::format("even with --optim paged_adamw_8bit --gradient-checkpointing it needs {}: lower --seq-len or "
                        "--batch-size{}",
                        gib(l.total()), o.method == "full" ? ", or use --method lora / qlora" : "")));
}

}  // namespace nibble::api
