// SwiGlu: Highway dispatch and the double scalar reference.
#include "kernels/swiglu.h"

#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/swiglu.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "kernels/swiglu-inl.h"

HWY_BEFORE_NAMESPACE();
namespace nibble::kernels::HWY_NAMESPACE {

void SwiGluTarget(const float* gate, const float* up, float* out, size_t n) { SwiGluSpan(gate, up, out, n); }

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(SwiGluTarget);

void SwiGlu(const float* gate, const float* up, float* out, size_t n) noexcept {
  NB_DYNAMIC_DISPATCH(SwiGluTarget)(gate, up, out, n);
}

void SwiGluRef(const float* gate, const float* up, float* out, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * static_cast<double>(up[i]));
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
