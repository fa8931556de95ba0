// Fine-tuning options into the trainer's configuration, and QLoRA and k-bit LoRA on the
// fine-tuning seam: the method's defaults (all-linear for
// qlora), the load options that quantize the base (transformers' BitsAndBytesConfig:
// load_in_4bit with bnb_4bit_*; load_in_8bit), the compute dtype "auto" resolves to, and
// the check that a loaded base is one the method can train through.
#pragma once

#include <string>
#include <vector>

#include "api/model_loader.h"
#include "nibble/finetune.h"
#include "nibble/model.h"
#include "train/trainer.h"

namespace nibble::api {

// "24GiB", "512MB", "1e9" (bytes): B, KB/MB/GB (10^3k) and KiB/MiB/GiB (2^10k), case-insensitive.
// ConfigError naming `option` otherwise.
uint64_t ParseByteSize(const std::string& s, std::string_view option);

// With --max-memory: ConfigError when the run's estimate exceeds it, naming the estimate's
// total and largest components and the total with paged 8-bit AdamW and checkpointing.
void CheckMaxMemory(const FinetuneOptions& o, const LoadedModel& m, int threads);

// Every option of `o` checked before anything loads: ConfigError naming the option.
void CheckFinetuneOptions(const FinetuneOptions& o);

// The trainer's configuration for `o` (its options parsed; ConfigError naming a bad one).
train::TrainConfig TrainConfigFrom(const FinetuneOptions& o);

// Fills what the method leaves to its defaults: target_modules q_proj, v_proj (lora) or
// all-linear (qlora).
FinetuneOptions WithMethodDefaults(FinetuneOptions o);

// "bfloat16", "float32" or "float16" for qlora (auto: bfloat16 where the CPU runs
// AVX512-BF16 under the current cap, float32 elsewhere); "" for methods without a 4-bit base.
std::string ResolvedComputeDtype(const FinetuneOptions& o);

// `mo` with the base quantized at load as the method asks (qlora: bnb_4bit_quant_type,
// double quant and the compute dtype; load_in_8bit: LLM.int8()).
ModelOptions QuantizedBaseOptions(const FinetuneOptions& o, ModelOptions mo);

// For qlora: ConfigError when the loaded base has no 4-bit layers or holds a format qlora
// does not train through (LLM.int8(), nibble's int4/int8 formats: named). Appends notes on
// what was quantized at load, the compute dtype and its kernel path, and a GGUF base whose
// blocks were dequantized before 4-bit quantization (two roundings).
void CheckQuantizedBase(const FinetuneOptions& o, const LoadedModel& m, std::vector<std::string>* notes);

}  // namespace nibble::api
