// nibble CLI entry point: parses the subcommand, runs it, turns errors into one line
// on stderr and a non-zero exit code.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "commands.h"
#include "nibble/nibble.h"

int main(int argc, char** argv) {
  CLI::App app{"nibble: make large language models small and cheap to run and fine-tune, on a CPU"};
  // --cpu caps the kernels (as NIBBLE_CPU does) before anything runs: applied while
  // parsing, ahead of --version (which reports the cap) and of the subcommand.
  std::string cpu_cap;
  app.add_option("--cpu", cpu_cap,
                 "Cap the CPU code paths: native (default), avx512, avx2 or scalar; overrides NIBBLE_CPU. "
                 "`nibble --cpu avx2 --version` shows what each kernel runs")
      ->check(CLI::IsMember({"native", "avx512", "avx2", "scalar"}))
      ->trigger_on_parse()
      ->each([](const std::string& v) { nibble::SetCpuDispatchCap(v); });
  app.set_version_flag("--version", [] { return nibble::CpuDispatchReport(); },
                       "Print the version, the CPU features found, the cap in force and each kernel's path");
  app.fallthrough();
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  nibble demo\n"
      "  nibble inspect assets/stories260K/stories260K.bin\n"
      "  nibble convert --dtype bf16 model.gguf model-bf16.gguf\n"
      "  nibble quantize --method nf4 --double-quant model.gguf /tmp/model-nf4\n"
      "  nibble export --format hf -m assets/stories260K/stories260K.bin /tmp/stories-hf\n"
      "  nibble generate -m assets/stories260K/stories260K.bin -p \"Once upon a time\" -n 64\n"
      "  nibble tokenize -m assets/stories260K/stories260K.gguf -p \"Hello world\"\n"
      "  nibble perplexity -m assets/stories260K/stories260K.bin \\\n"
      "      -f assets/tinystories-excerpt/tinystories_val_excerpt.txt\n"
      "  NIBBLE_CPU=avx2 nibble --version      # what an AVX2-only CPU would run\n"
      "Run 'nibble COMMAND --help' for a command's flags and examples.\n");
  const auto inspect = nibble::cli::AddInspect(app);
  const auto convert = nibble::cli::AddConvert(app);
  const auto generate = nibble::cli::AddGenerate(app);
  const auto tokenize = nibble::cli::AddTokenize(app);
  const auto perplexity = nibble::cli::AddPerplexity(app);
  const auto demo = nibble::cli::AddDemo(app);
  const auto chat = nibble::cli::AddChat(app);
  const auto quantize = nibble::cli::AddQuantize(app);
  const auto dequantize = nibble::cli::AddDequantize(app);
  const auto export_hf = nibble::cli::AddExport(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("inspect")) return inspect();
    if (app.got_subcommand("convert")) return convert();
    if (app.got_subcommand("generate")) return generate();
    if (app.got_subcommand("tokenize")) return tokenize();
    if (app.got_subcommand("perplexity")) return perplexity();
    if (app.got_subcommand("demo")) return demo();
    if (app.got_subcommand("chat")) return chat();
    if (app.got_subcommand("quantize")) return quantize();
    if (app.got_subcommand("dequantize")) return dequantize();
    if (app.got_subcommand("export")) return export_hf();
  } catch (const nibble::Error& e) {
    fmt::print(stderr, "nibble: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "nibble: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "nibble: error: {}\n", e.what());
    return 1;
  }
  return 1;
}
