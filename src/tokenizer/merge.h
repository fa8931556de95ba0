// Greedy pairwise merging shared by the SentencePiece-style and the byte-level BPE
// encoders: start from characters, repeatedly merge the adjacent pair with the highest
// priority (the leftmost one on ties), until no adjacent pair is mergeable. This is
// llama.cpp's llm_tokenizer_spm/bpe loop (a max-heap of bigrams with stale entries
// skipped); llama2.c's run.c rescans for the best pair instead, which picks the same
// pair at every step (highest score, leftmost on ties).
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

#include "tokenizer/utf8.h"

namespace nibble::tokenizer {

// `priority(merged, left_len)` returns the priority of merging the adjacent symbols
// whose concatenation is `merged` (the left one being its first `left_len` bytes), or
// nullopt when they cannot merge. SPM: the merged piece's score; BPE: minus the rank.
// Appends the final symbols of `text`, in order, to *out (views into `text`).
template <class Priority>
void MergeGreedy(std::string_view text, const Priority& priority, std::vector<std::string_view>* out) {
  struct Symbol {
    uint32_t begin, len;
    int32_t prev, next;  // neighbours in the live chain, -1 at the ends
  };
  struct Candidate {
    float priority;
    int32_t left, right;
    uint32_t left_len, right_len;  // lengths when queued: a change means the entry is stale
  };
  struct Lower {
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
    }
  };

  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = Utf8CharLength(text, pos);
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(n), index - 1, index + 1});
    pos += n;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Candidate, std::vector<Candidate>, Lower> queue(Lower{}, std::move(storage));
  const auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const std::optional<float> p = priority(text.substr(l.begin, l.len + r.len), static_cast<size_t>(l.len));
    if (p) queue.push({*p, left, right, l.len, r.len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& l = symbols[c.left];
    Symbol& r = symbols[c.right];
    if (l.len != c.left_len || r.len != c.right_len || l.next != c.right) continue;  // stale
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    try_add(l.prev, c.left);
    try_add(c.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out->push_back(text.substr(symbols[i].begin, symbols[i].len));
}

}  // namespace nibble::tokenizer
