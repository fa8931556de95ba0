// stories260K's llama2.c tokenizer (tok512.bin) as a Vocab, read directly (tokenizer-layer
// tests link only that layer; the api layer's reader is not available to them).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "tokenizer/vocab.h"
#include "util/file_bytes.h"
#include "util/test_paths.h"

namespace nibble::test {

// int32 max_token_length, then 512 records of (f32 score, int32 length, bytes).
inline tokenizer::Vocab ReadTok512Vocab() {
  constexpr int kVocabSize = 512;  // stories260K's vocab_size
  const std::string bytes = ReadFileText(SharedData("llama2c-stories260K/tok512.bin"));
  size_t pos = 4;
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < kVocabSize; ++i) {
    float score;
    int32_t len;
    if (pos + 8 > bytes.size()) throw std::runtime_error("test: tok512.bin truncated");
    std::memcpy(&score, bytes.data() + pos, 4);
    std::memcpy(&len, bytes.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || pos + static_cast<size_t>(len) > bytes.size()) throw std::runtime_error("test: bad piece length");
    pieces.push_back(bytes.substr(pos, static_cast<size_t>(len)));
    scores.push_back(score);
    pos += static_cast<size_t>(len);
  }
  return tokenizer::Vocab::FromLlama2c(std::move(pieces), std::move(scores));
}

}  // namespace nibble::test
