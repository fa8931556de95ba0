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
void SwiGluBackwardTarget(const float* gate, const float* up, const float* dout, float* dgate, float* dup, size_t n) {
  SwiGluBackwardSpan(gate, up, dout, dgate, dup, n);
}

}  // namespace nibble::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nibble::kernels {

HWY_EXPORT(SwiGluTarget);
HWY_EXPORT(SwiGluBackwardTarget);

void SwiGlu(const float* gate, const float* up, float* out, size_t n) noexcept {
  NB_DYNAMIC_DISPATCH(SwiGluTarget)(gate, up, out, n);
}

void SwiGluRef(const float* gate, const float* up, float* out, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * static_cast<double>(up[i]));
  }
}

void SwiGluBackward(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                    size_t n) noexcept {
  NB_DYNAMIC_DISPATCH(SwiGluBackwardTarget)(gate, up, dout, dgate, dup, n);
}

void SwiGluBackwardRef(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                       size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i], u = up[i], o = dout[i];
    const double s = 1.0 / (1.0 + std::exp(-g));
    dgate[i] = static_cast<float>(o * u * s * (1.0 + g * (1.0 - s)));
    dup[i] = static_cast<float>(o * g * s);
  }
}

}  // namespace nibble::kernels
#endif  // HWY_ONCE
