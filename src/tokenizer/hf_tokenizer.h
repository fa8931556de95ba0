// Hugging Face tokenizer files as a Vocab: tokenizer.json (the `tokenizers` format),
// tokenizer_config.json (transformers' special-token settings) and tokenizer.model
// (a SentencePiece protobuf, read with libsentencepiece). docs/FORMATS.md lists the
// keys read and what is rejected. Layer: tokenizer (level 1).
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/vocab.h"

namespace nibble::tokenizer {

// tokenizer.json with model.type "BPE", in one of two shapes:
//  - byte-level (GPT-2, Llama 3, SmolLM2, Qwen2): a ByteLevel pre-tokenizer, alone or
//    after a Digits or Split step whose regex is recognised → VocabModel::kBpe with the
//    merges in rank order and the matching PreTokenizer;
//  - SentencePiece-style (Llama 2, Mistral, TinyLlama): byte_fallback with a
//    Prepend/Replace "▁" normalizer or a Metaspace pre-tokenizer → VocabModel::kSpm,
//    each piece scored -(rank of the first merge that makes it), so merging by score
//    is merging by rank.
// added_tokens become kControl (special) or kUserDefined; BOS/EOS and add_bos/add_eos
// come from a TemplateProcessing post-processor. Throws FormatError (malformed JSON,
// wrong types, inconsistent ids or merges) or ConfigError (a shape nibble does not
// run, such as an unrecognised Split regex), naming `source` and the JSON key.
Vocab VocabFromTokenizerJson(std::string_view json_text, std::string_view source);

// tokenizer_config.json over `vocab`: add_bos_token / add_eos_token (bool) and
// bos_token / eos_token / unk_token / pad_token (a string or an AddedToken object with
// "content"), each only when present and not null. A token text that is not in the
// vocabulary is a ConfigError naming the key.
void ApplyTokenizerConfig(Vocab& vocab, std::string_view json_text, std::string_view source);

// A SentencePiece BPE model file (tokenizer.model): pieces, scores and types from
// libsentencepiece, special ids from its trainer spec, add_bos on, space_prefix
// kLlamaCpp when normalizer_spec.add_dummy_prefix, else kNone. A unigram model, a model without byte
// fallback or one with a non-identity normalizer is a ConfigError; an unreadable file
// an IoError or FormatError.
Vocab VocabFromSentencePieceModel(const std::string& path);

}  // namespace nibble::tokenizer
