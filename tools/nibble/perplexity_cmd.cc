// `nibble perplexity -m MODEL -f TEXT`: llama.cpp's perplexity protocol or the Hugging
// Face sliding window; prints `PPL = x +/- y`, the tokens evaluated, time and a summary.
#include <fmt/core.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "sampling_flags.h"
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
  PrintPerplexityReport(r, o.kl_divergence.empty() ? o.text_path : o.kl_divergence + " (its tokens)");
  return 0;
}

// llama.cpp's KL-divergence block, same names and order.
void PrintKld(const KlDivergenceReport& k) {
  fmt::print("\n====== KL divergence vs {} ({} positions{})\n", k.reference_model, k.positions,
             k.top_k_lower_bound ? "; reference kept its top-k only: KLD is a lower bound" : "");
  fmt::print("PPL(Q)              = {:.4f}\n", k.ppl);
  fmt::print("PPL(base)           = {:.4f}\n", k.ppl_base);
  fmt::print("ln(PPL(Q)/PPL(base))= {:.6f} +/- {:.6f}\n", k.ln_ppl_ratio, k.ln_ppl_ratio_stderr);
  fmt::print("PPL(Q)-PPL(base)    = {:+.4f}\n", k.delta_ppl);
  fmt::print("Mean    KLD         = {:.6f} +/- {:.6f}\n", k.mean_kld, k.mean_kld_stderr);
  fmt::print("Maximum KLD         = {:.6f}\n", k.max_kld);
  fmt::print("99.9%   KLD         = {:.6f}\n", k.p99_9_kld);
  fmt::print("99.0%   KLD         = {:.6f}\n", k.p99_kld);
  fmt::print("90.0%   KLD         = {:.6f}\n", k.p90_kld);
  fmt::print("Median  KLD         = {:.6f}\n", k.median_kld);
  fmt::print("10.0%   KLD         = {:.6f}\n", k.p10_kld);
  fmt::print("Minimum KLD         = {:.6f}\n", k.min_kld);
  fmt::print("Same top p          = {:.3f} +/- {:.3f} %\n", 100 * k.same_top1, 100 * k.same_top1_stderr);
  fmt::print("RMS Δp              = {:.3f} %\n", 100 * k.rms_dp);
  fmt::print("Mean Δp             = {:+.3f} %\n", 100 * k.mean_dp);
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
  if (r.kld_base_bytes > 0)
    fmt::print("KL-divergence reference written: {} ({})\n", HumanBytes(r.kld_base_bytes),
               r.kld_base_bytes);
  if (r.kld) PrintKld(*r.kld);
  std::fflush(stdout);
  fmt::print(stderr,
             "summary: ppl {:.4f} +/- {:.5f} | mean nll {:.4f} | scored {} | evaluated {} tokens {:.1f} tok/s | "
             "windows {} | ctx {} | stride {} | {:.2f} s | peak RSS {} | peak alloc {}\n",
             r.ppl, r.ppl_stderr, r.mean_nll, r.scored_tokens, r.evaluated_tokens, r.tokens_per_s, r.windows, r.ctx,
             r.stride, r.seconds, HumanBytes(r.peak_rss_bytes), HumanBytes(r.peak_alloc_bytes));
  if (r.kld)
    fmt::print(stderr, "summary: kld {:.6f} +/- {:.6f} | same top-1 {:.2f} % | ppl {:.4f} vs base {:.4f} ({:+.4f})\n",
               r.kld->mean_kld, r.kld->mean_kld_stderr, 100 * r.kld->same_top1, r.kld->ppl, r.kld->ppl_base,
               r.kld->delta_ppl);
}

std::function<int()> AddPerplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  cmd->add_option("-m,--model", o->model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")
      ->required();
  cmd->add_option("-t,--tokenizer", o->tokenizer_path,
                  "Tokenizer file (GGUF vocabulary or llama2.c tokenizer .bin); default: the model's own");
  cmd->add_option("-a,--adapter", o->adapter_path, "PEFT LoRA adapter directory, applied unmerged");
  cmd->add_option("-f,--file", o->text_path, "UTF-8 text to score (not with --kl-divergence: the file has the tokens)");
  cmd->add_option("-c,--ctx", o->ctx,
                  "Window length in tokens (llama.cpp's default; more than the model declares is allowed with a "
                  "warning)")
      ->capture_default_str();
  cmd->add_option("--stride", o->stride,
                  "0: llama.cpp protocol (non-overlapping windows, second half scored); S > 0: Hugging Face "
                  "sliding window, a window every S tokens")
      ->capture_default_str();
  cmd->add_option("--chunks", o->max_chunks, "Score at most this many windows (0: all)")->capture_default_str();
  AddThreadsFlag(cmd, o->num_threads);
  cmd->add_flag("--int8-activations", o->int8_activations,
                "4-bit layers quantize activations to int8 per block of 64 (llama.cpp's arithmetic; see "
                "docs/QUALITY.md for its cost)");
  cmd->add_flag("--int8-classifier", o->int8_classifier,
                "Quantize the classifier at load to int8 per row (LLM.int8() without outliers)");
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite,
                "Load weights holding NaN or infinity instead of refusing them");
  cmd->add_option("--dtype", o->weight_dtype, "Weight matrices at load: auto (as stored), f32 or bf16")
      ->capture_default_str();
  cmd->add_option("--kl-divergence-base", o->kl_divergence_base,
                  "Write this run's log-probabilities to FILE as the reference for --kl-divergence");
  cmd->add_flag("--overwrite", o->overwrite, "Replace an existing --kl-divergence-base FILE");
  cmd->add_option("--kl-divergence", o->kl_divergence,
                  "Compare with the reference FILE on its tokens: mean KLD, top-1 agreement, delta PPL");
  cmd->add_option("--kl-top-k", o->kl_top_k,
                  "Reference storage: 0 = all log-probs (u16 grid, 2 bytes x vocab per position); K = top K only "
                  "(8 bytes x K; the KLD is then a lower bound)")
      ->capture_default_str();
  cmd->footer(
      "Examples:\n"
      "  nibble perplexity -m assets/stories260K/stories260K.bin "
      "-f assets/tinystories-excerpt/tinystories_val_excerpt.txt\n"
      "  nibble perplexity -m model.gguf -f wiki.test.raw -c 512 --chunks 20\n"
      "  nibble perplexity -m model.gguf -f text.txt -c 1024 --stride 512\n"
      "  nibble perplexity -m model-f32.gguf -f wiki.test.raw --chunks 20 --kl-divergence-base ref.kld\n"
      "  nibble perplexity -m model-q4.gguf --kl-divergence ref.kld\n"
      "PPL and counts go to stdout; warnings, the progress bar and the summary line to stderr.\n");
  return [o] { return RunPerplexity(*o); };
}

}  // namespace nibble::cli
