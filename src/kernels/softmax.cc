// Softmax: Highway dispatch and the double scalar reference.
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/softmax.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "kernels/softmax-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

void SoftmaxTarget(float* x, size_t n) { SoftmaxRow(x, n); }

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(SoftmaxTarget);

void Softmax(float* x, size_t n) noexcept { NB_DYNAMIC_DISPATCH(SoftmaxTarget)(x, n); }

void SoftmaxRef(float* x, size_t n) noexcept {
  const double mx = *std::max_element(x, x + n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - mx) / sum);
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
