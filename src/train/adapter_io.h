// LoRA adapters in PEFT's files (../shared/specs/gptq-lora-zero.md §3.4):
// adapter_config.json (PEFT's keys, sorted, 2-space indent) and adapter_model.safetensors
// (f32, "base_model.model.<module>.lora_A.weight" / "lora_B.weight", metadata format=pt).
#pragma once

#include <string>
#include <vector>

#include "model/param_index.h"
#include "nibble/error.h"
#include "peft/lora.h"

namespace nibble::io {
class AtomicDir;
}

namespace nibble::train {

// Writes both files into `dir` (an AtomicDir's temporary, committed by the caller).
// target_modules is saved as the explicit suffix list (PEFT expands all-linear before
// saving); base_model is base_model_name_or_path.
void WriteLoraAdapter(io::AtomicDir& dir, const peft::LoraModel& lora, const model::ParamIndex& index,
                      const float* params, const std::string& base_model);

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
void ReadLoraWeights(const std::string& dir, const model::ParamIndex& index, float* params);

}  // namespace nibble::train
