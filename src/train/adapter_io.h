// LoRA adapters in PEFT's files (../shared/specs/gptq-lora-zero.md §3.4):
// adapter_config.json (PEFT's keys, sorted, 2-space indent) and adapter_model.safetensors
// (f32, "base_model.model.<module>.lora_A.weight" / "lora_B.weight", metadata format=pt).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/param_index.h"
#include "optim/optimizer.h"
#include "nibble/error.h"
#include "peft/lora.h"

namespace nibble::io {
class AtomicDir;
}

namespace nibble::train {

// Writes both files into `dir` (an AtomicDir's temporary, committed by the caller).
// target_modules is saved as the explicit suffix list (PEFT expands all-linear before
// saving); base_model is base_model_name_or_path. PEFT adapters are in Hugging Face's row
// order: for a model held in Meta's RoPE order (llama2.c, GGUF: `c`), the rows of q_proj's
// and k_proj's lora_B are written permuted to HF's (model::PermuteRopeRows), so PEFT on the
// model's HF export computes the same.
void WriteLoraAdapter(io::AtomicDir& dir, const peft::LoraModel& lora, const model::ParamIndex& index,
                      const float* params, const std::string& base_model, const model::LlamaConfig& c);

// What an adapter directory holds, read and checked without a model: adapter_config.json's
// peft_type, r and base model, and every tensor of adapter_model.safetensors named
// "base_model.model.<module>.lora_A.weight" / "lora_B.weight", A [r, in] and B [out, r]
// in pairs. `architecture` is "llama" (model.layers.N...), "gpt2" (transformer.h.N...)
// or "unknown". ConfigError naming the file and tensor otherwise.
struct AdapterSummary {
  std::string peft_type, base_model, architecture, example_module;
  int64_t r = 0;
  size_t modules = 0;
};
AdapterSummary ReadAdapterSummary(const std::string& dir);

// adapter_config.json of `dir` (a directory, or the adapter_config.json itself) as a
// LoraConfig. ConfigError naming the file and key: peft_type other than LORA, a missing
// r, a feature nibble does not implement (use_dora, lora_bias, layer_replication,
// rank_pattern/alpha_pattern entries, a regex target_modules, fan_in_fan_out, bias other
// than none). Unknown keys are reported through `warnings` (forward-compatible, as PEFT
// >= 0.14).
peft::LoraConfig ReadLoraConfig(const std::string& dir, std::vector<std::string>* warnings = nullptr);

// Copies every tensor of `index` from adapter_model.safetensors in `dir` into params.
// ConfigError naming the file and tensor when one is missing, has another shape or a
// dtype other than F32/BF16/F16, or the file holds a tensor the index does not.
// With `c` in Meta's RoPE order, q_proj's and k_proj's lora_B rows are permuted from HF's
// order (as every PEFT adapter stores them) into the model's.
void ReadLoraWeights(const std::string& dir, const model::ParamIndex& index, float* params,
                     const model::LlamaConfig* c = nullptr);

// The same for any safetensors file: tensor prefix + entry name for each entry of `index`;
// only the file's tensors that start with `prefix` must all belong to the index.
void ReadParamTensors(const std::string& file, const model::ParamIndex& index, float* params,
                      std::string_view prefix = "");

// The optimizer's state as optimizer.safetensors in `dir`, exactly as the trainer holds it
// (a resumed run continues bit for bit), per entry of `index`: f32 moments as torch's
// "exp_avg.<param>" / "exp_avg_sq.<param>"; 8-bit moments as bitsandbytes' "state1.<param>"
// / "state2.<param>" (u8 codes, the parameter's shape) and "absmax1.<param>" /
// "absmax2.<param>" (f32, one per block of 256). Paged and in-RAM state write the same file.
void WriteOptimizerState(io::AtomicDir& dir, const model::ParamIndex& index, const optim::AdamWState& state);
// Reads it back into `state` (same index, same optimizer kind): ConfigError naming the file
// and the tensor for a missing, misshapen or foreign tensor.
void ReadOptimizerState(const std::string& file, const model::ParamIndex& index, optim::AdamWState& state);

}  // namespace nibble::train
