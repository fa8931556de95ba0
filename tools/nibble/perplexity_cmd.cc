// `nibble perplexity -m MODEL -f TEXT`: llama.cpp's perplexity protocol or the Hugging
// Face sliding window; prints `PPL = x +/- y`, the tokens evaluated, time and a summary.
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "nibble/perplexity.h"
#include "progress.h"

namespace nibble::cli {
namespace {

int RunPerplexity(PerplexityOptions o) {
  ProgressBar bar("perplexity", StderrIsTty(), "windows");
  o.progress = [&bar](int64_t done, int64_t total) {
    bar.Update(static_cast<uint64_t>(done), static_cast<uint64_t>(total), fmt::format("window {}/{}", done, total));
  };
  const PerplexityReport r = EvaluatePerplexity(o);
  bar.Finish();
  PrintPerplexityReport(r, o.text_path);
  return 0;
}

}  // namespace

void PrintPerplexityReport(const PerplexityReport& r, const std::string& text_path) {
  for (const auto& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
  const std::string protocol = r.stride == 0 ? std::string("llama.cpp (second half of each window)")
                                              : fmt::format("sliding window, stride {}", r.stride);
  fmt::print("{}: {} tokens, {} windows of ctx {}, {}\n", text_path, Thousands(static_cast<uint64_t>(r.text_tokens)),
             r.windows, r.ctx, protocol);
  fmt::print("PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_stderr);
  fmt::print("scored {} tokens, evaluated {} tokens in {:.2f} s ({:.1f} tok/s)\n",
             Thousands(static_cast<uint64_t>(r.scored_tokens)), Thousands(static_cast<uint64_t>(r.evaluated_tokens)),
             r.seconds, r.tokens_per_s);
  std::fflush(stdout);
  fmt::print(stderr,
             "summary: ppl {:.4f} +/- {:.5f} | mean nll {:.4f} | scored {} | evaluated {} tokens {:.1f} tok/s | "
             "windows {} | ctx {} | stride {} | {:.2f} s | peak RSS {} | peak alloc {}\n",
             r.ppl, r.ppl_stderr, r.mean_nll, r.scored_tokens, r.evaluated_tokens, r.tokens_per_s, r.windows, r.ctx,
             r.stride, r.seconds, HumanBytes(r.peak_rss_bytes), HumanBytes(r.peak_alloc_bytes));
}

std::function<int()> AddPerplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  cmd->add_option("-m,--model", o->model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")
      ->required();
  cmd->add_option("-t,--tokenizer", o->tokenizer_path,
                  "Tokenizer file (GGUF vocabulary or llama2.c tokenizer .bin); default: the model's own");
  cmd->add_option("-f,--file", o->text_path, "UTF-8 text to score")->required();
  cmd->add_option("-c,--ctx", o->ctx,
                  "Window length in tokens (llama.cpp's default; more than the model declares is allowed with a "
                  "warning)")
      ->capture_default_str();
  cmd->add_option("--stride", o->stride,
                  "0: llama.cpp protocol (non-overlapping windows, second half scored); S > 0: Hugging Face "
                  "sliding window, a window every S tokens")
      ->capture_default_str();
  cmd->add_option("--chunks", o->max_chunks, "Score at most this many windows (0: all)")->capture_default_str();
  cmd->add_option("--threads", o->num_threads, "Threads (default: all cores)");
  cmd->footer(
      "Examples:\n"
      "  nibble perplexity -m assets/stories260K/stories260K.bin "
      "-f assets/tinystories-excerpt/tinystories_val_excerpt.txt\n"
      "  nibble perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20\n"
      "  nibble perplexity -m model.gguf -f text.txt -c 1024 --stride 512\n"
      "PPL and counts go to stdout; warnings, the progress bar and the summary line to stderr.\n");
  return [o] { return RunPerplexity(*o); };
}

}  // namespace nibble::cli
