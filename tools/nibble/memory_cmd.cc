// `nibble memory -m MODEL|CONFIG.json --method full|lora|qlora ...`: the bytes a
// `nibble finetune` run would hold, by component, from shapes alone, with other tools'
// rules of thumb beside it; `--json` prints the table as one JSON object.
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "nibble/finetune.h"
#include "progress.h"

namespace nibble::cli {
namespace {

int RunMemory(const MemoryEstimateOptions& o, bool json) {
  const MemoryEstimate e = EstimateMemory(o);
  if (json) {
    fmt::print("{}\n", e.json);
    return 0;
  }
  const FinetuneOptions& t = o.train;
  fmt::print("nibble memory: {} | method {} | base Linear weights {} | optim {} | batch {} x seq {}{}{}\n",
             t.model_path, t.method, e.base_storage, t.optim, t.batch_size, t.seq_len,
             t.gradient_checkpointing ? " | gradient checkpointing" : "",
             o.zero_stage > 0 ? fmt::format(" | ZeRO-{} over {} ranks (per rank)", o.zero_stage, o.world_size)
                              : std::string());
  for (const auto& [name, bytes] : e.components)
    fmt::print("  {:<16} {:>12}{}\n", name, HumanBytes(bytes),
               name == "optimizer_paged" && bytes > 0 ? "  (in a file; not in the total)" : "");
  fmt::print("  {:<16} {:>12}\n", "total", HumanBytes(e.total));
  fmt::print("rules of thumb for the same model: mixed-precision Adam 16 B x {} trainable = {}; DeepSpeed's "
             "18 B/param = {}; accelerate estimate-memory ~4x the stored model = {} (docs/MEMORY.md)\n",
             Thousands(e.trainable), HumanBytes(e.rule_mixed_precision_adam), HumanBytes(e.rule_deepspeed),
             HumanBytes(e.rule_accelerate));
  std::fflush(stdout);
  fmt::print(stderr, "summary: {} params, {} trainable ({:.3f} %), estimated peak {} ({:.2f} bytes/param)\n",
             Thousands(e.params), Thousands(e.trainable),
             e.params > 0 ? 100.0 * static_cast<double>(e.trainable) / static_cast<double>(e.params) : 0.0,
             HumanBytes(e.total), e.params > 0 ? static_cast<double>(e.total) / static_cast<double>(e.params) : 0.0);
  return 0;
}

}  // namespace

std::function<int()> AddMemory(CLI::App& app) {
  auto o = std::make_shared<MemoryEstimateOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("memory", "Estimate a fine-tuning run's memory by component, before running it");
  cmd->add_option("-m,--model", o->train.model_path,
                  "A model (GGUF, llama2.c .bin, HF directory) or an HF config.json on its own")
      ->required();
  AddTrainShapeFlags(cmd, &o->train);
  cmd->add_option("--zero-stage", o->zero_stage, "ZeRO stage 0..3: per-rank bytes")->capture_default_str();
  cmd->add_option("--world-size", o->world_size, "Ranks the ZeRO stage divides over")->capture_default_str();
  cmd->add_option("--threads", o->train.num_threads, "Threads of the run (attention score rows): 0 = all cores")
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print {\"components\": {...}, \"total\": B} in bytes");
  cmd->footer(
      "Examples:\n"
      "  nibble memory -m assets/stories260K/stories260K.bin --method full --seq-len 256 --batch-size 8\n"
      "  nibble memory -m Llama-2-7b-hf/config.json --method qlora --optim paged_adamw_8bit \\\n"
      "      --gradient-checkpointing --seq-len 512 --r 64\n"
      "  nibble memory -m SmolLM2-135M-Instruct/ --method lora --zero-stage 2 --world-size 4 --json\n"
      "Components: weights (the base as held + trainable f32), quant_constants, gradients, optimizer_state,\n"
      "optimizer_paged (disk-backed, not in the total), activations, logits, scratch. Every `nibble finetune`\n"
      "writes the same estimate beside its measurement to OUT/memory.json.\n");
  return [o, json] { return RunMemory(*o, *json); };
}

}  // namespace nibble::cli
