// tokenizer.json and tokenizer_config.json → Vocab. The JSON layout is the one the
// `tokenizers` library serializes (tokenizers/src/tokenizer/serialization.rs and the
// model/normalizer/pre-tokenizer/processor serde types); only the shapes that map
// exactly onto nibble's two encoders are accepted, everything else is an error.
#include "tokenizer/hf_tokenizer.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nibble/error.h"

namespace nibble::tokenizer {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's word marker

// The Split regexes of the models nibble knows, exactly as their tokenizer.json spells
// them (Meta-Llama-3-8B; Qwen2-7B), with the PreTokenizer whose PCRE2 list splits the same.
struct KnownSplit {
  std::string_view pattern;
  PreTokenizer pre;
};
constexpr KnownSplit kKnownSplits[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizer::kLlama3},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     PreTokenizer::kQwen2},
};

// Ranks become float scores (-rank); float holds every integer below 2^24 exactly.
constexpr size_t kMaxExactRank = size_t{1} << 24;

std::string Describe(const json& v) {
  if (v.is_string() || v.is_number() || v.is_boolean() || v.is_null()) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return fmt::format("{} {}", v.type_name(), s);
  }
  return v.type_name();
}

// Typed access with messages "<source>: key '<path>': expected ..., got ...".
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  [[noreturn]] void Malformed(std::string_view key, std::string_view what) const {
    throw FormatError(fmt::format("{}: key '{}': {}", source_, key, what));
  }
  [[noreturn]] void WrongType(std::string_view key, std::string_view expected, const json& got) const {
    Malformed(key, fmt::format("expected {}, got {}", expected, Describe(got)));
  }
  [[noreturn]] void Unsupported(std::string_view key, std::string_view what) const {
    throw ConfigError(fmt::format("{}: key '{}': {}", source_, key, what));
  }

  const json* Opt(const json& obj, std::string_view key, std::string_view name) const {
    if (!obj.is_object()) WrongType(key, "an object", obj);
    const auto it = obj.find(name);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  const json& Get(const json& obj, std::string_view key, std::string_view name) const {
    const json* v = Opt(obj, key, name);
    if (v == nullptr) Malformed(Join(key, name), "is missing");
    return *v;
  }
  const std::string& Str(const json& v, std::string_view key) const {
    if (!v.is_string()) WrongType(key, "a string", v);
    return v.get_ref<const std::string&>();
  }
  bool Bool(const json& v, std::string_view key) const {
    if (!v.is_boolean()) WrongType(key, "a boolean", v);
    return v.get<bool>();
  }
  const json& Array(const json& v, std::string_view key) const {
    if (!v.is_array()) WrongType(key, "an array", v);
    return v;
  }
  const json& Object(const json& v, std::string_view key) const {
    if (!v.is_object()) WrongType(key, "an object", v);
    return v;
  }
  // A token id: an integer in [0, INT32_MAX).
  int64_t Id(const json& v, std::string_view key) const {
    if (v.is_number_unsigned() && v.get<uint64_t>() < static_cast<uint64_t>(INT32_MAX)) return v.get<int64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < INT32_MAX) return v.get<int64_t>();
    WrongType(key, "a token id (an integer in [0, 2^31-1))", v);
  }
  // Optional flag with a default, as serde fills absent fields.
  bool Flag(const json& obj, std::string_view key, std::string_view name, bool fallback) const {
    const json* v = Opt(obj, key, name);
    return v == nullptr ? fallback : Bool(*v, Join(key, name));
  }
  std::string_view Type(const json& obj, std::string_view key) const {
    return Str(Get(Object(obj, key), key, "type"), Join(key, "type"));
  }

  static std::string Join(std::string_view key, std::string_view name) {
    return key.empty() ? std::string(name) : fmt::format("{}.{}", key, name);
  }
  static std::string Index(std::string_view key, size_t i) { return fmt::format("{}[{}]", key, i); }

 private:
  std::string_view source_;
};

// A pre-tokenizer or normalizer step with its key, Sequence steps flattened.
struct Step {
  const json* obj;
  std::string key;
  std::string_view type;
};

std::vector<Step> Steps(const Reader& r, const json* v, std::string_view key, std::string_view list_name) {
  std::vector<Step> out;
  if (v == nullptr) return out;
  const std::string_view type = r.Type(*v, key);
  if (type != "Sequence") {
    out.push_back({v, std::string(key), type});
    return out;
  }
  const std::string list_key = Reader::Join(key, list_name);
  const json& list = r.Array(r.Get(*v, key, list_name), list_key);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string k = Reader::Index(list_key, i);
    const std::string_view t = r.Type(list[i], k);
    if (t == "Sequence") r.Unsupported(k, "nested Sequence is not supported");
    out.push_back({&list[i], k, t});
  }
  return out;
}

// Byte-level pre-tokenizers: ByteLevel alone (GPT-2), Digits + ByteLevel (SmolLM2,
// StarCoder), or Split(known regex) + ByteLevel without its own regex (Llama 3, Qwen2).
PreTokenizer ByteLevelPreTokenizer(const Reader& r, const std::vector<Step>& steps) {
  const Step& bl = steps.back();
  if (bl.type != "ByteLevel") r.Unsupported(bl.key, fmt::format("expected ByteLevel as the last step, got {}", bl.type));
  // serde's default for an absent add_prefix_space / use_regex is true.
  if (r.Flag(*bl.obj, bl.key, "add_prefix_space", true))
    r.Unsupported(Reader::Join(bl.key, "add_prefix_space"), "true (a space before the text) is not supported");
  const bool use_regex = r.Flag(*bl.obj, bl.key, "use_regex", true);
  if (steps.size() == 1) {
    if (!use_regex) r.Unsupported(Reader::Join(bl.key, "use_regex"), "ByteLevel alone without its regex");
    return PreTokenizer::kGpt2;
  }
  if (steps.size() != 2) r.Unsupported("pre_tokenizer", fmt::format("a Sequence of {} steps is not supported", steps.size()));
  const Step& first = steps[0];
  if (first.type == "Digits") {
    if (!r.Flag(*first.obj, first.key, "individual_digits", false))
      r.Unsupported(Reader::Join(first.key, "individual_digits"), "only individual_digits: true is supported");
    if (!use_regex) r.Unsupported(Reader::Join(bl.key, "use_regex"), "Digits + ByteLevel needs use_regex: true");
    return PreTokenizer::kSmollm;
  }
  if (first.type != "Split") r.Unsupported(first.key, fmt::format("pre-tokenizer {} is not supported", first.type));
  const std::string pattern_key = Reader::Join(first.key, "pattern");
  const json& pattern = r.Object(r.Get(*first.obj, first.key, "pattern"), pattern_key);
  const json* regex = r.Opt(pattern, pattern_key, "Regex");
  if (regex == nullptr) r.Unsupported(pattern_key, "only a Regex pattern is supported");
  const std::string& re = r.Str(*regex, Reader::Join(pattern_key, "Regex"));
  const std::string behavior_key = Reader::Join(first.key, "behavior");
  if (r.Str(r.Get(*first.obj, first.key, "behavior"), behavior_key) != "Isolated")
    r.Unsupported(behavior_key, "only Isolated is supported");
  if (r.Flag(*first.obj, first.key, "invert", false)) r.Unsupported(Reader::Join(first.key, "invert"), "true");
  if (use_regex) r.Unsupported(Reader::Join(bl.key, "use_regex"), "Split + ByteLevel needs use_regex: false");
  for (const KnownSplit& k : kKnownSplits) {
    if (k.pattern == re) return k.pre;
  }
  r.Unsupported(Reader::Join(pattern_key, "Regex"),
                fmt::format("unrecognised Split pattern \"{}\" (nibble knows the Llama 3 and Qwen2 patterns)", re));
}

// SentencePiece-style: normalizer [Prepend "▁"] + Replace " " → "▁" with no
// pre-tokenizer (Llama 2, TinyLlama, Mistral v0.1), or a Metaspace pre-tokenizer with
// split: false and no normalizer (newer conversions). Returns where the space prefix goes.
SpacePrefix SpmSpaceHandling(const Reader& r, const json& root) {
  const std::vector<Step> norms = Steps(r, r.Opt(root, "", "normalizer"), "normalizer", "normalizers");
  const std::vector<Step> pres = Steps(r, r.Opt(root, "", "pre_tokenizer"), "pre_tokenizer", "pretokenizers");
  if (!norms.empty() && !pres.empty())
    r.Unsupported("pre_tokenizer", "a SentencePiece-style file has either a normalizer or a Metaspace pre-tokenizer");
  if (!pres.empty()) {
    const Step& m = pres.front();
    if (pres.size() != 1 || m.type != "Metaspace")
      r.Unsupported(m.key, fmt::format("expected ByteLevel or Metaspace, got {}", m.type));
    const std::string rep_key = Reader::Join(m.key, "replacement");
    if (r.Str(r.Get(*m.obj, m.key, "replacement"), rep_key) != kSpaceMarker)
      r.Unsupported(rep_key, "only U+2581 is supported");
    // Files written before tokenizers 0.14 have no "split" key, and serde's default is true.
    if (r.Flag(*m.obj, m.key, "split", true))
      r.Unsupported(Reader::Join(m.key, "split"), "true (or absent) is not supported: a BPE word spans the whole text");
    // Before tokenizers 0.14 the scheme was the flag add_prefix_space (true = "always");
    // tokenizers 0.23 reads an absent prepend_scheme as "always" and refuses
    // add_prefix_space: false beside any scheme but "never". nibble reads a lone false
    // as "never", its meaning in the files that carry it.
    const bool add_prefix = r.Flag(*m.obj, m.key, "add_prefix_space", true);
    const json* scheme = r.Opt(*m.obj, m.key, "prepend_scheme");
    if (scheme == nullptr) return add_prefix ? SpacePrefix::kMetaspaceAlways : SpacePrefix::kNone;
    const std::string scheme_key = Reader::Join(m.key, "prepend_scheme");
    const std::string& s = r.Str(*scheme, scheme_key);
    if (s != "always" && s != "first" && s != "never")
      r.Malformed(scheme_key, fmt::format("expected always, first or never, got \"{}\"", s));
    if (!add_prefix && s != "never")
      r.Malformed(scheme_key, fmt::format("\"{}\" contradicts add_prefix_space: false", s));
    if (s == "never") return SpacePrefix::kNone;
    return s == "first" ? SpacePrefix::kMetaspaceFirst : SpacePrefix::kMetaspaceAlways;
  }
  bool prepend = false, replace = false;
  for (const Step& n : norms) {
    if (n.type == "Prepend" && !prepend && !replace) {
      if (r.Str(r.Get(*n.obj, n.key, "prepend"), Reader::Join(n.key, "prepend")) != kSpaceMarker)
        r.Unsupported(Reader::Join(n.key, "prepend"), "only U+2581 is supported");
      prepend = true;
    } else if (n.type == "Replace" && !replace) {
      const std::string pattern_key = Reader::Join(n.key, "pattern");
      const json* from = r.Opt(r.Object(r.Get(*n.obj, n.key, "pattern"), pattern_key), pattern_key, "String");
      if (from == nullptr || r.Str(*from, pattern_key + ".String") != " " ||
          r.Str(r.Get(*n.obj, n.key, "content"), Reader::Join(n.key, "content")) != kSpaceMarker)
        r.Unsupported(n.key, "only Replace \" \" with U+2581 is supported");
      replace = true;
    } else {
      r.Unsupported(n.key, fmt::format("normalizer {} is not supported here", n.type));
    }
  }
  if (!replace) {
    r.Unsupported("normalizer", "a byte-fallback BPE needs a Replace \" \" → U+2581 normalizer or a Metaspace "
                                "pre-tokenizer (no ByteLevel pre-tokenizer found either)");
  }
  // Prepend("▁") puts the marker before every non-empty fragment, as llama.cpp does.
  return prepend ? SpacePrefix::kLlamaCpp : SpacePrefix::kNone;
}

struct Entry {
  std::string piece;
  std::string key;  // where its id came from, for messages
  bool set = false;
  bool from_model = false;  // model.vocab, which an added token may restate
};

// model.vocab and added_tokens into pieces/types; ids must cover 0..N-1 exactly.
void ReadPieces(const Reader& r, const json& root, const json& model, Vocab* v) {
  const json& vocab = r.Object(r.Get(model, "model", "vocab"), "model.vocab");
  const json* added_json = r.Opt(root, "", "added_tokens");
  const size_t added_count = added_json == nullptr ? 0 : r.Array(*added_json, "added_tokens").size();
  const size_t max_count = vocab.size() + added_count;
  std::vector<Entry> entries;
  const auto place = [&](int64_t id, const std::string& piece, std::string key, bool from_model) {
    if (static_cast<size_t>(id) >= max_count) {
      r.Malformed(key, fmt::format("id {} is outside the vocabulary: model.vocab and added_tokens hold at most {} ids, "
                                   "which must run 0..{} without gaps",
                                   id, max_count, max_count - 1));
    }
    if (entries.size() <= static_cast<size_t>(id)) entries.resize(static_cast<size_t>(id) + 1);
    Entry& e = entries[static_cast<size_t>(id)];
    if (e.set && (from_model || !e.from_model))
      r.Malformed(key, fmt::format("id {} is also given to '{}' ({})", id, e.piece, e.key));
    e = {piece, std::move(key), true, from_model};
  };
  for (const auto& [piece, id] : vocab.items()) {
    const std::string key = fmt::format("model.vocab[\"{}\"]", piece);
    place(r.Id(id, key), piece, key, true);
  }
  std::vector<std::pair<int64_t, TokenType>> added_types;
  for (size_t i = 0; added_json != nullptr && i < added_json->size(); ++i) {
    const std::string key = Reader::Index("added_tokens", i);
    const json& t = r.Object((*added_json)[i], key);
    const int64_t id = r.Id(r.Get(t, key, "id"), key + ".id");
    const std::string& content = r.Str(r.Get(t, key, "content"), key + ".content");
    if (content.empty()) r.Malformed(key + ".content", "an added token needs non-empty content");
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (r.Flag(t, key, flag, false)) r.Unsupported(Reader::Join(key, flag), "true is not supported");
    }
    // An added token may restate a model.vocab entry (GPT-2's <|endoftext|>); HF's
    // added vocabulary wins when the text differs.
    place(id, content, key + ".id", false);
    added_types.emplace_back(id, r.Flag(t, key, "special", false) ? TokenType::kControl : TokenType::kUserDefined);
  }
  for (size_t id = 0; id < entries.size(); ++id) {
    if (!entries[id].set)
      r.Malformed("model.vocab", fmt::format("no token has id {} (ids must run 0..{} without gaps)", id,
                                             entries.size() - 1));
  }
  v->pieces.reserve(entries.size());
  for (Entry& e : entries) v->pieces.push_back(std::move(e.piece));
  v->types.assign(v->pieces.size(), TokenType::kNormal);
  for (const auto& [id, type] : added_types) v->types[static_cast<size_t>(id)] = type;
}

// model.merges as (left, right) strings: "a b" (one space) or ["a", "b"] (newer files).
std::vector<std::pair<std::string, std::string>> ReadMerges(const Reader& r, const json& model) {
  const json& merges = r.Array(r.Get(model, "model", "merges"), "model.merges");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string key = Reader::Index("model.merges", i);
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sep = s.find(' ');
      if (sep == std::string::npos || s.find(' ', sep + 1) != std::string::npos)
        r.Malformed(key, fmt::format("expected \"left right\" with exactly one space, got \"{}\"", s));
      out.emplace_back(s.substr(0, sep), s.substr(sep + 1));
    } else if (m.is_array() && m.size() == 2) {
      out.emplace_back(r.Str(m[0], key + "[0]"), r.Str(m[1], key + "[1]"));
    } else {
      r.WrongType(key, "a \"left right\" string or a [left, right] pair", m);
    }
  }
  return out;
}

// BOS/EOS from a TemplateProcessing (alone or inside a Sequence): the special token
// before $A is BOS, the one after it EOS.
void ReadPostProcessor(const Reader& r, const json& root, Vocab* v) {
  const std::vector<Step> steps = Steps(r, r.Opt(root, "", "post_processor"), "post_processor", "processors");
  for (const Step& s : steps) {
    if (s.type == "ByteLevel") continue;
    if (s.type != "TemplateProcessing")
      r.Unsupported(s.key, fmt::format("post-processor {} is not supported", s.type));
    const std::string single_key = Reader::Join(s.key, "single");
    const json& single = r.Array(r.Get(*s.obj, s.key, "single"), single_key);
    const std::string specials_key = Reader::Join(s.key, "special_tokens");
    const json& specials = r.Object(r.Get(*s.obj, s.key, "special_tokens"), specials_key);
    bool seen_a = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string key = Reader::Index(single_key, i);
      const json& item = r.Object(single[i], key);
      if (const json* seq = r.Opt(item, key, "Sequence")) {
        const std::string& which = r.Str(r.Get(*seq, key + ".Sequence", "id"), key + ".Sequence.id");
        if (which != "A" || seen_a) r.Malformed(key, fmt::format("unexpected sequence \"{}\" in single", which));
        seen_a = true;
        continue;
      }
      const json* tok = r.Opt(item, key, "SpecialToken");
      if (tok == nullptr) r.Malformed(key, "expected a Sequence or SpecialToken item");
      const std::string& name = r.Str(r.Get(*tok, key + ".SpecialToken", "id"), key + ".SpecialToken.id");
      const std::string name_key = fmt::format("{}[\"{}\"]", specials_key, name);
      const json& spec = r.Get(specials, specials_key, name);
      const json& ids = r.Array(r.Get(spec, name_key, "ids"), name_key + ".ids");
      if (ids.size() != 1) r.Unsupported(name_key + ".ids", fmt::format("expected one id, got {}", ids.size()));
      const int64_t id = r.Id(ids[0], name_key + ".ids[0]");
      if (id >= v->size()) r.Malformed(name_key + ".ids[0]", fmt::format("id {} is outside the vocabulary", id));
      int32_t& slot = seen_a ? v->eos_id : v->bos_id;
      bool& flag = seen_a ? v->add_eos : v->add_bos;
      if (flag) r.Unsupported(key, "more than one special token on the same side of $A");
      slot = static_cast<int32_t>(id);
      flag = true;
    }
    if (!seen_a) r.Malformed(single_key, "has no $A sequence");
  }
}

int32_t FindPiece(const Vocab& v, std::string_view piece) {
  for (int32_t id = v.size() - 1; id >= 0; --id) {
    if (v.pieces[static_cast<size_t>(id)] == piece) return id;
  }
  return kNoToken;
}

json Parse(std::string_view text, std::string_view source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
}

}  // namespace

Vocab VocabFromTokenizerJson(std::string_view json_text, std::string_view source) {
  const Reader r(source);
  const json root = Parse(json_text, source);
  r.Object(root, "(top level)");
  const json& model = r.Object(r.Get(root, "", "model"), "model");
  const std::string_view type = r.Type(model, "model");
  if (type != "BPE")
    r.Unsupported("model.type", fmt::format("\"{}\" is not supported (nibble reads BPE tokenizer.json files)", type));
  if (const json* d = r.Opt(model, "model", "dropout"); d != nullptr && !(d->is_number() && d->get<double>() == 0.0))
    r.Unsupported("model.dropout", fmt::format("BPE dropout {} is not supported", Describe(*d)));
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const std::string key = Reader::Join("model", affix);
    if (const json* a = r.Opt(model, "model", affix); a != nullptr && !r.Str(*a, key).empty())
      r.Unsupported(key, fmt::format("\"{}\" is not supported", a->get<std::string>()));
  }

  Vocab v;
  const std::vector<Step> pre = Steps(r, r.Opt(root, "", "pre_tokenizer"), "pre_tokenizer", "pretokenizers");
  const bool byte_level = !pre.empty() && pre.back().type == "ByteLevel";
  if (byte_level) {
    v.model = VocabModel::kBpe;
    v.pre = ByteLevelPreTokenizer(r, pre);
    // Qwen2 files carry an NFC normalizer; nibble encodes the text as given (as llama.cpp does).
    if (const json* n = r.Opt(root, "", "normalizer"); n != nullptr && r.Type(*n, "normalizer") != "NFC")
      r.Unsupported("normalizer.type", fmt::format("\"{}\" is not supported with ByteLevel", r.Type(*n, "normalizer")));
    // Llama 3 sets ignore_merges and nibble's Tokenizer ties that behaviour to kLlama3.
    const bool ignore = r.Flag(model, "model", "ignore_merges", false);
    if (ignore != (v.pre == PreTokenizer::kLlama3))
      r.Unsupported("model.ignore_merges", fmt::format("{} is not supported with the {} pre-tokenizer", ignore,
                                                       PreTokenizerName(v.pre)));
  } else {
    if (!r.Flag(model, "model", "byte_fallback", false))
      r.Unsupported("model.byte_fallback", "a BPE without a ByteLevel pre-tokenizer must be SentencePiece-style, "
                                           "with byte_fallback: true");
    if (r.Flag(model, "model", "ignore_merges", false)) r.Unsupported("model.ignore_merges", "true");
    v.model = VocabModel::kSpm;
    v.space_prefix = SpmSpaceHandling(r, root);
  }

  ReadPieces(r, root, model, &v);
  std::unordered_map<std::string_view, int32_t> ids;  // model.vocab spellings (views into v.pieces)
  const json& vocab = model["vocab"];
  ids.reserve(vocab.size());
  for (const auto& [piece, id] : vocab.items()) {
    const auto i = static_cast<size_t>(id.get<int64_t>());
    if (v.pieces[i] == piece) ids.emplace(v.pieces[i], static_cast<int32_t>(i));
  }
  const auto lookup = [&](const std::string& piece, size_t rank, std::string_view what) {
    const auto it = ids.find(piece);
    if (it == ids.end())
      r.Malformed(Reader::Index("model.merges", rank), fmt::format("{} '{}' is not in model.vocab", what, piece));
    return it->second;
  };

  const auto merges = ReadMerges(r, model);
  if (merges.size() >= kMaxExactRank)
    r.Unsupported("model.merges", fmt::format("{} merges: at most 2^24 are supported", merges.size()));
  if (v.model == VocabModel::kSpm) {
    // Unmerged pieces (characters, bytes, specials) rank below every merge.
    const float unmerged = -static_cast<float>(merges.size());
    v.scores.assign(v.pieces.size(), unmerged);
    std::vector<bool> scored(v.pieces.size(), false);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      lookup(merges[rank].first, rank, "left piece");
      lookup(merges[rank].second, rank, "right piece");
      const int32_t id = lookup(merges[rank].first + merges[rank].second, rank, "merged piece");
      if (!scored[id]) v.scores[id] = -static_cast<float>(rank);
      scored[id] = true;
    }
    for (size_t id = 0; id < v.pieces.size(); ++id) {
      uint8_t b;
      if (v.types[id] == TokenType::kNormal && ParseBytePiece(v.pieces[id], &b)) v.types[id] = TokenType::kByte;
    }
  } else {
    v.merges.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [left, right] = merges[rank];
      lookup(left, rank, "left piece");
      lookup(right, rank, "right piece");
      lookup(left + right, rank, "merged piece");
      if (left.find(' ') != std::string::npos || right.find(' ') != std::string::npos)
        r.Malformed(Reader::Index("model.merges", rank), "a byte-level piece contains a space");
      v.merges.push_back(left + " " + right);
    }
  }

  if (const json* unk = r.Opt(model, "model", "unk_token")) {
    const std::string& piece = r.Str(*unk, "model.unk_token");
    v.unk_id = FindPiece(v, piece);
    if (v.unk_id == kNoToken) r.Malformed("model.unk_token", fmt::format("'{}' is not a token", piece));
    v.types[static_cast<size_t>(v.unk_id)] = TokenType::kUnknown;
  }
  ReadPostProcessor(r, root, &v);
  if (const json* pad = r.Opt(root, "", "padding"); pad != nullptr && r.Opt(*pad, "padding", "pad_id") != nullptr) {
    const int64_t id = r.Id((*pad)["pad_id"], "padding.pad_id");
    if (id >= v.size()) r.Malformed("padding.pad_id", fmt::format("id {} is outside the vocabulary", id));
    v.pad_id = static_cast<int32_t>(id);
  }
  v.Validate(source);
  return v;
}

void ApplyTokenizerConfig(Vocab& vocab, std::string_view json_text, std::string_view source) {
  const Reader r(source);
  const json root = Parse(json_text, source);
  r.Object(root, "(top level)");
  const std::pair<const char*, int32_t*> tokens[] = {
      {"bos_token", &vocab.bos_id}, {"eos_token", &vocab.eos_id}, {"unk_token", &vocab.unk_id}, {"pad_token", &vocab.pad_id}};
  for (const auto& [key, slot] : tokens) {
    const json* t = r.Opt(root, "", key);
    if (t == nullptr) continue;
    // A string, or an AddedToken object {"__type": "AddedToken", "content": ...}.
    const std::string& piece = t->is_object() ? r.Str(r.Get(*t, key, "content"), Reader::Join(key, "content"))
                                              : r.Str(*t, key);
    const int32_t id = FindPiece(vocab, piece);
    if (id == kNoToken) r.Unsupported(key, fmt::format("'{}' is not a token of the vocabulary", piece));
    *slot = id;
  }
  if (const json* b = r.Opt(root, "", "add_bos_token")) vocab.add_bos = r.Bool(*b, "add_bos_token");
  if (const json* e = r.Opt(root, "", "add_eos_token")) vocab.add_eos = r.Bool(*e, "add_eos_token");
  vocab.Validate(source);
}

}  // namespace nibble::tokenizer
