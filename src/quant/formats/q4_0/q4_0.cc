// Q4_0 Highway dispatch: compiles q4_0-inl.h for every target and exports Dequantize.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/formats/q4_0/q4_0.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "quant/formats/q4_0/q4_0-inl.h"

#if HWY_ONCE
namespace nibble::quant::q4_0 {

HWY_EXPORT(DequantizeImpl);

void Dequantize(const void* blocks, float* out, int64_t num_elems) noexcept {
  NB_DYNAMIC_DISPATCH(DequantizeImpl)(blocks, out, num_elems);
}

}  // namespace nibble::quant::q4_0
#endif  // HWY_ONCE
