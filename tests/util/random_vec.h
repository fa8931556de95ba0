// Seeded test inputs: standard-normal f32 vectors and their bf16 roundings (RNE), the
// same values for the same seed on every run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "core/float_convert.h"

namespace nibble::test {

inline std::vector<float> RandomVec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// N(0, sigma) f32 values (std::normal_distribution's own scaling, so these are not
// sigma * RandomVec bit for bit).
inline std::vector<float> NormalVec(size_t n, uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed) {
  const std::vector<float> f = RandomVec(n, seed);
  std::vector<uint16_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = F32ToBF16(f[i]);
  return b;
}

}  // namespace nibble::test
