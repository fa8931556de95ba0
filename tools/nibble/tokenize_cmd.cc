// `nibble tokenize -m MODEL|-t TOKENIZER -p TEXT`: token ids and pieces, as llama.cpp's
// llama-tokenize prints them (`  id -> 'piece'`; --ids: a Python-style list).
#include <fmt/core.h>

#include <memory>

#include "commands.h"
#include "nibble/error.h"
#include "nibble/generate.h"
#include "nibble/input.h"

namespace nibble::cli {
namespace {

struct TokenizeArgs {
  std::string model, tokenizer, prompt, prompt_file;
  bool ids = false, json = false, no_bos = false, parse_special = false;
};

// JSON string body: quotes, backslashes and control bytes escaped; other bytes as they are.
std::string JsonEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

int RunTokenize(TokenizeArgs& a) {
  if (a.model.empty() && a.tokenizer.empty()) throw ConfigError("tokenize: give -m MODEL or -t TOKENIZER");
  if (a.ids && a.json) throw ConfigError("tokenize: --ids and --json exclude each other");
  if (!a.prompt_file.empty()) {
    a.prompt = ReadInputFile(a.prompt_file, "prompt file (-f)", kMaxTextFileBytes);
  }
  const TokenizeResult r = Tokenize(a.model, a.tokenizer, a.prompt, !a.no_bos, a.parse_special);
  if (a.ids) {
    std::string s = "[";
    for (size_t i = 0; i < r.ids.size(); ++i) s += (i ? ", " : "") + std::to_string(r.ids[i]);
    fmt::print("{}]\n", s);
  } else if (a.json) {
    fmt::print("[");
    for (size_t i = 0; i < r.ids.size(); ++i)
      fmt::print("{}{{\"id\": {}, \"piece\": \"{}\"}}", i ? ", " : "", r.ids[i], JsonEscape(r.pieces[i]));
    fmt::print("]\n");
  } else {
    for (size_t i = 0; i < r.ids.size(); ++i) fmt::print("{:>6} -> '{}'\n", r.ids[i], r.pieces[i]);
  }
  fmt::print(stderr, "summary: {} tokens\n", r.ids.size());
  return 0;
}

}  // namespace

std::function<int()> AddTokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids and pieces of a text");
  cmd->add_option("-m,--model", args->model,
                  "Model whose tokenizer to use (GGUF, or llama2.c .bin with its tokenizer beside it)");
  cmd->add_option("-t,--tokenizer", args->tokenizer, "Tokenizer file: GGUF vocabulary or llama2.c tokenizer .bin");
  cmd->add_option("-p,--prompt", args->prompt, "Text to tokenize");
  cmd->add_option("-f,--file", args->prompt_file, "Read the text from FILE");
  cmd->add_flag("--ids", args->ids, "Print only the ids, as a list: [1, 9038, 2501]");
  cmd->add_flag("--json", args->json, "Print a JSON array of {id, piece}");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add BOS/EOS as the vocabulary asks");
  cmd->add_flag("--parse-special", args->parse_special, "Turn control pieces written in the text (<s>) into their ids");
  cmd->footer(
      "Examples:\n"
      "  nibble tokenize -m assets/stories260K/stories260K.gguf -p \"Once upon a time\"\n"
      "  nibble tokenize -t assets/stories260K/tok512.bin -p \"Hello world\" --ids\n"
      "  nibble tokenize -m model.gguf -f text.txt --json\n");
  return [args] { return RunTokenize(*args); };
}

}  // namespace nibble::cli
