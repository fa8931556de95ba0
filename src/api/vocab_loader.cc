// Tokenizer vocabularies from files: GGUF `tokenizer.ggml.*` metadata, llama2.c
// tokenizer .bin (whose token count is not stored: it is found by walking the records)
// and Hugging Face tokenizer.json / tokenizer.model (+ tokenizer_config.json beside them).
#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "api/model_loader.h"
#include "io/llama2c.h"
#include "io/mapped_file.h"
#include "io/text_file.h"
#include "nibble/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace nibble::api {
namespace {
namespace fs = std::filesystem;
using tokenizer::TokenType;
using tokenizer::Vocab;

const io::GgufValue* Find(const io::GgufFile& g, std::string_view key) {
  const io::GgufKv* kv = g.FindKey(key);
  return kv == nullptr ? nullptr : &kv->value;
}

[[noreturn]] void WrongType(const io::GgufFile& g, std::string_view key, std::string_view want,
                            const io::GgufValue& v) {
  throw FormatError(fmt::format("{}: key '{}': expected {}, got {}", g.source(), key, want, GgufValueTypeName(v)));
}

std::string GetString(const io::GgufFile& g, std::string_view key, const io::GgufValue& v) {
  if (const auto* s = std::get_if<std::string>(&v.value)) return *s;
  WrongType(g, key, "string", v);
}

// An integer of any width, range-checked into int64.
int64_t GetInt(const io::GgufFile& g, std::string_view key, const io::GgufValue& v) {
  if (const auto* u = std::get_if<uint64_t>(&v.value)) {
    if (*u > static_cast<uint64_t>(INT64_MAX)) WrongType(g, key, "an integer <= INT64_MAX", v);
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&v.value)) return *i;
  WrongType(g, key, "integer", v);
}

const std::vector<io::GgufValue>& GetArray(const io::GgufFile& g, std::string_view key, const io::GgufValue& v) {
  if (const auto* a = std::get_if<io::GgufArray>(&v.value)) return a->items;
  WrongType(g, key, "array", v);
}

int32_t IdOr(const io::GgufFile& g, std::string_view key, int32_t fallback) {
  const io::GgufValue* v = Find(g, key);
  if (v == nullptr) return fallback;
  const int64_t id = GetInt(g, key, *v);
  // llama.cpp writes "no such token" as u32 0xFFFFFFFF (LLAMA_TOKEN_NULL cast to unsigned).
  if (id == int64_t{UINT32_MAX} || id == -1) return tokenizer::kNoToken;
  if (id < INT32_MIN || id > INT32_MAX) WrongType(g, key, "a 32-bit token id", *v);
  return static_cast<int32_t>(id);
}

bool FlagOr(const io::GgufFile& g, std::string_view key, bool fallback) {
  const io::GgufValue* v = Find(g, key);
  if (v == nullptr) return fallback;
  if (const auto* b = std::get_if<bool>(&v->value)) return *b;
  WrongType(g, key, "bool", *v);
}

// llama2.c tokenizer .bin: i32 max_token_length, then {f32 score, i32 len, len bytes}
// records to the end of the file. Returns the record count; FormatError when a record
// runs past the end.
int64_t CountLlama2cTokens(std::span<const uint8_t> b, const std::string& path) {
  if (b.size() < 4)
    throw FormatError(fmt::format("{}: llama2.c tokenizer: file has {} bytes, need >= 4", path, b.size()));
  size_t pos = 4;
  int64_t n = 0;
  while (pos < b.size()) {
    if (b.size() - pos < 8)
      throw FormatError(fmt::format("{}: llama2.c tokenizer: record {} header truncated at byte {}", path, n, pos));
    int32_t len = 0;
    std::memcpy(&len, b.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || static_cast<size_t>(len) > b.size() - pos)
      throw FormatError(fmt::format("{}: llama2.c tokenizer: record {} length {} runs past the end ({} bytes left)",
                                    path, n, len, b.size() - pos));
    pos += static_cast<size_t>(len);
    ++n;
  }
  return n;
}

// tokenizer.json by name, or by content: a JSON object (first and last non-blank
// bytes '{' and '}'), which neither GGUF nor a llama2.c .bin can be.
bool IsTokenizerJson(const std::string& path, std::span<const uint8_t> b) {
  if (fs::path(path).extension() == ".json") return true;
  const auto blank = [](uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  size_t first = 0, last = b.size();
  while (first < last && blank(b[first])) ++first;
  while (last > first && blank(b[last - 1])) --last;
  return last - first >= 2 && b[first] == '{' && b[last - 1] == '}';
}

// Tokenizer JSON is parsed into a DOM several times its size: bounded as config files are.
void CheckJsonSize(const std::string& path, uint64_t bytes) {
  if (bytes > io::kMaxConfigFileBytes)
    throw IoError(fmt::format("{}: {} bytes, more than the limit of {} MiB for a tokenizer JSON file", path, bytes,
                              io::kMaxConfigFileBytes >> 20));
}

// transformers keeps add_bos_token / bos_token and friends in tokenizer_config.json
// next to tokenizer.json or tokenizer.model; they override what the tokenizer file says.
void ApplySiblingTokenizerConfig(const std::string& tokenizer_path, Vocab* v) {
  const fs::path cfg = fs::path(tokenizer_path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (!fs::is_regular_file(cfg, ec)) return;
  const std::shared_ptr<io::MappedFile> file = io::MappedFile::Open(cfg.string());
  const std::span<const uint8_t> b = file->bytes();
  CheckJsonSize(cfg.string(), b.size());
  tokenizer::ApplyTokenizerConfig(*v, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()),
                                  cfg.string());
}

}  // namespace

Vocab VocabFromGguf(const io::GgufFile& g) {
  auto require = [&](std::string_view key) -> const io::GgufValue& {
    const io::GgufValue* v = Find(g, key);
    if (v == nullptr)
      throw ConfigError(fmt::format("{}: GGUF key '{}' is missing (no tokenizer in this file)", g.source(), key));
    return *v;
  };
  Vocab v;
  v.model = tokenizer::ParseVocabModel(GetString(g, "tokenizer.ggml.model", require("tokenizer.ggml.model")));
  const bool spm = v.model == tokenizer::VocabModel::kSpm;
  if (const io::GgufValue* pre = Find(g, "tokenizer.ggml.pre"); pre != nullptr && !spm)
    v.pre = tokenizer::ParsePreTokenizer(GetString(g, "tokenizer.ggml.pre", *pre));
  constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
  for (const auto& it : GetArray(g, kTokens, require(kTokens))) v.pieces.push_back(GetString(g, kTokens, it));
  if (const io::GgufValue* s = Find(g, "tokenizer.ggml.scores")) {
    for (const auto& it : GetArray(g, "tokenizer.ggml.scores", *s)) {
      const auto* d = std::get_if<double>(&it.value);
      if (d == nullptr) WrongType(g, "tokenizer.ggml.scores", "f32 items", it);
      v.scores.push_back(static_cast<float>(*d));
    }
  }
  if (const io::GgufValue* t = Find(g, "tokenizer.ggml.token_type")) {
    for (const auto& it : GetArray(g, "tokenizer.ggml.token_type", *t)) {
      const int64_t type = GetInt(g, "tokenizer.ggml.token_type", it);
      // Vocab::Validate rejects values outside TokenType; clamp only the representation.
      v.types.push_back(static_cast<TokenType>(type < 0 || type > INT32_MAX ? -1 : type));
    }
  } else {
    v.types.assign(v.pieces.size(), TokenType::kNormal);
  }
  if (const io::GgufValue* m = Find(g, "tokenizer.ggml.merges")) {
    for (const auto& it : GetArray(g, "tokenizer.ggml.merges", *m))
      v.merges.push_back(GetString(g, "tokenizer.ggml.merges", it));
  }
  // llama.cpp's defaults (llama_vocab::impl::load): SPM bos 1, eos 2, unk 0, space
  // prefix on; GPT-2 BPE bos = eos = 11.
  v.bos_id = IdOr(g, "tokenizer.ggml.bos_token_id", spm ? 1 : 11);
  v.eos_id = IdOr(g, "tokenizer.ggml.eos_token_id", spm ? 2 : 11);
  v.unk_id = IdOr(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : tokenizer::kNoToken);
  v.pad_id = IdOr(g, "tokenizer.ggml.padding_token_id", tokenizer::kNoToken);
  v.add_bos = FlagOr(g, "tokenizer.ggml.add_bos_token", spm);
  v.add_eos = FlagOr(g, "tokenizer.ggml.add_eos_token", false);
  v.space_prefix = FlagOr(g, "tokenizer.ggml.add_space_prefix", spm) ? tokenizer::SpacePrefix::kLlamaCpp
                                                                      : tokenizer::SpacePrefix::kNone;
  return v;
}

Vocab VocabFromFile(const std::string& path, std::optional<int64_t> vocab_size) {
  const std::shared_ptr<io::MappedFile> file = io::MappedFile::Open(path);
  const std::span<const uint8_t> bytes = file->bytes();
  Vocab v;
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) {
    v = VocabFromGguf(io::GgufFile::Open(path));
  } else if (IsTokenizerJson(path, bytes)) {
    CheckJsonSize(path, bytes.size());
    v = tokenizer::VocabFromTokenizerJson(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                          path);
    ApplySiblingTokenizerConfig(path, &v);
  } else if (fs::path(path).extension() == ".model") {
    v = tokenizer::VocabFromSentencePieceModel(path);
    ApplySiblingTokenizerConfig(path, &v);
  } else {
    const int64_t n = CountLlama2cTokens(bytes, path);
    if (vocab_size && n != *vocab_size)
      throw ConfigError(
          fmt::format("{}: tokenizer has {} tokens but the model's vocab_size is {}", path, n, *vocab_size));
    if (n < 1 || n > INT32_MAX) throw FormatError(fmt::format("{}: llama2.c tokenizer holds {} tokens", path, n));
    io::Llama2cTokenizer t = io::Llama2cTokenizer::Parse(bytes, path, static_cast<int32_t>(n));
    v = Vocab::FromLlama2c(std::move(t.pieces), std::move(t.scores));
  }
  if (vocab_size && v.size() != *vocab_size)
    throw ConfigError(
        fmt::format("{}: tokenizer has {} tokens but the model's vocab_size is {}", path, v.size(), *vocab_size));
  return v;
}

std::string FindDefaultTokenizer(const std::string& model_path) {
  const fs::path dir = fs::path(model_path).parent_path();
  for (const char* name : {"tok512.bin", "tokenizer.bin"}) {
    std::error_code ec;
    const fs::path p = dir / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw ConfigError(
      fmt::format("{}: a llama2.c checkpoint needs its tokenizer: pass -t/--tokenizer FILE (no tok512.bin or "
                  "tokenizer.bin in '{}')",
                  model_path, dir.empty() ? "." : dir.string()));
}

std::string FindHfTokenizer(const std::string& model_path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(model_path, ec) ? fs::path(model_path) : fs::path(model_path).parent_path();
  for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
    const fs::path p = dir / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw ConfigError(fmt::format(
      "{}: no tokenizer.json or tokenizer.model in '{}': pass -t/--tokenizer FILE (tokenizer.json, tokenizer.model "
      "or a GGUF vocabulary of this model)",
      model_path, dir.empty() ? "." : dir.string()));
}

}  // namespace nibble::api
