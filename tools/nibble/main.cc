// nibble CLI entry point: parses the subcommand, runs it, turns errors into one line
// on stderr and a non-zero exit code.
#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <system_error>
#include <string>

#include "commands.h"
#include "nibble/nibble.h"

namespace {

// A closed stdin/stdout/stderr would hand its number to the next open(): a model file
// or, worse, an output being written would then receive what is printed. /dev/null
// opened read-only takes the place, so writes to a closed stdout still fail (EBADF) and
// end in the write error below.
void KeepStandardFdsOpen() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int got = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (got >= 0 && got != fd) {
      ::dup2(got, fd);
      ::close(got);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  KeepStandardFdsOpen();
  // A reader that went away (`nibble inspect m | head -1`, a closed pager) makes writes
  // fail with EPIPE, reported below as a stdout error with exit 1, instead of killing
  // nibble by SIGPIPE halfway through an output it is writing.
  std::signal(SIGPIPE, SIG_IGN);
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
      "  nibble finetune -m assets/stories260K/stories260K.bin --method lora --text input.txt \\\n"
      "      --seq-len 128 --max-steps 40 --lr 1e-3 -o /tmp/stories-lora\n"
      "  nibble memory -m Llama-2-7b-hf/config.json --method qlora --optim paged_adamw_8bit \\\n"
      "      --gradient-checkpointing --seq-len 512   # size a run before downloading the weights\n"
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
  const auto finetune = nibble::cli::AddFinetune(app);
  const auto merge = nibble::cli::AddMerge(app);
  const auto memory = nibble::cli::AddMemory(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const nibble::Error& e) {  // a value checked while parsing (--threads, --cpu)
    fmt::print(stderr, "nibble: error: {}\n", e.what());
    return 1;
  }
  int rc = 1;
  try {
    if (app.got_subcommand("inspect")) rc = inspect();
    else if (app.got_subcommand("convert")) rc = convert();
    else if (app.got_subcommand("generate")) rc = generate();
    else if (app.got_subcommand("tokenize")) rc = tokenize();
    else if (app.got_subcommand("perplexity")) rc = perplexity();
    else if (app.got_subcommand("demo")) rc = demo();
    else if (app.got_subcommand("chat")) rc = chat();
    else if (app.got_subcommand("quantize")) rc = quantize();
    else if (app.got_subcommand("dequantize")) rc = dequantize();
    else if (app.got_subcommand("export")) rc = export_hf();
    else if (app.got_subcommand("finetune")) rc = finetune();
    else if (app.got_subcommand("merge")) rc = merge();
    else if (app.got_subcommand("memory")) rc = memory();
  } catch (const nibble::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "nibble: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    fmt::print(stderr, "nibble: error: out of memory\n");
    return 1;
  } catch (const std::system_error& e) {  // fmt::print to a full or closed stdout
    if (std::ferror(stdout)) {
      fmt::print(stderr, "nibble: error: stdout: write failed: {}\n", e.code().message());
    } else {
      fmt::print(stderr, "nibble: error: {}\n", e.what());
    }
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "nibble: error: {}\n", e.what());
    return 1;
  }
  // What a command printed is its result: a full disk, a closed stdout or a broken pipe
  // is an error (exit 1), not a silent success.
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int flush_errno = errno;
  if (flush_failed || std::ferror(stdout) != 0) {
    if (flush_failed && flush_errno != 0) {
      fmt::print(stderr, "nibble: error: stdout: write failed: {}\n", std::strerror(flush_errno));
    } else {
      fmt::print(stderr, "nibble: error: stdout: write failed\n");
    }
    return 1;
  }
  return rc;
}
