// Fine-tuning (`nibble finetune`): full fine-tuning or LoRA of a Llama on plain text packed
// into windows or on instruction JSONL (prompt masked, padded batches), AdamW with
// transformers' schedules, the HF Trainer's flag names and defaults, validation,
// checkpoints that resume bit for bit, metrics in the HF Trainer's log_history names, and
// the result saved as a PEFT adapter (LoRA) or a Hugging Face model directory (full).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nibble/api.h"
#include "nibble/model.h"

namespace nibble {

struct FinetuneOptions {
  std::string model_path;      // GGUF, llama2.c .bin, or HF safetensors file/directory
  std::string tokenizer_path;  // empty: the model's own
  std::string text_path;       // plain UTF-8 text, tokenized once, packed into seq_len windows
  std::string data_path;       // or instruction JSONL (prompt/response, question/answer, Alpaca, Self-Instruct)
  std::string template_name = "auto";  // auto | model | alpaca | chatml | none (instruction data)
  bool train_on_prompt = false;        // count the loss on prompt tokens too
  double val_split = 0;                // a seeded fraction of the examples held out for validation
  std::string val_file;                // or a validation file of the same kind as the training data
  std::string out_dir;         // the run directory: checkpoint-N/, then the adapter or model, metrics.jsonl, loss.svg
  bool overwrite = false;      // reuse an OUT that holds only nibble's files (its old checkpoints are removed)
  // full | lora | qlora (LoRA on a 4-bit base quantized at load, or a bnb 4-bit checkpoint:
  // bnb_4bit_* below, target_modules all-linear unless given)
  std::string method = "lora";
  int64_t seq_len = 256;
  int64_t batch_size = 1;       // TrainingArguments.per_device_train_batch_size default 8; see docs/FINETUNING.md
  int64_t grad_accum = 1;       // gradient_accumulation_steps
  int64_t max_steps = -1;       // > 0: the number of optimizer steps; otherwise from num_train_epochs
  double epochs = 3;            // num_train_epochs (TrainingArguments default)
  double lr = 5e-5;             // learning_rate (TrainingArguments default)
  std::string lr_scheduler = "linear";  // lr_scheduler_type: constant | constant_with_warmup | linear | cosine
  int64_t warmup_steps = 0;
  double weight_decay = 0.0;    // not applied to biases and norm weights (HF Trainer)
  double max_grad_norm = 1.0;
  uint64_t seed = 42;
  int64_t logging_steps = 1;    // one metrics.jsonl row per this many steps
  int64_t eval_every = 0;       // eval_steps; 0: evaluate before and after training only (given a validation set)
  int64_t save_every = 0;       // save_steps: OUT/checkpoint-N every N steps; 0: none
  int64_t save_total_limit = 0; // keep the newest N checkpoints; 0: all
  std::string resume_from;      // a checkpoint directory, or "latest" (the newest in out_dir)
  // optim (transformers' names): adamw_torch | adamw_8bit | paged_adamw_32bit |
  // paged_adamw_8bit (aliases adamw, adamw_bnb_8bit, paged_adamw).
  std::string optim = "adamw_torch";
  std::string paged_dir;        // a paged optimizer's state file (unlinked at once); empty: out_dir
  bool gradient_checkpointing = false;  // recompute each layer in backward: same numbers, less memory
  // Refuse to start when the estimate (nibble memory) exceeds this many bytes of RAM, naming
  // what the run needs and what paging and checkpointing would save; e.g. "8GiB", "500MB". Empty: no limit.
  std::string max_memory;
  // QLoRA's base (BitsAndBytesConfig's names), used by method qlora:
  std::string bnb_4bit_quant_type = "nf4";     // nf4 | fp4
  bool bnb_4bit_use_double_quant = true;       // QLoRA's choice (BitsAndBytesConfig's default is off)
  std::string bnb_4bit_compute_dtype = "auto"; // auto (bfloat16 with AVX512-BF16, else float32) | float32 | bfloat16 | float16
  bool load_in_8bit = false;                   // method lora over an LLM.int8() base quantized at load
  // LoRA (PEFT's LoraConfig names and defaults; target_modules empty: PEFT's choice for
  // Llama, q_proj and v_proj, for lora; all-linear for qlora, as the QLoRA paper).
  int64_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  std::vector<std::string> target_modules;
  bool use_rslora = false;
  std::string init_lora_weights = "true";  // true | false | gaussian
  int num_threads = 0;          // 0: all cores
  bool allow_nonfinite = false;

  struct Step {
    int64_t step = 0, max_steps = 0;
    double loss = 0, learning_rate = 0, grad_norm = 0, epoch = 0;
    double tokens_per_s = 0;  // tokens through the model per second, this step
    double elapsed_s = 0;
  };
  std::function<void(const Step&)> on_step;  // after every optimizer step
  std::function<void(int64_t step, double eval_loss)> on_eval;  // after every evaluation
  std::function<void(const std::string&)> on_message;          // data, template, checkpoint and resume notes
};

struct FinetuneReport {
  std::string method;
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;  // of the first and the last step
  uint64_t trainable_params = 0, total_params = 0;
  uint64_t tokens = 0;             // tokens through the model (every window position)
  uint64_t text_tokens = 0, windows = 0;  // training examples and their tokens (windows: packed text)
  uint64_t val_examples = 0;
  double first_eval_loss = 0, last_eval_loss = 0;  // before the first step and after the last (0: no validation)
  int64_t resumed_from_step = 0;
  double seconds = 0, tokens_per_s = 0;
  // Memory by component (counting allocators; the base weights are mapped, not counted).
  uint64_t weight_bytes = 0, gradient_bytes = 0, optimizer_bytes = 0, activation_bytes = 0, logits_bytes = 0,
           scratch_bytes = 0, base_mapped_bytes = 0;
  uint64_t optimizer_paged_bytes = 0;  // a paged optimizer's state in its file (disk-backed)
  uint64_t peak_rss_bytes = 0;
  std::string compute_dtype;       // of the quantized base's layers ("" when none)
  std::string memory_json;         // what OUT/memory.json holds: {"estimate": {...}, "measured": {...}}
  double estimate_total = 0, measured_total = 0;
  std::vector<std::string> files;  // written into out_dir
  std::vector<std::string> warnings;
};

// Throws ConfigError (a bad option, naming its field; target modules that match nothing,
// listing the model's modules; a sequence longer than the model's context; a NaN or
// infinite loss, naming the step; a JSONL line missing a field, naming the file and line;
// a checkpoint of another run, naming the field that differs), IoError / FormatError for
// unreadable inputs. Every file and checkpoint in out_dir appears complete or not at all;
// a run that fails before its first checkpoint removes the out_dir it created.
NIBBLE_API FinetuneReport Finetune(const FinetuneOptions& options);
// The same on a model loaded once (its weights are not changed: LoRA trains adapters
// beside them, full fine-tuning trains an f32 copy). The options' load fields
// (model_path, tokenizer_path, allow_nonfinite, num_threads) are not read: the Model's own apply.
NIBBLE_API FinetuneReport Finetune(const Model& model, const FinetuneOptions& options);

// `nibble merge`: a PEFT LoRA adapter folded into its base, W' = W + s·B·A computed in f32
// (the product summed in double, as PEFT's CPU merge), then cast to `dtype`, written as
// a Hugging Face directory. A quantized base (bitsandbytes 4/8-bit) is dequantized first
// (a warning states the rounding that stays in W).
struct MergeOptions {
  std::string model_path;      // the base: GGUF, llama2.c .bin, or HF safetensors (quantized included)
  std::string tokenizer_path;  // empty: the model's own
  std::string adapter_path;    // adapter_config.json + adapter_model.safetensors
  std::string out_dir;
  std::string format = "hf";   // hf (GGUF output comes with the GGUF export)
  std::string dtype = "f32";   // f32 | bf16 | f16: the final cast of every weight
  // Quantize the merged model again (QuantizeOptions::method: nf4 | fp4 | int8 | ...;
  // empty: write it unquantized). The rounding this adds is measured and warned about.
  std::string quantize;
  bool double_quant = false;   // with nf4 / fp4
  bool overwrite = false;
  int num_threads = 0;
};

struct MergeReport {
  uint64_t merged_modules = 0, params = 0, out_bytes = 0;
  double requant_rms_error = 0, requant_max_error = 0;  // with `quantize`: against the merged f32 weights
  double seconds = 0;
  std::vector<std::string> files, warnings;
};

NIBBLE_API MergeReport Merge(const MergeOptions& options);

// `nibble memory`: the bytes a `nibble finetune` run with `train`'s options will hold, by
// component, from the model's shapes and storage alone (model_path may be an HF
// config.json on its own: a 70B run is sized before its weights are downloaded). The
// same formulas produce the estimate every finetune run prints beside its measurement.
struct MemoryEstimateOptions {
  FinetuneOptions train;  // model_path, method, optim, seq_len, batch_size, gradient_checkpointing, r,
                          // target_modules, lora_dropout, bnb_4bit_*, load_in_8bit, num_threads
  int zero_stage = 0;     // 0..3: ZeRO divides optimizer state (1+), gradients (2+), weights (3)
  int world_size = 1;
};

struct MemoryEstimate {
  // {"components": {"weights": B, "quant_constants": B, "gradients": B, "optimizer_state": B,
  // "optimizer_paged": B, "activations": B, "logits": B, "scratch": B}, "total": B}
  std::string json;
  std::vector<std::pair<std::string, uint64_t>> components;  // the same, in that order
  uint64_t total = 0;            // every component but optimizer_paged (disk-backed)
  uint64_t params = 0;           // the base model's parameters
  uint64_t trainable = 0;        // trainable parameters
  std::string base_storage;      // how the base's Linear weights are held: "bf16", "nf4 + double quant", ...
  // Other tools' rules for the same model, for comparison (docs/MEMORY.md):
  uint64_t rule_mixed_precision_adam = 0;  // 16 B per trainable parameter (2 + 2 + 12), activations aside
  uint64_t rule_deepspeed = 0;             // 18 B per parameter (DeepSpeed's estimator with f32 gradient copies)
  uint64_t rule_accelerate = 0;            // about 4x the model's bytes as stored (accelerate estimate-memory)
};

// ConfigError for a bad option (naming it) or a config that is not a Llama.
NIBBLE_API MemoryEstimate EstimateMemory(const MemoryEstimateOptions& options);

}  // namespace nibble
