// tokenizer.model (a SentencePiece ModelProto) → Vocab, read with Debian's
// libsentencepiece. Its 0.1.97 API has no accessor for the model type, the byte
// fallback flag, the normalizer or user-defined pieces, so those few fields are read
// from the serialized proto with a minimal wire-format walk
// (sentencepiece_model.proto field numbers are cited where used).
#include <fmt/core.h>
#include <sentencepiece_processor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/hf_tokenizer.h"

namespace nibble::tokenizer {
namespace {

// sentencepiece_model.proto: ModelProto.pieces = 1, trainer_spec = 2, normalizer_spec = 3;
// SentencePiece.type = 3; TrainerSpec.model_type = 3, byte_fallback = 35;
// NormalizerSpec.name = 1, precompiled_charsmap = 2, add_dummy_prefix = 3.
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr uint32_t kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3, kTrainerByteFallback = 35;
constexpr uint32_t kNormalizerName = 1, kNormalizerCharsmap = 2, kNormalizerAddDummyPrefix = 3;
constexpr uint64_t kModelTypeUnigram = 1, kModelTypeBpe = 2;  // TrainerSpec.ModelType
constexpr uint64_t kPieceUserDefined = 4;                      // SentencePiece.Type.USER_DEFINED

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// One message's fields in order; every read is bounded by the message's bytes.
class Wire {
 public:
  Wire(std::string_view bytes, std::string_view source) : bytes_(bytes), source_(source) {}

  // Reads the next field header; false at the end of the message.
  bool Next(uint32_t* field, WireType* type) {
    if (pos_ >= bytes_.size()) return false;
    const uint64_t key = Varint();
    *field = static_cast<uint32_t>(key >> 3);
    *type = static_cast<WireType>(key & 7);
    return true;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) Fail("varint runs past the end");
      const auto b = static_cast<uint8_t>(bytes_[pos_++]);
      v |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    Fail("varint longer than 10 bytes");
  }
  std::string_view Len() {
    const uint64_t n = Varint();
    if (n > bytes_.size() - pos_) Fail(fmt::format("length {} runs past the end", n));
    const std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  void Skip(WireType type) {
    switch (type) {
      case kVarint:
        Varint();
        return;
      case kLen:
        Len();
        return;
      case kFixed64:
      case kFixed32: {
        const size_t n = type == kFixed64 ? 8 : 4;
        if (n > bytes_.size() - pos_) Fail("fixed-width field runs past the end");
        pos_ += n;
        return;
      }
    }
    Fail(fmt::format("unsupported wire type {}", static_cast<uint32_t>(type)));
  }
  [[noreturn]] void Fail(std::string_view what) const {
    throw FormatError(fmt::format("{}: SentencePiece model proto: {}", source_, what));
  }

 private:
  std::string_view bytes_;
  std::string_view source_;
  size_t pos_ = 0;
};

struct ProtoFields {
  std::vector<bool> user_defined;  // [V]
  uint64_t model_type = kModelTypeUnigram;  // proto2 defaults
  bool byte_fallback = false;
  bool add_dummy_prefix = true;
  std::string normalizer_name;
  bool has_charsmap = false;
};

ProtoFields ReadProtoFields(std::string_view proto, std::string_view source) {
  ProtoFields f;
  Wire top(proto, source);
  uint32_t field;
  WireType type;
  while (top.Next(&field, &type)) {
    if (type != kLen || (field != kModelPieces && field != kModelTrainerSpec && field != kModelNormalizerSpec)) {
      top.Skip(type);
      continue;
    }
    Wire msg(top.Len(), source);
    uint32_t sub;
    WireType sub_type;
    bool user_defined = false;
    while (msg.Next(&sub, &sub_type)) {
      if (field == kModelPieces && sub == kPieceType && sub_type == kVarint) {
        user_defined = msg.Varint() == kPieceUserDefined;
      } else if (field == kModelTrainerSpec && sub == kTrainerModelType && sub_type == kVarint) {
        f.model_type = msg.Varint();
      } else if (field == kModelTrainerSpec && sub == kTrainerByteFallback && sub_type == kVarint) {
        f.byte_fallback = msg.Varint() != 0;
      } else if (field == kModelNormalizerSpec && sub == kNormalizerName && sub_type == kLen) {
        f.normalizer_name = std::string(msg.Len());
      } else if (field == kModelNormalizerSpec && sub == kNormalizerCharsmap && sub_type == kLen) {
        f.has_charsmap = !msg.Len().empty();
      } else if (field == kModelNormalizerSpec && sub == kNormalizerAddDummyPrefix && sub_type == kVarint) {
        f.add_dummy_prefix = msg.Varint() != 0;
      } else {
        msg.Skip(sub_type);
      }
    }
    if (field == kModelPieces) f.user_defined.push_back(user_defined);
  }
  return f;
}

}  // namespace

Vocab VocabFromSentencePieceModel(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(fmt::format("{}: cannot open SentencePiece model (not a regular file)", path));
  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.Load(path);
  if (!status.ok()) throw FormatError(fmt::format("{}: not a SentencePiece model: {}", path, status.ToString()));

  const ProtoFields f = ReadProtoFields(sp.serialized_model_proto(), path);
  if (f.model_type != kModelTypeBpe) {
    throw ConfigError(fmt::format("{}: trainer_spec.model_type is {} ({}): only BPE SentencePiece models are supported",
                                  path, f.model_type, f.model_type == kModelTypeUnigram ? "unigram" : "not BPE"));
  }
  if (!f.byte_fallback)
    throw ConfigError(fmt::format("{}: trainer_spec.byte_fallback is false: nibble needs byte-fallback pieces", path));
  // nmt_nfkc and the other built-in rules rewrite the text through a character map
  // nibble does not apply; Llama-family models use "identity".
  if (f.has_charsmap || (!f.normalizer_name.empty() && f.normalizer_name != "identity"))
    throw ConfigError(fmt::format("{}: normalizer_spec.name is \"{}\": only the identity normalizer is supported", path,
                                  f.normalizer_name));

  const int n = sp.GetPieceSize();
  if (n <= 0 || static_cast<size_t>(n) != f.user_defined.size())
    throw FormatError(fmt::format("{}: SentencePiece model: {} pieces in the API but {} in the proto", path, n,
                                  f.user_defined.size()));
  Vocab v;
  v.model = VocabModel::kSpm;
  v.pieces.reserve(static_cast<size_t>(n));
  v.scores.reserve(static_cast<size_t>(n));
  v.types.reserve(static_cast<size_t>(n));
  for (int id = 0; id < n; ++id) {
    v.pieces.push_back(sp.IdToPiece(id));
    v.scores.push_back(sp.GetScore(id));
    TokenType t = TokenType::kNormal;
    if (sp.IsUnknown(id)) {
      t = TokenType::kUnknown;
    } else if (sp.IsControl(id)) {
      t = TokenType::kControl;
    } else if (sp.IsByte(id)) {
      t = TokenType::kByte;
    } else if (sp.IsUnused(id)) {
      t = TokenType::kUnused;
    } else if (f.user_defined[static_cast<size_t>(id)]) {
      t = TokenType::kUserDefined;
    }
    v.types.push_back(t);
  }
  // The processor reports a disabled id as -1, nibble's kNoToken.
  v.bos_id = sp.bos_id();
  v.eos_id = sp.eos_id();
  v.unk_id = sp.unk_id();
  v.pad_id = sp.pad_id();
  v.add_bos = v.bos_id != kNoToken;  // Llama's convention; tokenizer_config.json may override
  v.add_eos = false;
  v.space_prefix = f.add_dummy_prefix ? SpacePrefix::kLlamaCpp : SpacePrefix::kNone;
  v.Validate(path);
  return v;
}

}  // namespace nibble::tokenizer
