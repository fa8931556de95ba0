// `nibble finetune -m MODEL --method full|lora --text FILE -o OUT`: trains on plain text,
// prints a line per logged step (loss, learning rate, grad norm, tokens/s) and a summary,
// and writes a PEFT adapter or a Hugging Face model directory with metrics.jsonl.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "nibble/finetune.h"
#include "progress.h"
#include "sampling_flags.h"

namespace nibble::cli {
namespace {

int RunFinetune(FinetuneOptions o) {
  const int64_t every = o.logging_steps;
  o.on_step = [every](const FinetuneOptions::Step& s) {
    if (s.step % every != 0 && s.step != s.max_steps) return;
    const double eta = s.elapsed_s / static_cast<double>(s.step) * static_cast<double>(s.max_steps - s.step);
    fmt::print(stderr, "step {:>5}/{} | loss {:.4f} | lr {:.3e} | grad_norm {:.4f} | {:.0f} tok/s | epoch {:.2f} | "
               "eta {:.0f} s\n",
               s.step, s.max_steps, s.loss, s.learning_rate, s.grad_norm, s.tokens_per_s, s.epoch, eta);
  };
  const FinetuneReport r = Finetune(o);
  for (const auto& w : r.warnings) fmt::print(stderr, "nibble: warning: {}\n", w);
  fmt::print("{}: {} files written: {}\n", o.out_dir, r.files.size(), fmt::join(r.files, ", "));
  std::fflush(stdout);
  const double pct = r.total_params > 0 ? 100.0 * static_cast<double>(r.trainable_params) / r.total_params : 0;
  fmt::print(stderr,
             "summary: {} | {} steps | loss {:.4f} -> {:.4f} | trainable {} of {} params ({:.3f} %) | {} tokens "
             "in {:.1f} s ({:.0f} tok/s) | memory: weights {} grads {} optimizer {} activations {} logits {} "
             "scratch {} base (mapped) {} | peak RSS {}\n",
             r.method, r.steps, r.first_loss, r.last_loss, Thousands(r.trainable_params), Thousands(r.total_params),
             pct, Thousands(r.tokens), r.seconds, r.tokens_per_s, HumanBytes(r.weight_bytes),
             HumanBytes(r.gradient_bytes), HumanBytes(r.optimizer_bytes), HumanBytes(r.activation_bytes),
             HumanBytes(r.logits_bytes), HumanBytes(r.scratch_bytes), HumanBytes(r.base_mapped_bytes),
             HumanBytes(r.peak_rss_bytes));
  return 0;
}

}  // namespace

std::function<int()> AddFinetune(CLI::App& app) {
  auto o = std::make_shared<FinetuneOptions>();
  CLI::App* cmd = app.add_subcommand("finetune", "Fine-tune a model on plain text: full or LoRA, AdamW");
  cmd->add_option("-m,--model", o->model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")
      ->required();
  cmd->add_option("-t,--tokenizer", o->tokenizer_path, "Tokenizer file; default: the model's own");
  cmd->add_option("--text", o->text_path, "UTF-8 training text, tokenized once and packed into --seq-len windows")
      ->required();
  cmd->add_option("-o,--out,--output_dir", o->out_dir,
                  "Output directory: a PEFT adapter (lora) or an HF model (full), with metrics.jsonl")
      ->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace an existing OUT that holds only nibble's files");
  cmd->add_option("--method", o->method, "full | lora")->capture_default_str();
  cmd->add_option("--seq-len", o->seq_len, "Tokens per training window")->capture_default_str();
  cmd->add_option("--batch-size,--per_device_train_batch_size", o->batch_size, "Windows per micro-batch")
      ->capture_default_str();
  cmd->add_option("--grad-accum,--gradient_accumulation_steps", o->grad_accum,
                  "Micro-batches per optimizer step (the loss is averaged over all their tokens)")
      ->capture_default_str();
  cmd->add_option("--max-steps,--max_steps", o->max_steps, "Optimizer steps")->capture_default_str();
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
  cmd->add_option("--r,--lora-r", o->r, "LoRA rank")->capture_default_str();
  cmd->add_option("--lora-alpha,--lora_alpha", o->lora_alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  cmd->add_option("--lora-dropout,--lora_dropout", o->lora_dropout, "Dropout on the LoRA input")
      ->capture_default_str();
  cmd->add_option("--target-modules,--target_modules", o->target_modules,
                  "Module names or suffixes (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj lm_head), or "
                  "all-linear (every Linear but lm_head)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_flag("--use-rslora,--use_rslora", o->use_rslora, "Scale alpha/sqrt(r) (rank-stabilised LoRA)");
  cmd->add_option("--init-lora-weights,--init_lora_weights", o->init_lora_weights,
                  "true (A Kaiming-uniform, B zero) | gaussian | false")
      ->capture_default_str();
  AddThreadsFlag(cmd, o->num_threads);
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite, "Load weights holding NaN or infinity");
  cmd->footer(
      "Examples:\n"
      "  nibble finetune -m assets/stories260K/stories260K.bin --method lora --target-modules all-linear \\\n"
      "      --text ../shared/data/text-tinyshakespeare/input.txt --seq-len 128 --batch-size 4 --max-steps 40 \\\n"
      "      --lr 1e-3 -o /tmp/stories-lora\n"
      "  nibble finetune -m model-hf/ --method full --text corpus.txt --seq-len 256 --max-steps 200 \\\n"
      "      --lr 5e-5 --warmup-steps 20 --lr-scheduler cosine -o /tmp/model-ft\n"
      "A line per logged step and the summary go to stderr; OUT/metrics.jsonl has one row per logged step\n"
      "(step, loss, learning_rate, grad_norm, epoch: the HF Trainer's log_history names).\n");
  return [o] { return RunFinetune(*o); };
}

}  // namespace nibble::cli
