// `nibble convert --dtype D IN OUT`: float tensors to another float dtype.
#include <fmt/core.h>

#include <memory>

#include "commands.h"
#include "sampling_flags.h"
#include "nibble/nibble.h"
#include "progress.h"

namespace nibble::cli {
namespace {

struct ConvertArgs {
  std::string in, out, dtype;
  bool keep_norms_f32 = false;
  bool progress = false, overwrite = false, allow_nonfinite = false;
  int threads = 0;
};

int RunConvert(const ConvertArgs& a) {
  ConvertOptions o;
  const auto dt = ParseDType(a.dtype);
  if (!dt) throw ConfigError(fmt::format("--dtype: unknown dtype '{}'", a.dtype));
  o.dtype = *dt;
  o.keep_norms_f32 = a.keep_norms_f32;
  o.num_threads = a.threads;
  o.overwrite = a.overwrite;
  o.allow_nonfinite = a.allow_nonfinite;
  ProgressBar bar("convert", a.progress || StderrIsTty());
  o.progress = [&bar](uint64_t done, uint64_t total, std::string_view name) { bar.Update(done, total, name); };
  const ConvertReport r = Convert(a.in, a.out, o);
  bar.Finish();
  const MemoryStats mem = ReadMemoryStats();
  const double bpp_in = r.num_params ? double(r.in_tensor_bytes) / double(r.num_params) : 0.0;
  const double bpp_out = r.num_params ? double(r.out_tensor_bytes) / double(r.num_params) : 0.0;
  fmt::print("{} -> {}: {} tensors, {} converted to {}{}\n", a.in, a.out, r.num_tensors, r.num_converted, a.dtype,
             a.keep_norms_f32 ? " (norms kept in f32)" : "");
  fmt::print("error introduced: max |err| {:.6g}, mean |err| {:.6g}, max rel {:.6g}{}\n", r.max_abs_error,
             r.mean_abs_error, r.max_rel_error,
             r.num_nonfinite_out ? fmt::format(", {} values overflowed to inf/NaN", r.num_nonfinite_out) : "");
  std::fflush(stdout);
  for (const std::string& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
  fmt::print(
      "summary: {} {} ({:.3f} bytes/param) -> {} {} ({:.3f} bytes/param) | {} params | {:.3f} s | "
      "peak alloc {} | peak RSS {}\n",
      r.in_format, HumanBytes(r.in_file_bytes), bpp_in, r.out_format, HumanBytes(r.out_file_bytes), bpp_out,
      Thousands(r.num_params), r.seconds, HumanBytes(r.peak_alloc_bytes), HumanBytes(mem.peak_rss_bytes));
  return 0;
}

}  // namespace

std::function<int()> AddConvert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a model's float tensors to another float dtype");
  cmd->add_option("--dtype", args->dtype, "Target dtype: f32, f16, bf16, tf32, f8_e4m3fn, f8_e5m2")->required();
  cmd->add_option("IN", args->in, "safetensors file or directory, GGUF file, or llama2.c .bin")->required();
  cmd->add_option("OUT", args->out, "output .safetensors or .gguf (written atomically)")->required();
  cmd->add_flag("--keep-norms-f32", args->keep_norms_f32, "Keep normalisation weights (names with 'norm') in f32");
  cmd->add_flag("--overwrite", args->overwrite, "Replace OUT if it exists (atomically: the old file stays until the new one is complete)");
  cmd->add_flag("--allow-nonfinite", args->allow_nonfinite, "Convert tensors holding NaN or infinity instead of refusing them");
  cmd->add_flag("--progress", args->progress, "Draw the progress bar even when stderr is not a terminal");
  AddThreadsFlag(cmd, args->threads);
  cmd->footer(
      "Examples:\n"
      "  nibble convert --dtype bf16 assets/stories260K/stories260K.gguf /tmp/stories260K-bf16.gguf\n"
      "  nibble convert --dtype f8_e4m3fn model.safetensors model-fp8.safetensors\n"
      "  nibble convert --dtype f16 --keep-norms-f32 stories260K.bin stories260K-f16.safetensors\n"
      "Notes: GGUF output needs GGUF input and holds f32, f16 or bf16; quantized GGUF tensors are\n"
      "dequantized first; integer tensors are copied unchanged; tf32 is stored as F32.\n");
  return [args] { return RunConvert(*args); };
}

}  // namespace nibble::cli
