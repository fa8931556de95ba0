// Vocab → tokenizer.json and tokenizer_config.json, in the layout `tokenizers` 0.23 and
// transformers 5 write (tests/golden/tokenizer/*.json are such files). Every check that
// could make the file encode differently from nibble runs before anything is written.
#include "tokenizer/hf_tokenizer_writer.h"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <nlohmann/json.hpp>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/utf8.h"

namespace nibble::tokenizer {
namespace {

// Keys in the order tokenizers writes them, so the output reads like a real file.
using ojson = nlohmann::ordered_json;

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word marker

// The Split regexes of Meta-Llama-3-8B and Qwen2-7B exactly as their tokenizer.json spells
// them: the strings VocabFromTokenizerJson recognises (hf_tokenizer.cc, kKnownSplits).
constexpr std::string_view kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr std::array<std::string_view, kNumTokenTypes> kTypeNames = {
    "undefined", "normal", "unknown", "control", "user-defined", "unused", "byte"};
static_assert(std::size(kTypeNames) == kNumTokenTypes);

std::string_view TypeName(TokenType t) { return kTypeNames[static_cast<size_t>(t)]; }

[[noreturn]] void Unsupported(std::string_view what) {
  throw ConfigError(fmt::format("tokenizer.json writer: {}", what));
}

bool IsUtf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = Utf8SequenceLength(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

bool IsAddedType(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}
// SPM pieces that take part in merges. Byte, control and unknown pieces never do: the
// SentencePiece trainer adds them whole, and tokenizers matches specials before the model.
bool IsMergeableType(TokenType t) { return t == TokenType::kNormal || t == TokenType::kUserDefined; }

// model.vocab holds every SPM piece (as SentencePieceExtractor writes it) but only the
// normal pieces of a byte-level BPE (as tokenizers writes a trained one), plus the unk
// piece, which tokenizers' BPE looks up there.
bool InModelVocab(const Vocab& v, int32_t id) {
  const TokenType t = v.types[static_cast<size_t>(id)];
  return v.model == VocabModel::kSpm || !IsAddedType(t) || t == TokenType::kUnknown;
}

// The vocabulary as tokenizer.json spells it, with a lookup by spelling.
class JsonPieces {
 public:
  // SPM normal pieces take U+2581 as the marker; everything else is kept as written.
  explicit JsonPieces(const Vocab& v) {
    const bool convert = v.model == VocabModel::kSpm && v.space_marker != kSpaceMarker;
    pieces_.reserve(v.pieces.size());
    for (size_t id = 0; id < v.pieces.size(); ++id) {
      const std::string& p = v.pieces[id];
      if (p.empty()) Unsupported(fmt::format("token {}: an empty piece has no tokenizer.json form", id));
      // JSON strings are UTF-8; nlohmann would throw on the first bad byte.
      if (!IsUtf8(p)) Unsupported(fmt::format("token {} ('{}'): the piece is not valid UTF-8", id, p));
      if (!convert || v.types[id] != TokenType::kNormal) {
        pieces_.push_back(p);
        continue;
      }
      if (p.find(kSpaceMarker) != std::string::npos) {
        Unsupported(fmt::format("token {} ('{}'): holds U+2581, which tokenizer.json reads as the word marker, while "
                                "this vocabulary's marker is '{}'",
                                id, p, v.space_marker));
      }
      pieces_.push_back(ReplaceAll(p, v.space_marker, kSpaceMarker));
    }
    ids_.reserve(pieces_.size());
    for (size_t id = 0; id < pieces_.size(); ++id) {
      const auto [it, fresh] = ids_.emplace(pieces_[id], static_cast<int32_t>(id));
      if (!fresh) {
        Unsupported(fmt::format("tokens {} and {} are both spelled '{}' (tokenizer.json needs unique spellings)",
                                it->second, id, pieces_[id]));
      }
    }
  }

  const std::string& operator[](int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  int32_t Find(std::string_view piece) const {
    const auto it = ids_.find(piece);
    return it == ids_.end() ? kNoToken : it->second;
  }

 private:
  std::vector<std::string> pieces_;
  std::unordered_map<std::string_view, int32_t> ids_;  // views into pieces_, which no longer grows
};

std::string Describe(const Vocab& v, const JsonPieces& p, int32_t id) {
  return fmt::format("token {} ('{}', {})", id, p[id], TypeName(v.types[static_cast<size_t>(id)]));
}

// Token types and byte pieces that the reader would give back differently.
void CheckTypes(const Vocab& v, const JsonPieces& p) {
  for (int32_t id = 0; id < v.size(); ++id) {
    const TokenType t = v.types[static_cast<size_t>(id)];
    uint8_t b;
    switch (t) {
      case TokenType::kUndefined:
      case TokenType::kUnused:
        Unsupported(fmt::format("{}: tokenizer.json has no {} token type", Describe(v, p, id), TypeName(t)));
      case TokenType::kUnknown:
        if (id != v.unk_id)
          Unsupported(fmt::format("{}: only the unk token (id {}) can be unknown", Describe(v, p, id), v.unk_id));
        break;
      case TokenType::kByte:
        if (v.model == VocabModel::kBpe)
          Unsupported(fmt::format("{}: a byte-level BPE vocabulary has no byte-fallback pieces", Describe(v, p, id)));
        if (!ParseBytePiece(p[id], &b))
          Unsupported(fmt::format("{}: a byte piece must be spelled \"<0xNN>\"", Describe(v, p, id)));
        break;
      case TokenType::kNormal:
        if (v.model == VocabModel::kSpm && ParseBytePiece(p[id], &b))
          Unsupported(fmt::format("{}: a normal piece spelled like a byte piece reads back as a byte piece",
                                  Describe(v, p, id)));
        break;
      case TokenType::kControl:
      case TokenType::kUserDefined:
        break;
    }
  }
  if (v.model != VocabModel::kSpm) return;
  // tokenizers' byte fallback looks up "<0xNN>" with upper-case hex only and falls back
  // to <unk> for the whole character where nibble would use a one-byte piece or <unk>
  // per byte; with all 256 present both spell an unknown character as its bytes.
  for (int b = 0; b < 256; ++b) {
    const std::string piece = fmt::format("<0x{:02X}>", b);
    const int32_t id = p.Find(piece);
    if (id == kNoToken || v.types[static_cast<size_t>(id)] != TokenType::kByte)
      Unsupported(fmt::format("SPM vocabulary has no byte piece '{}': byte_fallback needs all 256", piece));
  }
}

struct SpmMerge {
  float score;  // of the merged piece
  int32_t merged;
  size_t split;  // byte length of the left part
  int32_t left, right;
};

// transformers' SentencePieceExtractor: every split of a mergeable piece into two
// mergeable pieces, highest merged score first, then merged id, then left to right.
// Also proves that tokenizers can make every merge nibble's SPM encoder makes: that
// encoder joins any two adjacent symbols whose concatenation is a piece, where a symbol
// is one character of the text or a piece built so far.
std::vector<SpmMerge> SpmMerges(const Vocab& v, const JsonPieces& p) {
  const auto n = static_cast<size_t>(v.size());
  // A split's parts are strictly shorter, so walking pieces by byte length sees them first.
  std::vector<int32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a].size() < p[b].size(); });
  std::vector<char> reachable(n, 0);  // nibble can build the piece as one symbol
  std::vector<SpmMerge> merges;
  const auto one_char = [](std::string_view s) { return Utf8CharLength(s, 0) == s.size(); };
  for (const int32_t id : order) {
    const std::string& piece = p[id];
    if (one_char(piece)) {
      reachable[static_cast<size_t>(id)] = 1;
      continue;
    }
    const TokenType type = v.types[static_cast<size_t>(id)];
    for (size_t k = Utf8CharLength(piece, 0); k < piece.size(); k += Utf8CharLength(piece, k)) {
      const std::string_view left = std::string_view(piece).substr(0, k), right = std::string_view(piece).substr(k);
      const int32_t l = p.Find(left), r = p.Find(right);
      const bool rule = IsMergeableType(type) && l != kNoToken && r != kNoToken &&
                        IsMergeableType(v.types[static_cast<size_t>(l)]) &&
                        IsMergeableType(v.types[static_cast<size_t>(r)]);
      if (rule) {
        const float score = v.scores[static_cast<size_t>(id)];
        if (!std::isfinite(score)) Unsupported(fmt::format("{}: score {} is not finite", Describe(v, p, id), score));
        merges.push_back({score, id, k, l, r});
      }
      const bool l_symbol = one_char(left) || (l != kNoToken && reachable[static_cast<size_t>(l)]);
      const bool r_symbol = one_char(right) || (r != kNoToken && reachable[static_cast<size_t>(r)]);
      if (!l_symbol || !r_symbol) continue;
      reachable[static_cast<size_t>(id)] = 1;
      if (rule) continue;
      std::string why;
      if (!IsMergeableType(type)) {
        why = fmt::format("tokenizers never merges into a {} piece", TypeName(type));
      } else {
        const bool left_ok = l != kNoToken && IsMergeableType(v.types[static_cast<size_t>(l)]);
        const int32_t bad = left_ok ? r : l;
        const std::string_view part = left_ok ? right : left;
        why = bad == kNoToken ? fmt::format("'{}' is not a piece (tokenizers spells it as bytes)", part)
                              : fmt::format("'{}' is a {} piece, never merged", part,
                                            TypeName(v.types[static_cast<size_t>(bad)]));
      }
      Unsupported(fmt::format("{}: nibble merges '{}' + '{}' into it, but tokenizer.json can have no such merge: {}",
                              Describe(v, p, id), left, right, why));
    }
  }
  std::sort(merges.begin(), merges.end(), [](const SpmMerge& a, const SpmMerge& b) {
    return std::tuple(-a.score, a.merged, a.split) < std::tuple(-b.score, b.merged, b.split);
  });
  return merges;
}

// vocab.merges ("left right", rank order) as pairs, each part and the result a piece.
std::vector<std::pair<std::string, std::string>> BpeMerges(const Vocab& v, const JsonPieces& p) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(v.merges.size());
  std::unordered_set<std::string_view> seen;
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    const std::string& m = v.merges[rank];
    const size_t sep = m.find(' ', 1);  // Validate: present, with text on both sides
    std::string left = m.substr(0, sep), right = m.substr(sep + 1);
    const auto bad = [&](std::string_view what) {
      Unsupported(fmt::format("merge {} ('{}'): {}", rank, m, what));
    };
    if (right.find(' ') != std::string::npos) bad("a byte-level piece cannot contain a space");
    for (const std::string& part : {left, right, left + right}) {
      const int32_t id = p.Find(part);
      if (id == kNoToken) {
        bad(fmt::format("'{}' is not a piece", part));
      } else if (!InModelVocab(v, id)) {
        bad(fmt::format("{} is an added token, not in model.vocab", Describe(v, p, id)));
      }
    }
    // tokenizers keeps the last rank of a repeated merge, nibble the first.
    if (!seen.insert(m).second) bad("the merge is listed twice");
    out.emplace_back(std::move(left), std::move(right));
  }
  return out;
}

ojson Object(std::initializer_list<std::pair<const char*, ojson>> items) {
  ojson o = ojson::object();
  for (const auto& [key, value] : items) o[key] = value;
  return o;
}

ojson ReplaceStep(std::string_view from, std::string_view to) {
  return Object({{"type", "Replace"}, {"pattern", Object({{"String", from}})}, {"content", to}});
}

ojson ByteLevelStep(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return Object({{"type", "ByteLevel"},
                 {"add_prefix_space", add_prefix_space},
                 {"trim_offsets", trim_offsets},
                 {"use_regex", use_regex}});
}

// normalizer, pre_tokenizer, decoder for an SPM vocabulary (transformers' LlamaConverter).
void WriteSpmSteps(const Vocab& v, ojson* root) {
  ojson& normalizer = (*root)["normalizer"];
  ojson& pre = (*root)["pre_tokenizer"];
  switch (v.space_prefix) {
    case SpacePrefix::kLlamaCpp:
      normalizer = Object({{"type", "Sequence"},
                           {"normalizers", ojson::array({Object({{"type", "Prepend"}, {"prepend", kSpaceMarker}}),
                                                         ReplaceStep(" ", kSpaceMarker)})}});
      break;
    case SpacePrefix::kNone:
      normalizer = ReplaceStep(" ", kSpaceMarker);
      break;
    case SpacePrefix::kMetaspaceFirst:
    case SpacePrefix::kMetaspaceAlways:
      pre = Object({{"type", "Metaspace"},
                    {"replacement", kSpaceMarker},
                    {"prepend_scheme", v.space_prefix == SpacePrefix::kMetaspaceFirst ? "first" : "always"},
                    {"split", false}});
      break;
  }
  ojson decoders = ojson::array({ReplaceStep(kSpaceMarker, " "), Object({{"type", "ByteFallback"}}),
                                 Object({{"type", "Fuse"}})});
  // Drops the space the prefix added, as nibble's Decode does.
  if (v.space_prefix != SpacePrefix::kNone)
    decoders.push_back(Object({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}));
  (*root)["post_processor"] = nullptr;
  (*root)["decoder"] = Object({{"type", "Sequence"}, {"decoders", std::move(decoders)}});
}

// pre_tokenizer for a byte-level vocabulary, as the reader recognises it.
ojson BpePreTokenizer(PreTokenizer pre) {
  const auto split = [](std::string_view regex) {
    return Object({{"type", "Split"},
                   {"pattern", Object({{"Regex", regex}})},
                   {"behavior", "Isolated"},
                   {"invert", false}});
  };
  switch (pre) {
    case PreTokenizer::kGpt2:
      return ByteLevelStep(false, true, true);
    case PreTokenizer::kSmollm:
      return Object({{"type", "Sequence"},
                     {"pretokenizers", ojson::array({Object({{"type", "Digits"}, {"individual_digits", true}}),
                                                     ByteLevelStep(false, true, true)})}});
    case PreTokenizer::kLlama3:
    case PreTokenizer::kQwen2:
      return Object({{"type", "Sequence"},
                     {"pretokenizers", ojson::array({split(pre == PreTokenizer::kLlama3 ? kLlama3Split : kQwen2Split),
                                                     ByteLevelStep(false, true, false)})}});
    case PreTokenizer::kDefault:
      break;
  }
  Unsupported(fmt::format("pre-tokenizer '{}' (llama.cpp's fallback regex list) has no tokenizer.json form",
                          PreTokenizerName(pre)));
}

// BOS $A EOS for single sequences; pairs as transformers' LlamaTokenizerFast writes them.
ojson TemplateProcessing(const Vocab& v, const JsonPieces& p) {
  ojson single = ojson::array(), pair = ojson::array(), specials = ojson::object();
  const auto special = [&](int32_t id, int type_id) {
    specials[p[id]] = Object({{"id", p[id]}, {"ids", ojson::array({id})}, {"tokens", ojson::array({p[id]})}});
    return Object({{"SpecialToken", Object({{"id", p[id]}, {"type_id", type_id}})}});
  };
  const auto sequence = [](const char* name, int type_id) {
    return Object({{"Sequence", Object({{"id", name}, {"type_id", type_id}})}});
  };
  for (int type_id = 0; type_id < 2; ++type_id) {
    ojson& items = type_id == 0 ? single : pair;
    if (type_id == 1) items = single;
    if (v.add_bos) items.push_back(special(v.bos_id, type_id));
    items.push_back(sequence(type_id == 0 ? "A" : "B", type_id));
    if (v.add_eos) items.push_back(special(v.eos_id, type_id));
  }
  return Object({{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}});
}

}  // namespace

std::string TokenizerJsonFromVocab(const Vocab& vocab) {
  vocab.Validate("tokenizer.json writer");
  const JsonPieces p(vocab);
  CheckTypes(vocab, p);
  const bool spm = vocab.model == VocabModel::kSpm;

  ojson root = ojson::object();
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;  // pad_token lives in tokenizer_config.json, as transformers keeps it
  ojson added = ojson::array();
  for (int32_t id = 0; id < vocab.size(); ++id) {
    const TokenType t = vocab.types[static_cast<size_t>(id)];
    if (!IsAddedType(t)) continue;
    // normalized: false matches the raw text, before the normalizer, as nibble does.
    added.push_back(Object({{"id", id},
                            {"content", p[id]},
                            {"single_word", false},
                            {"lstrip", false},
                            {"rstrip", false},
                            {"normalized", false},
                            {"special", t != TokenType::kUserDefined}}));
  }
  root["added_tokens"] = std::move(added);
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = nullptr;
  if (spm) {
    WriteSpmSteps(vocab, &root);
    if (vocab.add_bos || vocab.add_eos) root["post_processor"] = TemplateProcessing(vocab, p);
  } else {
    root["pre_tokenizer"] = BpePreTokenizer(vocab.pre);
    // tokenizers' usual ByteLevel post-processor (offsets only), before the template as in Llama 3.
    ojson byte_level = ByteLevelStep(true, false, true);
    root["post_processor"] =
        vocab.add_bos || vocab.add_eos
            ? Object({{"type", "Sequence"},
                      {"processors", ojson::array({std::move(byte_level), TemplateProcessing(vocab, p)})}})
            : std::move(byte_level);
    root["decoder"] = ByteLevelStep(true, true, true);
  }

  ojson model = ojson::object();
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  const bool unk = vocab.unk_id != kNoToken && vocab.types[static_cast<size_t>(vocab.unk_id)] == TokenType::kUnknown;
  model["unk_token"] = unk ? ojson(p[vocab.unk_id]) : ojson(nullptr);
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = spm;
  model["byte_fallback"] = spm;
  model["ignore_merges"] = !spm && vocab.pre == PreTokenizer::kLlama3;  // nibble ties it to the Llama 3 regex
  ojson ids = ojson::object();
  // ordered_map's operator[] searches linearly; JsonPieces proved the keys unique, so
  // append to the underlying vector (GPT-2's 50257 keys: O(n) instead of O(n^2)).
  auto& entries = ids.get_ref<ojson::object_t&>();
  entries.reserve(static_cast<size_t>(vocab.size()));
  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (InModelVocab(vocab, id)) entries.emplace_back(p[id], id);
  }
  model["vocab"] = std::move(ids);
  ojson merges = ojson::array();
  if (spm) {
    for (const SpmMerge& m : SpmMerges(vocab, p)) merges.push_back(ojson::array({p[m.left], p[m.right]}));
  } else {
    for (auto& [left, right] : BpeMerges(vocab, p)) merges.push_back(ojson::array({std::move(left), std::move(right)}));
  }
  model["merges"] = std::move(merges);
  root["model"] = std::move(model);
  return root.dump(2, ' ', /*ensure_ascii=*/false);
}

std::string TokenizerConfigJsonFromVocab(const Vocab& vocab, int64_t model_max_length, std::string_view chat_template) {
  vocab.Validate("tokenizer_config.json writer");
  const JsonPieces p(vocab);
  if (!IsUtf8(chat_template)) Unsupported("chat_template is not valid UTF-8");
  ojson root = ojson::object();
  root["add_bos_token"] = vocab.add_bos;
  root["add_eos_token"] = vocab.add_eos;
  const std::pair<const char*, int32_t> tokens[] = {{"bos_token", vocab.bos_id},
                                                     {"eos_token", vocab.eos_id},
                                                     {"unk_token", vocab.unk_id},
                                                     {"pad_token", vocab.pad_id}};
  for (const auto& [key, id] : tokens) root[key] = id == kNoToken ? ojson(nullptr) : ojson(p[id]);
  // transformers' decode would otherwise turn " ." into "." (its old default).
  root["clean_up_tokenization_spaces"] = false;
  if (model_max_length > 0) root["model_max_length"] = model_max_length;
  root["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!chat_template.empty()) root["chat_template"] = chat_template;
  return root.dump(2, ' ', /*ensure_ascii=*/false);
}

}  // namespace nibble::tokenizer
