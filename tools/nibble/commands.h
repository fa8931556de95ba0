// The CLI's subcommands; each registers its flags on a CLI11 app and runs.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace nibble::cli {

// Registers the subcommand and returns the function that runs it once parsed.
std::function<int()> AddInspect(CLI::App& app);
std::function<int()> AddConvert(CLI::App& app);
std::function<int()> AddGenerate(CLI::App& app);
std::function<int()> AddTokenize(CLI::App& app);

}  // namespace nibble::cli
