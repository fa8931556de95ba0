// `nibble chat -m MODEL`: an interactive conversation on stdin/stdout with the model's
// chat template (or --template FILE); -p answers one message and exits. Each reply's
// tok/s goes to stderr, and a summary line when the chat ends.
#include <fmt/core.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "sampling_flags.h"
#include "nibble/chat.h"
#include "nibble/error.h"
#include "nibble/input.h"
#include "progress.h"

namespace nibble::cli {
namespace {

struct ChatArgs {
  ChatOptions o;
  std::string prompt;  // -p: one-shot
  std::optional<std::string> seed_text;
  bool no_kv_reuse = false;
};

void PrintTurnStats(const ChatReply& r) {
  fmt::print(stderr, "[{} prompt tokens ({} reused from the cache) {:.0f} ms | {} generated {:.1f} tok/s | stop {}]\n",
             r.prompt_ids.size(), r.reused_tokens, r.prompt_ms, r.generated_tokens, r.generation_tokens_per_s,
             StopReasonName(r.stop_reason));
}

// Ctrl-C, as chat CLIs do: during a reply it stops the reply and returns to the prompt;
// at the prompt, or a second time during a reply, it ends the chat (with the summary,
// exit 130). A third during a reply that does not stop ends the process at once.
volatile std::sig_atomic_t g_sigint = 0;  // Ctrl-Cs not yet acted on
volatile std::sig_atomic_t g_replying = 0;

void OnSigint(int) {
  g_sigint = g_sigint + 1;
  if (g_replying && g_sigint >= 3) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
  }
}

// One line from stdin with read(2), so Ctrl-C interrupts the wait (std::cin retries on
// EINTR). nullopt at end of input, or when a Ctrl-C is pending or arrives while waiting:
// SIGINT stays blocked except inside ppoll, so one that lands just before the wait is
// not lost.
class LineReader {
 public:
  std::optional<std::string> Next() {
    for (;;) {
      if (const size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (eof_) {
        if (buf_.empty()) return std::nullopt;
        std::string line = std::move(buf_);
        buf_.clear();
        return line;
      }
      if (!WaitForInput()) return std::nullopt;
      char chunk[4096];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        throw IoError(fmt::format("stdin: read failed: {}", std::strerror(errno)));
      }
      if (n == 0) {
        eof_ = true;
        continue;
      }
      buf_.append(chunk, static_cast<size_t>(n));
      if (buf_.size() > kMaxPromptFileBytes)
        throw IoError(fmt::format("stdin: a message longer than {} MiB", kMaxPromptFileBytes >> 20));
    }
  }

 private:
  // False when a Ctrl-C is pending or arrived while waiting; true when stdin is readable
  // (data, end of input or an error for read to report).
  static bool WaitForInput() {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &block, &old);
    bool ready = false;
    while (!g_sigint) {
      struct pollfd p = {STDIN_FILENO, POLLIN, 0};
      sigset_t wait_mask = old;
      sigdelset(&wait_mask, SIGINT);
      const int r = ::ppoll(&p, 1, nullptr, &wait_mask);
      if (r > 0) {
        ready = true;
        break;
      }
      if (r < 0 && errno != EINTR) {
        ready = true;  // let read report it
        break;
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ready && !g_sigint;
  }

  std::string buf_;
  bool eof_ = false;
};

int RunChat(ChatArgs& a) {
  ChatOptions& o = a.o;
  if (a.seed_text) o.seed = ParseSeed(*a.seed_text, "--seed");
  o.reuse_kv = !a.no_kv_reuse;
  o.on_piece = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  o.should_stop = [] { return g_sigint != 0; };
  ChatSession chat(o);
  for (const auto& w : chat.warnings()) fmt::print(stderr, "nibble: warning: {}\n", w);
  int rc = 0;
  if (!a.prompt.empty()) {
    const ChatReply r = chat.Send(a.prompt);
    fmt::print("\n");
    std::fflush(stdout);
    PrintTurnStats(r);
  } else {
    const bool tty = isatty(STDIN_FILENO) != 0;
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read waiting at the prompt returns EINTR
    struct sigaction old {};
    ::sigaction(SIGINT, &sa, &old);
    if (tty)
      fmt::print(stderr,
                 "nibble chat: type a message; /reset clears the conversation, /exit or Ctrl-D ends. Ctrl-C stops a "
                 "reply; at the prompt it ends the chat.\n");
    LineReader in;
    while (true) {
      if (tty) {
        fmt::print("> ");
        std::fflush(stdout);
      }
      const std::optional<std::string> line = in.Next();
      if (!line) {
        if (g_sigint) {
          fmt::print(stderr, "\n[interrupted]\n");
          rc = 130;
        }
        break;
      }
      if (*line == "/exit") break;
      if (*line == "/reset") {
        chat.Reset();
        fmt::print(stderr, "[conversation cleared]\n");
        continue;
      }
      if (line->empty()) continue;
      try {
        g_replying = 1;
        const ChatReply r = chat.Send(*line);
        g_replying = 0;
        fmt::print("\n");
        std::fflush(stdout);
        PrintTurnStats(r);
        if (g_sigint >= 2) {  // Ctrl-C twice during the reply: end the chat
          fmt::print(stderr, "[interrupted]\n");
          rc = 130;
          break;
        }
        if (r.stop_reason == StopReason::kInterrupted) g_sigint = 0;  // that Ctrl-C stopped the reply
      } catch (const ConfigError& e) {  // e.g. the context is full
        g_replying = 0;
        fmt::print(stderr, "nibble: error: {}\n", e.what());
        // At a terminal the user can /reset and go on; from a pipe or file there is no
        // one to do that, so the rest of the input is not fed to a full context.
        if (!tty) {
          rc = 1;
          break;
        }
        fmt::print(stderr, "[type /reset to start a new conversation]\n");
      }
    }
    ::sigaction(SIGINT, &old, nullptr);
  }
  const ChatSummary s = chat.Summary();
  const double gen_tps = s.generation_ms > 0 ? 1e3 * static_cast<double>(s.generated_tokens) / s.generation_ms : 0;
  const double prompt_tps = s.prompt_ms > 0 ? 1e3 * static_cast<double>(s.forwarded_tokens) / s.prompt_ms : 0;
  fmt::print(stderr,
             "summary: {} turns | prompt {} tokens forwarded {:.1f} tok/s, {} reused | generated {} tokens {:.1f} "
             "tok/s | ctx {} | seed {} | peak RSS {} | peak alloc {}\n",
             s.turns, s.forwarded_tokens, prompt_tps, s.reused_tokens, s.generated_tokens, gen_tps, s.ctx_size,
             s.seed, HumanBytes(s.peak_rss_bytes), HumanBytes(s.peak_alloc_bytes));
  return rc;
}

}  // namespace

std::function<int()> AddChat(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  ChatOptions& o = args->o;
  CLI::App* cmd = app.add_subcommand("chat", "Chat with an instruction-tuned model using its chat template");
  cmd->add_option("-m,--model", o.model_path, "GGUF file, llama2.c .bin, or HF safetensors file/directory")->required();
  cmd->add_option("-t,--tokenizer", o.tokenizer_path, "Tokenizer file (default: the model's own)");
  cmd->add_option("-a,--adapter", o.adapter_path, "PEFT LoRA adapter directory, applied unmerged");
  cmd->add_option("--template", o.template_path,
                  "Jinja2 chat template file (default: the model's GGUF tokenizer.chat_template or "
                  "tokenizer_config.json chat_template)");
  cmd->add_option("--system", o.system_prompt, "System message (default: none; the template's default applies)");
  cmd->add_option("-p,--prompt", args->prompt, "Answer this one message and exit (for scripts)");
  cmd->add_option("-n,--n-predict", o.n_predict, "Tokens per reply at most (-1: until end of turn or a full context)")
      ->capture_default_str();
  AddSamplingFlags(cmd, o, args->seed_text);
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
      "conversation and /exit (or end of input) ends it. Ctrl-C stops a reply; at the prompt (or twice) it\n"
      "ends the chat. Fed from a pipe, a full context is an error that ends the chat (exit 1).\n");
  return [args] { return RunChat(*args); };
}

}  // namespace nibble::cli
