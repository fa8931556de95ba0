// CPUID / XGETBV probes for the AVX-512 extensions used by intrinsics kernels.
#include "core/cpu_features.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace nibble {
namespace {

struct Features {
  bool avx512_bw_vl = false;  // AVX512F, BW, VL with the OS saving opmask and zmm state
  bool bf16 = false;
  bool vnni = false;
};

Features Probe() {
  Features f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  if ((ecx & (1u << 27)) == 0) return f;  // OSXSAVE: xgetbv is usable
  uint32_t xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  // XCR0 bits 1, 2 (xmm, ymm), 5 (opmask), 6 (zmm0-15 upper halves), 7 (zmm16-31).
  constexpr uint32_t kZmmState = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);
  if ((xcr0_lo & kZmmState) != kZmmState) return f;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  constexpr uint32_t kF_Bw_Vl = (1u << 16) | (1u << 30) | (1u << 31);  // AVX512F, BW, VL
  if ((ebx & kF_Bw_Vl) != kF_Bw_Vl) return f;
  f.avx512_bw_vl = true;
  f.vnni = (ecx & (1u << 11)) != 0;  // leaf 7.0 ECX bit 11: AVX512_VNNI
  if (eax >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) f.bf16 = (eax & (1u << 5)) != 0;
#endif
  return f;
}

const Features& Get() {
  static const Features f = Probe();
  return f;
}

}  // namespace

bool CpuHasAvx512Bf16() noexcept { return Get().bf16; }
bool CpuHasAvx512Vnni() noexcept { return Get().vnni; }

}  // namespace nibble
