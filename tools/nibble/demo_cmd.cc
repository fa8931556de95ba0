// `nibble demo`: the README's first command. On the embedded stories260K model (no
// network): inspect it, stream a short story, score a shipped TinyStories excerpt.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "commands.h"
#include "sampling_flags.h"
#include "nibble/error.h"
#include "nibble/generate.h"
#include "nibble/inspect.h"
#include "nibble/memory.h"
#include "nibble/perplexity.h"
#include "progress.h"

namespace nibble::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kModelFile = "stories260K.bin";
constexpr const char* kTokenizerFile = "tok512.bin";
constexpr const char* kDefaultAssets = "assets/stories260K";
constexpr const char* kExcerpt = "tinystories-excerpt/tinystories_val_excerpt.txt";
// Fixed sampling so every run of the demo prints the same story.
constexpr uint64_t kSeed = 42;
constexpr float kTemperature = 0.8f;
constexpr int32_t kStoryTokens = 150;
constexpr int64_t kPerplexityCtx = 512;  // llama.cpp's default, and the model's training length

struct DemoArgs {
  std::string assets;  // empty: search (see FindAssets)
  std::string text;    // empty: the excerpt beside the assets
  int threads = 0;
};

bool HasModel(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / kModelFile, ec);
}

// The asset folder: --assets when given; else assets/stories260K under the current
// directory; else under the executable's directory or one of its parents (a build
// tree such as build/release/tools/nibble/ lies inside the repository).
fs::path FindAssets(const std::string& flag) {
  if (!flag.empty()) {
    if (!HasModel(flag))
      throw ConfigError(fmt::format("{}: no {} in the folder given with --assets", flag, kModelFile));
    return flag;
  }
  if (HasModel(kDefaultAssets)) return kDefaultAssets;
  std::error_code ec;
  fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (int up = 0; !ec && up < 6 && !dir.empty(); ++up, dir = dir.parent_path()) {
    if (HasModel(dir / kDefaultAssets)) return dir / kDefaultAssets;
    if (dir == dir.parent_path()) break;
  }
  throw ConfigError(fmt::format(
      "demo: cannot find {}/{} under the current directory or beside the executable; run from the repository root "
      "or give --assets DIR",
      kDefaultAssets, kModelFile));
}

int RunDemo(const DemoArgs& a) {
  const fs::path assets = FindAssets(a.assets);
  const std::string model = (assets / kModelFile).string();
  const std::string text = a.text.empty() ? (assets.parent_path() / kExcerpt).string() : a.text;

  fmt::print("== 1/3 inspect {}\n", model);
  const ModelInfo info = Inspect(model);
  fmt::print("{}: {} ({}), {} tensors, {} parameters, {}\n", info.path, info.format, info.format_version,
             info.tensors.size(), Thousands(info.num_params), HumanBytes(info.file_bytes));
  for (const auto& [k, v] : info.architecture) fmt::print("  {:<26} {}\n", k, v);

  fmt::print("\n== 2/3 generate {} tokens (temperature {}, seed {})\n", kStoryTokens, kTemperature, kSeed);
  GenerateOptions g;
  g.model_path = model;
  g.tokenizer_path = (assets / kTokenizerFile).string();
  g.prompt = "Once upon a time";
  g.n_predict = kStoryTokens;
  g.temperature = kTemperature;
  g.seed = kSeed;
  g.num_threads = a.threads;
  g.on_piece = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  fmt::print("{}", g.prompt);
  std::fflush(stdout);
  const GenerateReport gr = Generate(g);
  fmt::print("\n");
  for (const auto& w : gr.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
  fmt::print("generated {} tokens at {:.1f} tok/s (prompt {} tokens at {:.1f} tok/s), stop: {}\n",
             gr.generated_tokens, gr.generation_tokens_per_s, gr.prompt_tokens, gr.prompt_tokens_per_s,
             StopReasonName(gr.stop_reason));

  fmt::print("\n== 3/3 perplexity on held-out text {}\n", text);
  PerplexityOptions p;
  p.model_path = model;
  p.tokenizer_path = g.tokenizer_path;
  p.text_path = text;
  p.ctx = kPerplexityCtx;
  p.num_threads = a.threads;
  ProgressBar bar("perplexity", StderrIsTty(), "windows");
  p.progress = [&bar](int64_t done, int64_t total) {
    bar.Update(static_cast<uint64_t>(done), static_cast<uint64_t>(total), fmt::format("window {}/{}", done, total));
  };
  const PerplexityReport pr = EvaluatePerplexity(p);
  bar.Finish();
  PrintPerplexityReport(pr, text);

  const MemoryStats mem = ReadMemoryStats();
  fmt::print("\ndemo: generation {:.1f} tok/s | perplexity {:.4f} at {:.1f} tok/s | peak RSS {} | peak alloc {}\n",
             gr.generation_tokens_per_s, pr.ppl, pr.tokens_per_s, HumanBytes(mem.peak_rss_bytes),
             HumanBytes(std::max(gr.peak_alloc_bytes, pr.peak_alloc_bytes)));
  return 0;
}

}  // namespace

std::function<int()> AddDemo(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the embedded stories260K model: inspect it, generate a story, measure perplexity");
  cmd->add_option("--assets", args->assets,
                  "Folder holding stories260K.bin and tok512.bin (default: assets/stories260K under the current "
                  "directory, else found from the executable's location)");
  cmd->add_option("--text", args->text,
                  "Text to score (default: ../tinystories-excerpt/tinystories_val_excerpt.txt beside the assets)");
  AddThreadsFlag(cmd, args->threads);
  cmd->footer(
      "Examples:\n"
      "  nibble demo\n"
      "  nibble demo --assets /path/to/nibble/assets/stories260K --threads 2\n"
      "Needs no network; takes a few seconds.\n");
  return [args] { return RunDemo(*args); };
}

}  // namespace nibble::cli
