// `nibble inspect FILE`: format, metadata, tensors, parameters, architecture.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "commands.h"
#include "nibble/nibble.h"
#include "progress.h"

namespace nibble::cli {
namespace {

struct InspectArgs {
  std::string path;
  bool json = false;
  bool no_tensors = false;
};

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int RunInspect(const InspectArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelInfo info = Inspect(a.path);
  if (a.json) {
    fmt::print("{}\n", ModelInfoToJson(info));
    return 0;
  }
  fmt::print("{}: {} ({}), {} tensors, {} parameters\n", info.path, info.format, info.format_version,
             info.tensors.size(), Thousands(info.num_params));
  if (!info.architecture.empty()) {
    fmt::print("\narchitecture (Hugging Face config names)\n");
    for (const auto& [k, v] : info.architecture) fmt::print("  {:<26} {}\n", k, v);
  }
  if (!info.metadata.empty()) {
    size_t w = 10;
    for (const auto& m : info.metadata) w = std::max(w, m.key.size());
    fmt::print("\nmetadata ({} keys)\n", info.metadata.size());
    for (const auto& m : info.metadata) fmt::print("  {:<{}}  {:<14} {}\n", m.key, w, m.type, m.value);
  }
  if (!a.no_tensors) {
    size_t w = 4;
    for (const auto& t : info.tensors) w = std::max(w, t.name.size());
    fmt::print("\ntensors ({})\n  {:<{}}  {:<10} {:<20} {:>14}\n", info.tensors.size(), "name", w, "dtype", "shape",
               "bytes");
    for (const auto& t : info.tensors)
      fmt::print("  {:<{}}  {:<10} {:<20} {:>14}\n", t.name, w, DTypeName(t.dtype), ShapeString(t.shape),
                 Thousands(t.num_bytes));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const MemoryStats mem = ReadMemoryStats();
  fmt::print("\nsummary: {} {} | {} params | tensors {} ({:.3f} bytes/param) | file {} | {:.3f} s | peak RSS {}\n",
             info.format, info.format_version, Thousands(info.num_params), HumanBytes(info.tensor_bytes),
             info.BytesPerParam(), HumanBytes(info.file_bytes), secs, HumanBytes(mem.peak_rss_bytes));
  return 0;
}

}  // namespace

std::function<int()> AddInspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand("inspect", "Show a model file's format, metadata, tensors and architecture");
  cmd->add_option("FILE", args->path, "safetensors file or directory, GGUF file, or llama2.c .bin")->required();
  cmd->add_flag("--json", args->json, "Print one JSON document instead of tables");
  cmd->add_flag("--no-tensors", args->no_tensors, "Leave out the tensor table");
  cmd->footer(
      "Examples:\n"
      "  nibble inspect assets/stories260K/stories260K.gguf\n"
      "  nibble inspect --json model.safetensors | jq .num_params\n"
      "  nibble inspect path/to/hf-model-dir\n");
  return [args] { return RunInspect(*args); };
}

}  // namespace nibble::cli
