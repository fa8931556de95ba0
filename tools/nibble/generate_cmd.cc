// `nibble generate -m MODEL -p TEXT`: streams generated text to stdout, then prints a
// one-line summary (tokens/s for prompt and generation, peak memory) to stderr.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "commands.h"
#include "sampling_flags.h"
#include "nibble/error.h"
#include "nibble/generate.h"
#include "progress.h"

namespace nibble::cli {
namespace {

struct GenerateArgs {
  GenerateOptions o;
  std::string prompt_file;
  std::optional<std::string> seed_text;
  bool no_bos = false;
  bool verbose_prompt = false;
  bool json = false;
};

void PrintGenerateSummary(const GenerateReport& r) {
  fmt::print(stderr,
             "summary: prompt {} tokens {:.1f} tok/s | generated {} tokens {:.1f} tok/s | stop {} | ctx {} | "
             "seed {} | peak RSS {} | peak alloc {}\n",
             r.prompt_tokens, r.prompt_tokens_per_s, r.generated_tokens, r.generation_tokens_per_s,
             StopReasonName(r.stop_reason), r.ctx_size, r.seed, HumanBytes(r.peak_rss_bytes),
             HumanBytes(r.peak_alloc_bytes));
}

int RunGenerate(GenerateArgs& a) {
  GenerateOptions& o = a.o;
  if (!a.prompt_file.empty()) {
    if (!o.prompt.empty()) throw ConfigError("generate: give the prompt with -p or -f, not both");
    o.prompt = ReadInputFile(a.prompt_file, "prompt file (-f)", kMaxPromptFileBytes);
  }
  if (a.seed_text) o.seed = ParseSeed(*a.seed_text, "--seed");
  if (a.no_bos) o.add_bos = false;
  // The prompt is echoed first, as llama.cpp does, then the generated text streams after
  // it; the echo waits for the model to load so an error is not preceded by the prompt.
  auto echoed = std::make_shared<bool>(false);
  auto echo = [echoed, prompt = o.prompt] {
    if (*echoed) return;
    *echoed = true;
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  };
  o.on_piece = [echo](std::string_view piece) {
    echo();
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  // A full disk or a reader that went away (`| head -c 100`): stop generating; main
  // reports the write error and exits 1.
  o.should_stop = [] { return std::ferror(stdout) != 0; };
  if (a.json) {  // one JSON object on stdout instead of the stream; warnings and summary stay on stderr
    o.on_piece = nullptr;
    const GenerateReport r = Generate(o);
    fmt::print("{}\n", GenerateReportJson(r));
    std::fflush(stdout);
    for (const auto& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
    PrintGenerateSummary(r);
    return 0;
  }
  const GenerateReport r = Generate(o);
  echo();
  fmt::print("\n");
  std::fflush(stdout);
  for (const auto& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
  PrintGenerateSummary(r);
  return 0;
}

}  // namespace

std::function<int()> AddGenerate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  GenerateOptions& o = args->o;
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt (streamed to stdout)");
  cmd->add_option("-m,--model", o.model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")->required();
  cmd->add_option("-t,--tokenizer", o.tokenizer_path,
                  "Tokenizer file (GGUF vocabulary or llama2.c tokenizer .bin); default: the model's own, or "
                  "tok512.bin/tokenizer.bin beside a llama2.c model");
  cmd->add_option("-a,--adapter", o.adapter_path, "PEFT LoRA adapter directory, applied unmerged");
  cmd->add_option("-p,--prompt", o.prompt, "Prompt text (default: empty, i.e. start from BOS)");
  cmd->add_option("-f,--file", args->prompt_file, "Read the prompt from FILE");
  cmd->add_option("-n,--n-predict", o.n_predict, "Tokens to generate (-1: until EOS or the context is full)")
      ->capture_default_str();
  AddSamplingFlags(cmd, o, args->seed_text);
  cmd->add_option("-c,--ctx", o.ctx_size,
                  "Context size in tokens (default: the model's declared context, at most 4096; more than "
                  "declared is allowed with a warning)");
  cmd->add_option("--stop", o.stop_strings, "Stop before this string (repeatable)");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add BOS before the prompt");
  cmd->add_flag("--json", args->json,
                "Print one JSON object (prompt_ids, ids, text, stop_reason, timings) instead of streaming text");
  cmd->footer(
      "Examples:\n"
      "  nibble generate -m assets/stories260K/stories260K.bin -p \"Once upon a time\" -n 64\n"
      "  nibble generate -m assets/stories260K/stories260K.gguf -c 512 --temp 0 -n 256\n"
      "  nibble generate -m model.bin -t tok512.bin -f prompt.txt --seed 42 --top-k 20\n"
      "  nibble generate -m assets/stories260K/stories260K.bin -p \"Once upon a time\" --temp 0 -n 16 --json\n"
      "The text goes to stdout; warnings and the summary line (tokens/s, memory) to stderr.\n");
  return [args] { return RunGenerate(*args); };
}

}  // namespace nibble::cli
