// AdamWStep: torch's single-tensor order of operations in f32 (the compiler vectorizes
// the loop; every lane does the same arithmetic, so the result does not depend on the
// SIMD target), and the double reference.
#include "optim/adamw.h"

#include <cmath>

namespace nibble::optim {

void AdamWStep(float* p, const float* g, float* m, float* v, size_t n, int64_t step, double lr, double weight_decay,
               const AdamWConfig& c) noexcept {
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  const float w1 = static_cast<float>(1.0 - c.beta1);  // lerp weight
  const float b2 = static_cast<float>(c.beta2);
  const float one_minus_b2 = static_cast<float>(1.0 - c.beta2);
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float eps = static_cast<float>(c.eps);
  for (size_t i = 0; i < n; ++i) {
    float pi = p[i] * decay;
    const float gi = g[i];
    // torch's vectorized lerp: fmadd(w, end − self, self) for w < 0.5, else
    // fmadd(w − 1, end − self, end) (its scalar tail rounds the product separately: 1 ulp).
    const float mi = w1 < 0.5f ? std::fma(w1, gi - m[i], m[i]) : std::fma(w1 - 1.0f, gi - m[i], gi);
    // addcmul: self + value·t1·t2; addcdiv: self + value·t1 / t2 (left to right).
    const float vi = v[i] * b2 + one_minus_b2 * gi * gi;
    const float den = std::sqrt(vi) / bc2_sqrt + eps;
    pi = pi + -step_size * mi / den;
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

void AdamWStepRef(float* p, const float* g, float* m, float* v, size_t n, int64_t step, double lr,
                  double weight_decay, const AdamWConfig& c) noexcept {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(step));
  for (size_t i = 0; i < n; ++i) {
    const double gi = g[i];
    const double pi = static_cast<double>(p[i]) * (1.0 - lr * weight_decay);
    const double mi = c.beta1 * m[i] + (1.0 - c.beta1) * gi;
    const double vi = c.beta2 * v[i] + (1.0 - c.beta2) * gi * gi;
    const double den = std::sqrt(vi / bc2) + c.eps;
    p[i] = static_cast<float>(pi - lr / bc1 * mi / den);
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

}  // namespace nibble::optim
