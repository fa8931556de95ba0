// Q4_1 Highway dispatch: compiles q4_1-inl.h for every target and exports Dequantize.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/formats/q4_1/q4_1.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "core/cpu_features.h"
#include "hwy/highway.h"
#include "quant/formats/q4_1/q4_1-inl.h"

#if HWY_ONCE
namespace nibble::quant::q4_1 {

HWY_EXPORT(DequantizeImpl);

void Dequantize(const void* blocks, float* out, int64_t num_elems) noexcept {
  NB_DYNAMIC_DISPATCH(DequantizeImpl)(blocks, out, num_elems);
}

}  // namespace nibble::quant::q4_1
#endif  // HWY_ONCE
