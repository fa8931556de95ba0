// `nibble chat -m MODEL`: an interactive conversation on stdin/stdout with the model's
// chat template (or --template FILE); -p answers one message and exits. Each reply's
// tok/s goes to stderr, and a summary line when the chat ends.
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "sampling_flags.h"
#include "nibble/chat.h"
#include "nibble/error.h"
#include "progress.h"

namespace nibble::cli {
namespace {

struct ChatArgs {
  ChatOptions o;
  std::string prompt;  // -p: one-shot
  std::optional<uint64_t> seed;
  bool no_kv_reuse = false;
};

void PrintTurnStats(const ChatReply& r) {
  fmt::print(stderr, "[{} prompt tokens ({} reused from the cache) {:.0f} ms | {} generated {:.1f} tok/s | stop {}]\n",
             r.prompt_ids.size(), r.reused_tokens, r.prompt_ms, r.generated_tokens, r.generation_tokens_per_s,
             StopReasonName(r.stop_reason));
}

int RunChat(ChatArgs& a) {
  ChatOptions& o = a.o;
  o.seed = a.seed;
  o.reuse_kv = !a.no_kv_reuse;
  o.on_piece = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  ChatSession chat(o);
  for (const auto& w : chat.warnings()) fmt::print(stderr, "nibble: warning: {}\n", w);
  if (!a.prompt.empty()) {
    const ChatReply r = chat.Send(a.prompt);
    fmt::print("\n");
    std::fflush(stdout);
    PrintTurnStats(r);
  } else {
    const bool tty = isatty(STDIN_FILENO) != 0;
    if (tty) fmt::print(stderr, "nibble chat: type a message; /reset clears the conversation, /exit or Ctrl-D ends.\n");
    std::string line;
    while (true) {
      if (tty) {
        fmt::print("> ");
        std::fflush(stdout);
      }
      if (!std::getline(std::cin, line)) break;
      if (line == "/exit") break;
      if (line == "/reset") {
        chat.Reset();
        fmt::print(stderr, "[conversation cleared]\n");
        continue;
      }
      if (line.empty()) continue;
      try {
        const ChatReply r = chat.Send(line);
        fmt::print("\n");
        std::fflush(stdout);
        PrintTurnStats(r);
      } catch (const ConfigError& e) {  // e.g. the context is full: the user can /reset
        fmt::print(stderr, "nibble: error: {}\n", e.what());
      }
    }
  }
  const ChatSummary s = chat.Summary();
  const double gen_tps = s.generation_ms > 0 ? 1e3 * static_cast<double>(s.generated_tokens) / s.generation_ms : 0;
  const double prompt_tps = s.prompt_ms > 0 ? 1e3 * static_cast<double>(s.forwarded_tokens) / s.prompt_ms : 0;
  fmt::print(stderr,
             "summary: {} turns | prompt {} tokens forwarded {:.1f} tok/s, {} reused | generated {} tokens {:.1f} "
             "tok/s | ctx {} | seed {} | peak RSS {} | peak alloc {}\n",
             s.turns, s.forwarded_tokens, prompt_tps, s.reused_tokens, s.generated_tokens, gen_tps, s.ctx_size,
             s.seed, HumanBytes(s.peak_rss_bytes), HumanBytes(s.peak_alloc_bytes));
  return 0;
}

}  // namespace

std::function<int()> AddChat(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  ChatOptions& o = args->o;
  CLI::App* cmd = app.add_subcommand("chat", "Chat with an instruction-tuned model using its chat template");
  cmd->add_option("-m,--model", o.model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")->required();
  cmd->add_option("-t,--tokenizer", o.tokenizer_path, "Tokenizer file (default: the model's own)");
  cmd->add_option("--template", o.template_path,
                  "Jinja2 chat template file (default: the model's GGUF tokenizer.chat_template or "
                  "tokenizer_config.json chat_template)");
  cmd->add_option("--system", o.system_prompt, "System message (default: none; the template's default applies)");
  cmd->add_option("-p,--prompt", args->prompt, "Answer this one message and exit (for scripts)");
  cmd->add_option("-n,--n-predict", o.n_predict, "Tokens per reply at most (-1: until end of turn or a full context)")
      ->capture_default_str();
  AddSamplingFlags(cmd, o, args->seed);
  cmd->add_option("-c,--ctx", o.ctx_size,
                  "Context size in tokens for the whole conversation (default: the model's declared context, at "
                  "most 4096)");
  cmd->add_flag("--no-kv-reuse", args->no_kv_reuse,
                "Re-run the whole conversation each turn instead of reusing the KV cache");
  cmd->footer(
      "Examples:\n"
      "  nibble chat -m SmolLM2-135M-Instruct.Q4_1.gguf\n"
      "  nibble chat -m model.gguf --system \"Answer briefly.\" --temp 0 -p \"What is the capital of France?\"\n"
      "  nibble chat -m assets/stories260K/stories260K.gguf --template chatml.jinja -n 32\n"
      "Replies go to stdout; per-reply tok/s and the summary line to stderr. In the loop, /reset clears the\n"
      "conversation and /exit (or end of input) ends it.\n");
  return [args] { return RunChat(*args); };
}

}  // namespace nibble::cli
