// The CLI's subcommands; each registers its flags on a CLI11 app and runs.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "nibble/finetune.h"
#include "nibble/perplexity.h"

namespace nibble::cli {

// Registers the subcommand and returns the function that runs it once parsed.
std::function<int()> AddInspect(CLI::App& app);
std::function<int()> AddConvert(CLI::App& app);
std::function<int()> AddGenerate(CLI::App& app);
std::function<int()> AddTokenize(CLI::App& app);
std::function<int()> AddPerplexity(CLI::App& app);
std::function<int()> AddDemo(CLI::App& app);
std::function<int()> AddChat(CLI::App& app);
std::function<int()> AddQuantize(CLI::App& app);
std::function<int()> AddDequantize(CLI::App& app);
std::function<int()> AddExport(CLI::App& app);
std::function<int()> AddFinetune(CLI::App& app);
std::function<int()> AddMerge(CLI::App& app);
std::function<int()> AddMemory(CLI::App& app);

// The flags `finetune` and `memory` share: method, optim, checkpointing, shapes, LoRA and
// QLoRA's BitsAndBytesConfig names.
void AddTrainShapeFlags(CLI::App* cmd, FinetuneOptions* o);

// Prints a perplexity report: PPL and counts to stdout, warnings and the summary line
// to stderr (shared by `perplexity` and `demo`).
void PrintPerplexityReport(const PerplexityReport& r, const std::string& text_path);

}  // namespace nibble::cli
