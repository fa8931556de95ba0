// CPU features the hand-written AVX-512 kernels need beyond Highway 1.0.3's targets
// (conventions C7): probed once per process with CPUID and XGETBV (the OS must save
// opmask and zmm state). The only process-wide state besides constexpr tables (C6).
#pragma once

namespace nibble {

// AVX512F + BW + VL, zmm/opmask state enabled by the OS, plus:
bool CpuHasAvx512Bf16() noexcept;  // AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16)
bool CpuHasAvx512Vnni() noexcept;  // AVX512_VNNI (vpdpbusd)

}  // namespace nibble
