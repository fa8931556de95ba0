// `nibble finetune -m MODEL --method full|lora --text FILE|--data FILE.jsonl -o OUT`: trains
// on plain text or instruction data, shows a progress line (step, loss, learning rate,
// grad norm, tokens/s, ETA) and the validation losses, saves resumable checkpoints, and
// writes a PEFT adapter or a Hugging Face model directory with metrics.jsonl and loss.svg.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "commands.h"
#include "nibble/finetune.h"
#include "progress.h"
#include "sampling_flags.h"

namespace nibble::cli {
namespace {

std::string Duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

int RunFinetune(FinetuneOptions o) {
  const int64_t every = o.logging_steps;
  const bool tty = StderrIsTty();
  auto drawn = std::make_shared<bool>(false);
  auto end_line = [tty, drawn] {
    if (tty && *drawn) fmt::print(stderr, "\n");
    *drawn = false;
  };
  o.on_step = [every, tty, drawn](const FinetuneOptions::Step& s) {
    const double eta = s.elapsed_s / static_cast<double>(s.step) * static_cast<double>(s.max_steps - s.step);
    const std::string stats = fmt::format("loss {:.4f} | lr {:.3e} | grad_norm {:.4f} | {:.0f} tok/s | epoch {:.2f}",
                                          s.loss, s.learning_rate, s.grad_norm, s.tokens_per_s, s.epoch);
    if (tty) {  // one line redrawn in place
      constexpr int kWidth = 24;
      const int fill = static_cast<int>(kWidth * s.step / std::max<int64_t>(s.max_steps, 1));
      std::string bar(static_cast<size_t>(fill), '#');
      bar.resize(kWidth, '.');
      fmt::print(stderr, "\rstep {:>5}/{} [{}] {} | eta {}   ", s.step, s.max_steps, bar, stats, Duration(eta));
      *drawn = true;
    } else if (s.step % every == 0 || s.step == s.max_steps) {
      fmt::print(stderr, "step {:>5}/{} | {} | eta {}\n", s.step, s.max_steps, stats, Duration(eta));
    }
  };
  o.on_eval = [end_line](int64_t step, double loss) {
    end_line();
    fmt::print(stderr, "eval  step {:>5} | eval_loss {:.4f} | perplexity {:.2f}\n", step, loss, std::exp(loss));
  };
  o.on_message = [end_line](const std::string& m) {
    end_line();
    fmt::print(stderr, "{}\n", m);
  };
  const FinetuneReport r = Finetune(o);
  end_line();
  for (const auto& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
  fmt::print("{}: {} files written: {}\n", o.out_dir, r.files.size(), fmt::join(r.files, ", "));
  std::fflush(stdout);
  const double pct = r.total_params > 0 ? 100.0 * static_cast<double>(r.trainable_params) / r.total_params : 0;
  fmt::print(stderr,
             "summary: {} | {} steps{} | loss {:.4f} -> {:.4f}{} | trainable {} of {} params ({:.3f} %) | {} tokens "
             "in {:.1f} s ({:.0f} tok/s) | memory: weights {} grads {} optimizer {}{} activations {} logits {} "
             "scratch {} base (mapped) {} | estimate {} vs measured {} ({:+.1f} %) | peak RSS {}\n",
             r.method, r.steps,
             r.resumed_from_step > 0 ? fmt::format(" (resumed at {})", r.resumed_from_step) : std::string(),
             r.first_loss, r.last_loss,
             r.val_examples > 0 ? fmt::format(" | eval_loss {:.4f} -> {:.4f}", r.first_eval_loss, r.last_eval_loss)
                                : std::string(),
             Thousands(r.trainable_params), Thousands(r.total_params),
             pct, Thousands(r.tokens), r.seconds, r.tokens_per_s, HumanBytes(r.weight_bytes),
             HumanBytes(r.gradient_bytes), HumanBytes(r.optimizer_bytes),
             r.optimizer_paged_bytes > 0 ? fmt::format(" (+{} paged to disk)", HumanBytes(r.optimizer_paged_bytes))
                                         : std::string(),
             HumanBytes(r.activation_bytes), HumanBytes(r.logits_bytes), HumanBytes(r.scratch_bytes),
             HumanBytes(r.base_mapped_bytes), HumanBytes(static_cast<uint64_t>(r.estimate_total)),
             HumanBytes(static_cast<uint64_t>(r.measured_total)),
             r.measured_total > 0 ? 100.0 * (r.estimate_total - r.measured_total) / r.measured_total : 0.0,
             HumanBytes(r.peak_rss_bytes));
  return 0;
}

}  // namespace

void AddTrainShapeFlags(CLI::App* cmd, FinetuneOptions* o) {
  cmd->add_option("--method", o->method,
                  "full | lora | qlora (LoRA over a 4-bit base quantized at load, or a bnb 4-bit checkpoint)")
      ->capture_default_str();
  cmd->add_option("--optim", o->optim,
                  "adamw_torch | adamw_8bit | paged_adamw_32bit | paged_adamw_8bit (transformers' names; adamw, "
                  "adamw_bnb_8bit and paged_adamw are aliases)")
      ->capture_default_str();
  cmd->add_flag("--gradient-checkpointing,--gradient_checkpointing", o->gradient_checkpointing,
                "Recompute each layer's activations in backward (same losses, about 1/L of the activations)");
  cmd->add_option("--seq-len", o->seq_len, "Tokens per training window")->capture_default_str();
  cmd->add_option("--batch-size,--per_device_train_batch_size", o->batch_size, "Windows per micro-batch")
      ->capture_default_str();
  cmd->add_option("--r,--lora-r", o->r, "LoRA rank")->capture_default_str();
  cmd->add_option("--lora-alpha,--lora_alpha", o->lora_alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  cmd->add_option("--lora-dropout,--lora_dropout", o->lora_dropout, "Dropout on the LoRA input")
      ->capture_default_str();
  cmd->add_option("--target-modules,--target_modules", o->target_modules,
                  "Module names or suffixes (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj lm_head), or "
                  "all-linear (every Linear but lm_head). Default: q_proj,v_proj (lora), all-linear (qlora)")
      ->delimiter(',');
  cmd->add_option("--bnb-4bit-quant-type,--bnb_4bit_quant_type", o->bnb_4bit_quant_type, "qlora: nf4 | fp4")
      ->capture_default_str();
  cmd->add_option("--bnb-4bit-use-double-quant,--bnb_4bit_use_double_quant", o->bnb_4bit_use_double_quant,
                  "qlora: double quantization of the absmax constants (true | false)")
      ->capture_default_str();
  cmd->add_option("--bnb-4bit-compute-dtype,--bnb_4bit_compute_dtype", o->bnb_4bit_compute_dtype,
                  "qlora: auto (bfloat16 with AVX512-BF16, else float32) | float32 | bfloat16 | float16")
      ->capture_default_str();
  cmd->add_flag("--load-in-8bit,--load_in_8bit", o->load_in_8bit,
                "lora: quantize the base to LLM.int8() at load (k-bit LoRA)");
}

std::function<int()> AddFinetune(CLI::App& app) {
  auto o = std::make_shared<FinetuneOptions>();
  CLI::App* cmd = app.add_subcommand("finetune", "Fine-tune a model: full, LoRA or QLoRA; AdamW (32-bit, 8-bit, paged)");
  cmd->add_option("-m,--model", o->model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")
      ->required();
  cmd->add_option("-t,--tokenizer", o->tokenizer_path, "Tokenizer file; default: the model's own");
  auto* text = cmd->add_option("--text", o->text_path,
                               "UTF-8 training text, tokenized once and packed into --seq-len windows");
  auto* data = cmd->add_option("--data", o->data_path,
                               "Instruction JSONL: {prompt,response} (Dolly/HH), {question,answer} (GSM8K), "
                               "{instruction,input,output} (Alpaca) or {instruction,instances} (Self-Instruct)");
  text->excludes(data);
  cmd->add_option("--template", o->template_name,
                  "Prompt format of --data: auto (prompt/response data as is; else the model's chat template, "
                  "else alpaca) | model | alpaca | chatml | none")
      ->capture_default_str();
  cmd->add_flag("--train-on-prompt", o->train_on_prompt, "Count the loss on prompt tokens too (default: response only)");
  cmd->add_option("--val-split", o->val_split, "Fraction of the examples held out for validation (seeded)")
      ->capture_default_str();
  cmd->add_option("--val-file", o->val_file, "Validation data, of the same kind as the training data");
  cmd->add_option("-o,--out,--output_dir", o->out_dir,
                  "Run directory: checkpoint-N/ while training, then a PEFT adapter (lora) or an HF model (full), "
                  "metrics.jsonl and loss.svg")
      ->required();
  cmd->add_flag("--overwrite", o->overwrite,
                "Start over in an existing OUT that holds only nibble's files (its old checkpoints are removed)");
  AddTrainShapeFlags(cmd, o.get());
  cmd->add_option("--max-memory", o->max_memory,
                  "Refuse to start when the estimated RAM exceeds this (e.g. 8GiB), saying what the run needs");
  cmd->add_option("--paged-dir", o->paged_dir, "Where a paged optimizer keeps its state file (unlinked at once); default: OUT");
  cmd->add_option("--grad-accum,--gradient_accumulation_steps", o->grad_accum,
                  "Micro-batches per optimizer step (the loss is averaged over all their tokens)")
      ->capture_default_str();
  cmd->add_option("--max-steps,--max_steps", o->max_steps, "Optimizer steps (> 0 overrides --epochs)")
      ->capture_default_str();
  cmd->add_option("--epochs,--num_train_epochs", o->epochs, "Passes over the training examples")->capture_default_str();
  cmd->add_option("--lr,--learning_rate", o->lr, "Peak learning rate (TrainingArguments' default)")
      ->capture_default_str();
  cmd->add_option("--lr-scheduler,--lr_scheduler_type", o->lr_scheduler,
                  "constant | constant_with_warmup | linear | cosine")
      ->capture_default_str();
  cmd->add_option("--warmup-steps,--warmup_steps", o->warmup_steps, "Linear warmup steps")->capture_default_str();
  cmd->add_option("--weight-decay,--weight_decay", o->weight_decay,
                  "AdamW decoupled weight decay (not on biases and norm weights, as the HF Trainer)")
      ->capture_default_str();
  cmd->add_option("--max-grad-norm,--max_grad_norm", o->max_grad_norm, "Clip the global gradient norm (0: off)")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the data order, LoRA init and dropout")->capture_default_str();
  cmd->add_option("--logging-steps,--logging_steps", o->logging_steps, "A metrics.jsonl row every N steps")
      ->capture_default_str();
  cmd->add_option("--eval-every,--eval_steps", o->eval_every,
                  "Validation loss every N steps (0: before and after training only)")
      ->capture_default_str();
  cmd->add_option("--save-every,--save_steps", o->save_every, "Write OUT/checkpoint-N every N steps (0: none)")
      ->capture_default_str();
  cmd->add_option("--save-total-limit,--save_total_limit", o->save_total_limit,
                  "Keep only the newest N checkpoints (0: all)")
      ->capture_default_str();
  cmd->add_option("--resume-from-checkpoint,--resume_from_checkpoint", o->resume_from,
                  "Continue from OUT/checkpoint-N (a directory) or 'latest': the remaining steps log the same losses "
                  "as an uninterrupted run");
  cmd->add_flag("--use-rslora,--use_rslora", o->use_rslora, "Scale alpha/sqrt(r) (rank-stabilised LoRA)");
  cmd->add_option("--init-lora-weights,--init_lora_weights", o->init_lora_weights,
                  "true (A Kaiming-uniform, B zero) | gaussian | false")
      ->capture_default_str();
  AddThreadsFlag(cmd, o->num_threads);
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite, "Load weights holding NaN or infinity");
  cmd->footer(
      "Examples:\n"
      "  nibble finetune -m assets/stories260K/stories260K.bin --method full \\\n"
      "      --text ../shared/data/text-tinyshakespeare/input.txt --val-split 0.05 --seq-len 128 --batch-size 8 \\\n"
      "      --max-steps 200 --lr 3e-3 --eval-every 50 -o /tmp/stories-shakespeare\n"
      "  nibble finetune -m SmolLM2-135M-Instruct/ --method lora --target-modules all-linear --r 16 \\\n"
      "      --lora-alpha 32 --data ../shared/data/sft-gsm8k/train.jsonl --val-split 0.02 --seq-len 384 \\\n"
      "      --epochs 1 --lr 2e-4 --save-every 100 --save-total-limit 2 -o /tmp/smollm2-gsm8k\n"
      "  nibble finetune ... -o /tmp/smollm2-gsm8k --resume-from-checkpoint latest   # after an interruption\n"
      "Templates (--template, instruction data): auto, model (the model's chat template), alpaca, chatml, none.\n"
      "Loss counts on response tokens only unless --train-on-prompt; batches are padded to their longest\n"
      "example, padding ignored. OUT/metrics.jsonl holds the HF Trainer's log_history rows (loss, learning_rate,\n"
      "grad_norm, epoch; eval_loss), OUT/loss.svg the loss curves. TrainingArguments' spellings are accepted:\n"
      "--learning_rate --per_device_train_batch_size --gradient_accumulation_steps --num_train_epochs\n"
      "--lr_scheduler_type --save_steps --eval_steps --output_dir.\n");
  return [o] { return RunFinetune(*o); };
}

std::function<int()> AddMerge(CLI::App& app) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* cmd = app.add_subcommand("merge", "Fold a PEFT LoRA adapter into its base model (W + s*B*A)");
  cmd->add_option("-m,--model", o->model_path, "The base: GGUF, llama2.c .bin, or HF safetensors (bnb 4/8-bit too)")
      ->required();
  cmd->add_option("-t,--tokenizer", o->tokenizer_path, "Tokenizer file; default: the model's own");
  cmd->add_option("-a,--adapter", o->adapter_path, "PEFT adapter directory (adapter_config.json, adapter_model.safetensors)")
      ->required();
  cmd->add_option("-o,--out,--output_dir", o->out_dir, "Output Hugging Face directory")->required();
  cmd->add_option("--format", o->format, "hf")->capture_default_str();
  cmd->add_option("--dtype", o->dtype, "f32 | bf16 | f16: the cast after the f32 merge")->capture_default_str();
  cmd->add_option("--quantize", o->quantize,
                  "Quantize the merged model again: nf4 | fp4 | int8 | int8-absmax | int8-zeropoint | int4 (the added "
                  "rounding is measured and printed)");
  cmd->add_flag("--double-quant", o->double_quant, "With --quantize nf4 | fp4: bnb_4bit_use_double_quant");
  cmd->add_flag("--overwrite", o->overwrite, "Replace an existing OUT that holds only nibble's files");
  AddThreadsFlag(cmd, o->num_threads);
  cmd->footer(
      "Examples:\n"
      "  nibble merge -m SmolLM2-135M-Instruct/ -a /tmp/smollm2-gsm8k -o /tmp/smollm2-gsm8k-merged\n"
      "  nibble merge -m smollm2-nf4/ -a adapter/ --dtype bf16 -o merged-bf16   # a 4-bit base is dequantized\n"
      "  nibble merge -m smollm2-nf4/ -a adapter/ --quantize nf4 --double-quant -o merged-nf4   # QLoRA's recipe\n"
      "The merged weights are W + s*B*A in f32 (the product summed in double, as PEFT on CPU), then cast to\n"
      "--dtype. Check the result against the unmerged adapter: nibble perplexity -m BASE -a ADAPTER ...\n");
  return [o] {
    const MergeReport r = Merge(*o);
    for (const auto& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
    fmt::print("{}: {} files written: {}\n", o->out_dir, r.files.size(), fmt::join(r.files, ", "));
    std::fflush(stdout);
    fmt::print(stderr, "summary: merge | {} adapted modules | {} params | {} | model.safetensors {} ({:.2f} B/param) | "
               "{:.1f} s\n",
               r.merged_modules, Thousands(r.params), o->dtype, HumanBytes(r.out_bytes),
               r.params ? static_cast<double>(r.out_bytes) / static_cast<double>(r.params) : 0.0, r.seconds);
    return 0;
  };
}

}  // namespace nibble::cli
