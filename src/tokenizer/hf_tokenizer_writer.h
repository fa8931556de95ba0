// Vocab → Hugging Face tokenizer files: tokenizer.json (the `tokenizers` format) and
// tokenizer_config.json, the inverse of hf_tokenizer.h. The files encode text as the
// Vocab does in nibble, and read back through VocabFromTokenizerJson to the same Vocab.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/vocab.h"

namespace nibble::tokenizer {

// A tokenizer.json (model.type "BPE") that encodes like `vocab`:
//  - VocabModel::kSpm: byte_fallback with every piece in model.vocab (the space marker
//    spelled U+2581 whatever vocab.space_marker is) and the merges transformers'
//    SentencePieceExtractor derives from the scores: every split of a normal or
//    user-defined piece into two such pieces, ordered by the merged piece's score
//    (highest first, ties by the piece's id), splits of one piece left to right (the
//    order of transformers 5, checked against tests/golden/tokenizer/tok512_*.json).
//    Space handling: Prepend("▁") + Replace(" ", "▁") normalizer for kLlamaCpp (Llama 2),
//    Replace alone for kNone, a Metaspace pre-tokenizer for kMetaspaceFirst/Always; the
//    decoder is Replace + ByteFallback + Fuse (+ Strip with a space prefix).
//  - VocabModel::kBpe: the normal pieces (and unk) in model.vocab, merges in rank order, a
//    ByteLevel pre-tokenizer (after Digits for kSmollm, after the Llama 3 / Qwen2 Split
//    regex), ignore_merges for kLlama3, a ByteLevel decoder. Scores are not written.
// Control and user-defined pieces (and the unknown piece) also become added_tokens
// (special = not user-defined, normalized = false: matched in the raw text, as nibble
// does); BOS/EOS with add_bos/add_eos become a TemplateProcessing post-processor. The
// ids of specials that are not added (bos/eos without the flag, pad, an unk that is not
// of type kUnknown) live in tokenizer_config.json. Same vocab → same bytes.
//
// Throws FormatError when vocab.Validate does, and ConfigError (naming the token or
// field) for what tokenizers cannot express exactly: kBpe with PreTokenizer::kDefault;
// token types kUnused/kUndefined, kByte in kBpe, kUnknown on another id than unk_id;
// empty, duplicate (after the marker is spelled U+2581) or non-UTF-8 pieces; an SPM
// vocabulary without all 256 "<0xNN>" pieces, with a normal piece spelled "<0xNN>" or one
// that holds U+2581 beside another marker; an SPM piece that nibble can reach through a
// merge tokenizers has no rule for (a character that is not itself a piece, or a
// byte/control/unknown piece); a BPE merge listed twice or whose parts or result are not
// normal pieces; a non-finite score on a mergeable SPM piece.
//
// Limits (the file is still written): text containing U+2581 encodes as a space when
// vocab.space_marker is not U+2581 (llama2.c's ' '), as SentencePiece itself does; equal
// scores are ordered by id, where nibble merges the leftmost pair first; a piece reachable
// by two different splits that overlap in one word ("a"+"aa" and "aa"+"a") merges by rank
// in tokenizers but leftmost-first in nibble and SentencePiece.
std::string TokenizerJsonFromVocab(const Vocab& vocab);

// tokenizer_config.json: add_bos_token, add_eos_token, bos_token, eos_token, unk_token,
// pad_token (the piece as tokenizer.json spells it, or null when the id is kNoToken),
// clean_up_tokenization_spaces false (decode as nibble does), model_max_length when
// > 0, tokenizer_class "PreTrainedTokenizerFast", and chat_template when non-empty.
// Throws ConfigError for pieces TokenizerJsonFromVocab rejects and for a chat template
// that is not UTF-8.
std::string TokenizerConfigJsonFromVocab(const Vocab& vocab, int64_t model_max_length, std::string_view chat_template);

}  // namespace nibble::tokenizer
