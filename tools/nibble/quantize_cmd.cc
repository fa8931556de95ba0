// `nibble quantize`, `nibble dequantize` and `nibble export --format hf`: Hugging Face
// checkpoints in the bitsandbytes / transformers layout.
#include <fmt/core.h>

#include <memory>

#include "commands.h"
#include "sampling_flags.h"
#include "nibble/nibble.h"
#include "progress.h"

namespace nibble::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, method = "nf4", compute_dtype = "float32", dtype = "auto", skip = "lm_head", format = "hf";
  bool double_quant = false, overwrite = false, progress = false, allow_nonfinite = false;
  int64_t blocksize = 64;
  double threshold = 6.0;
  int threads = 0;
};

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(',', start);
    const std::string item = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!item.empty()) out.push_back(item);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

void PrintReport(const char* verb, const QuantizeArgs& a, const QuantizeReport& r) {
  const MemoryStats mem = ReadMemoryStats();
  const double bpp_in = r.num_params ? 8.0 * double(r.in_file_bytes) / double(r.num_params) : 0.0;
  const double bpp_out = r.num_params ? 8.0 * double(r.out_file_bytes) / double(r.num_params) : 0.0;
  const double bpw_q = r.quantized_params ? 8.0 * double(r.quantized_bytes) / double(r.quantized_params) : 0.0;
  fmt::print("{} -> {}: {} tensors, {} quantized Linear weights ({} params)\n", a.in, a.out, r.num_tensors,
             r.num_quantized, Thousands(r.quantized_params));
  std::string files;
  for (const std::string& f : r.files) files += (files.empty() ? "" : ", ") + f;
  fmt::print("wrote {}\n", files);
  if (r.num_quantized > 0 && std::string(verb) == "quantize")
    fmt::print("quantized weights: {:.3f} bits/param with scales; error vs source: max |err| {:.4g}, mean |err| {:.4g}, "
               "rms {:.4g}\n",
               bpw_q, r.max_abs_error, r.mean_abs_error, r.rms_error);
  fmt::print(
      "summary: {} {} {} ({:.2f} bits/param) -> {} ({:.2f} bits/param; quantized weights {:.3f} bits/param) | {} params "
      "| {:.2f} s | peak alloc {} | peak RSS {}\n",
      verb, r.in_format, HumanBytes(r.in_file_bytes), bpp_in, HumanBytes(r.out_file_bytes), bpp_out, bpw_q,
      Thousands(r.num_params), r.seconds, HumanBytes(r.peak_alloc_bytes), HumanBytes(mem.peak_rss_bytes));
}

// The flags every directory-writing command has.
void AddOutputFlags(CLI::App* cmd, QuantizeArgs& a) {
  cmd->add_flag("--overwrite", a.overwrite,
                "Replace OUT if it is a model directory nibble may replace (see README: what --overwrite may delete)");
  cmd->add_flag("--progress", a.progress, "Draw the progress bar even when stderr is not a terminal");
  AddThreadsFlag(cmd, a.threads);
}

void AddNonfiniteFlag(CLI::App* cmd, QuantizeArgs& a) {
  cmd->add_flag("--allow-nonfinite", a.allow_nonfinite,
                "Write tensors holding NaN or infinity instead of refusing them (never the ones quantized)");
}

// Runs `call` with a per-tensor progress bar, then prints the report.
template <class Options, class Call>
int RunWithProgress(const char* verb, const QuantizeArgs& a, Options& o, Call call) {
  o.overwrite = a.overwrite;
  o.num_threads = a.threads;
  ProgressBar bar(verb, a.progress || StderrIsTty(), "tensors");
  o.progress = [&bar](uint64_t done, uint64_t total, std::string_view name) { bar.Update(done, total, name); };
  const QuantizeReport r = call(o);
  bar.Finish();
  PrintReport(verb, a, r);
  return 0;
}

}  // namespace

std::function<int()> AddQuantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a model into a Hugging Face (bitsandbytes) checkpoint");
  cmd->add_option("--method", a->method, "nf4 | fp4 | int8 (LLM.int8()) | int8-absmax | int8-zeropoint | int4")
      ->capture_default_str();
  cmd->add_flag("--double-quant", a->double_quant, "Quantize the absmax constants too (nf4/fp4; ~4.127 bits/param)");
  cmd->add_option("--blocksize", a->blocksize,
                  "Elements per scale: 4-bit a power of two in [32, 4096]; int8-absmax/zeropoint > 0, 0 = per row, "
                  "-1 = per tensor")
      ->capture_default_str();
  cmd->add_option("--compute-dtype", a->compute_dtype, "bnb_4bit_compute_dtype: float32 | bfloat16 | float16")
      ->capture_default_str();
  cmd->add_option("--threshold", a->threshold, "llm_int8_threshold: outlier feature magnitude (0 = pure int8)")
      ->capture_default_str();
  cmd->add_option("--skip-modules", a->skip, "Comma-separated Linear modules kept unquantized (llm_int8_skip_modules)")
      ->capture_default_str();
  cmd->add_option("--dtype", a->dtype, "dtype of the unquantized tensors: auto | f32 | bf16 | f16")->capture_default_str();
  AddOutputFlags(cmd, *a);
  AddNonfiniteFlag(cmd, *a);
  cmd->add_option("IN", a->in, "llama2.c .bin, GGUF file, or Hugging Face directory")->required();
  cmd->add_option("OUT", a->out, "output Hugging Face directory (written atomically)")->required();
  cmd->footer(
      "Examples:\n"
      "  nibble quantize --method nf4 --double-quant --compute-dtype bfloat16 assets/stories260K/stories260K.bin "
      "/tmp/stories-nf4\n"
      "  nibble quantize --method int8 --threshold 6.0 model.gguf /tmp/model-int8\n"
      "  nibble quantize --method int4 --blocksize 64 hf-model/ /tmp/model-int4\n"
      "OUT loads in transformers + bitsandbytes (nf4, fp4, int8) and in nibble (all methods):\n"
      "  nibble generate -m /tmp/stories-nf4 -p \"Once upon a time\"\n");
  return [a] {
    QuantizeOptions o;
    o.method = a->method;
    o.double_quant = a->double_quant;
    o.blocksize = a->blocksize;
    o.compute_dtype = a->compute_dtype;
    o.threshold = a->threshold;
    o.skip_modules = SplitComma(a->skip);
    o.dtype = a->dtype;
    o.allow_nonfinite = a->allow_nonfinite;
    return RunWithProgress("quantize", *a, o, [&](const QuantizeOptions& opt) { return Quantize(a->in, a->out, opt); });
  };
}

std::function<int()> AddExport(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("export", "Write any model nibble loads as a Hugging Face directory");
  cmd->add_option("--format", a->format, "Output format: hf")->capture_default_str();
  cmd->add_option("-m,--model", a->in, "llama2.c .bin, GGUF file, or Hugging Face directory")->required();
  cmd->add_option("--dtype", a->dtype, "auto | f32 | bf16 | f16")->capture_default_str();
  AddOutputFlags(cmd, *a);
  AddNonfiniteFlag(cmd, *a);
  cmd->add_option("OUT", a->out, "output directory (written atomically)")->required();
  cmd->footer(
      "Examples:\n"
      "  nibble export --format hf -m assets/stories260K/stories260K.bin /tmp/stories-hf\n"
      "  nibble export --format hf --dtype bf16 -m model.gguf /tmp/model-hf\n"
      "Writes config.json, model.safetensors (Q/K rows in HF's rotate-half order), tokenizer.json and\n"
      "tokenizer_config.json built from the model's vocabulary.\n");
  return [a] {
    if (a->format != "hf") throw ConfigError(fmt::format("--format: only \"hf\" is supported, got \"{}\"", a->format));
    QuantizeOptions o;
    o.method = "none";
    o.dtype = a->dtype;
    o.allow_nonfinite = a->allow_nonfinite;
    return RunWithProgress("export", *a, o, [&](const QuantizeOptions& opt) { return Quantize(a->in, a->out, opt); });
  };
}

std::function<int()> AddDequantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("dequantize", "Turn a quantized Hugging Face checkpoint back into a plain one");
  cmd->add_option("--dtype", a->dtype, "auto (each weight's recorded dtype) | f32 | bf16 | f16")->capture_default_str();
  AddOutputFlags(cmd, *a);
  cmd->add_option("IN", a->in, "quantized Hugging Face directory (bitsandbytes 4/8-bit or nibble)")->required();
  cmd->add_option("OUT", a->out, "output directory (written atomically)")->required();
  cmd->footer(
      "Examples:\n"
      "  nibble dequantize /tmp/stories-nf4 /tmp/stories-dq\n"
      "  nibble dequantize --dtype bf16 llama-7b-bnb-4bit/ /tmp/llama-7b-bf16\n");
  return [a] {
    DequantizeOptions o;
    o.dtype = a->dtype;
    return RunWithProgress("dequantize", *a, o,
                           [&](const DequantizeOptions& opt) { return Dequantize(a->in, a->out, opt); });
  };
}

}  // namespace nibble::cli
