// Agreement of two [T, V] logit matrices from the same tokens: mean KL(ref || q) over
// the T positions (log-softmax in double), the share of positions with the same argmax,
// and the largest absolute logit difference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace nibble::test {

inline double MeanKld(const std::vector<float>& ref, const std::vector<float>& q, size_t V) {
  const size_t T = ref.size() / V;
  double total = 0;
  for (size_t t = 0; t < T; ++t) {
    const float* a = ref.data() + t * V;
    const float* b = q.data() + t * V;
    const double ma = *std::max_element(a, a + V), mb = *std::max_element(b, b + V);
    double za = 0, zb = 0;
    for (size_t i = 0; i < V; ++i) {
      za += std::exp(a[i] - ma);
      zb += std::exp(b[i] - mb);
    }
    double kl = 0;
    for (size_t i = 0; i < V; ++i) {
      const double la = a[i] - ma - std::log(za), lb = b[i] - mb - std::log(zb);
      kl += std::exp(la) * (la - lb);
    }
    total += kl;
  }
  return total / static_cast<double>(T);
}

inline double Top1Agreement(const std::vector<float>& ref, const std::vector<float>& q, size_t V) {
  const size_t T = ref.size() / V;
  size_t same = 0;
  for (size_t t = 0; t < T; ++t) {
    const float* a = ref.data() + t * V;
    const float* b = q.data() + t * V;
    same += (std::max_element(a, a + V) - a) == (std::max_element(b, b + V) - b) ? 1 : 0;
  }
  return static_cast<double>(same) / static_cast<double>(T);
}

inline double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

}  // namespace nibble::test
