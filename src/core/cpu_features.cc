// CPUID / XGETBV probes, the NIBBLE_CPU / --cpu cap and its application to Highway.
#include "core/cpu_features.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "hwy/targets.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace nibble {
namespace {

CpuFeatures Probe() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) && eax >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      unsigned r[4];
      __get_cpuid(0x80000002u + i, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + 16 * i, r, 16);
    }
    f.brand = brand;
    const auto b = f.brand.find_first_not_of(' '), e = f.brand.find_last_not_of(' ');
    f.brand = b == std::string::npos ? std::string() : f.brand.substr(b, e - b + 1);
  }
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = (ecx & (1u << 27)) != 0, avx = (ecx & (1u << 28)) != 0;
  const bool fma = (ecx & (1u << 12)) != 0, f16c = (ecx & (1u << 29)) != 0;
  if (!osxsave || !avx) return f;
  uint32_t xcr0_lo = 0, xcr0_hi = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  // XCR0 bits 1, 2: xmm and ymm state; 5, 6, 7: opmask, zmm0-15 upper halves, zmm16-31.
  constexpr uint32_t kYmmState = (1u << 1) | (1u << 2);
  constexpr uint32_t kZmmState = kYmmState | (1u << 5) | (1u << 6) | (1u << 7);
  if ((xcr0_lo & kYmmState) != kYmmState) return f;
  unsigned max_leaf = 0;
  __get_cpuid(0, &max_leaf, &ebx, &ecx, &edx);
  if (max_leaf < 7 || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned ebx7 = ebx, ecx7 = ecx;
  f.avx2 = (ebx7 & (1u << 5)) != 0;
  f.fma = fma;
  f.f16c = f16c;
  // AVX512F (16), DQ (17), BW (30), VL (31): what Highway's AVX3 target needs too.
  constexpr uint32_t kF_Dq_Bw_Vl = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
  f.avx512 = (xcr0_lo & kZmmState) == kZmmState && (ebx7 & kF_Dq_Bw_Vl) == kF_Dq_Bw_Vl;
  f.avx512_vnni = f.avx512 && (ecx7 & (1u << 11)) != 0;  // leaf 7.0 ECX bit 11
  if (eax >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
    f.avx512_bf16 = f.avx512 && (eax & (1u << 5)) != 0;  // leaf 7.1 EAX bit 5
    f.avx_vnni = (eax & (1u << 4)) != 0;                  // leaf 7.1 EAX bit 4
  }
#endif
  return f;
}

std::atomic<int> g_cap{static_cast<int>(CpuLevel::kNative)};
std::atomic<const char*> g_source{"default"};
std::once_flag g_env_once;
// The dispatch log: its file (null when off), the paths noted, and the Highway target
// name NoteHighwayDispatch records (one of hwy::TargetName's static strings).
std::atomic<const char*> g_log_path{nullptr};
std::atomic<const char*> g_hwy_target{"?"};
// Highway's targets for this CPU, read once before any cap (see CappedHighwayTargets),
// the targets the cap disables, and the target a test pinned (0: none).
std::atomic<int64_t> g_cpu_targets{0};
std::atomic<int64_t> g_disabled{0};
std::atomic<int64_t> g_pinned{0};
std::mutex g_log_mu;
// Kept for the process's life (written at exit); held by these globals so LeakSanitizer
// sees them as reachable. g_log_path points into g_log_path_copy.
std::set<std::string>* g_log_set = nullptr;
std::string* g_log_path_copy = nullptr;

void WriteDispatchLog() {
  const char* path = g_log_path.load();
  if (path == nullptr) return;
  std::string text;
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    if (g_log_set == nullptr) return;
    for (const std::string& s : *g_log_set) text += s + "\n";
  }
  // One write with O_APPEND: lines of concurrent test processes do not interleave.
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const ssize_t n = ::write(fd, text.data(), text.size());
  (void)n;
  ::close(fd);
}

// CappedHighwayTargets without EnsureCpuCap (ReadEnvironment runs inside its call_once).
int64_t CappedTargetsNow() noexcept {
  const int64_t pinned = g_pinned.load();
  const int64_t t = (pinned != 0 ? pinned : g_cpu_targets.load()) & ~g_disabled.load() & HWY_TARGETS;
  return t != 0 ? t : HWY_STATIC_TARGET;  // as hwy::SupportedTargets(): never empty
}

// DisableTargets and SetSupportedTargetsForTest leave the dispatch choice uninitialised,
// and the next dispatch would re-choose through hwy::SupportedTargets(), which first
// installs the CPU's targets ignoring the cap (Highway 1.0.3): threads dispatching at that
// moment ran AVX-512 code under an avx2 cap (seen 40 times in 32,000 calls from 16
// threads). Choosing here, from the capped set, leaves no such window.
void ChooseCappedTarget() noexcept {
  hwy::GetChosenTarget().Update(CappedTargetsNow());
  RefreshHighwayTarget();
}

// Highway targets better than the cap are disabled (x86: a lower bit is a better target).
void ApplyToHighway(CpuLevel cap) {
  int64_t disabled = 0;
  switch (cap) {
    case CpuLevel::kNative:
      break;
    case CpuLevel::kAvx512:
      disabled = HWY_AVX3_DL - 1;  // bits reserved for future x86 targets above AVX3_DL
      break;
    case CpuLevel::kAvx2:
      disabled = HWY_AVX2 - 1;  // AVX3, AVX3_DL and anything better
      break;
    case CpuLevel::kScalar:
      disabled = ~(HWY_SCALAR | HWY_EMU128);  // only the baseline target remains
      break;
  }
  g_disabled.store(disabled);
  hwy::DisableTargets(disabled);
  ChooseCappedTarget();
}

void ReadEnvironment() {
  // Highway 1.0.3's SupportedTargets() also re-initialises the dispatch choice with the
  // CPU's targets *ignoring* DisableTargets (its ChosenTarget::Update call), so a later
  // call would silently undo the cap until the next DisableTargets. It is called here
  // once, before any cap, and the result kept; nibble never calls it again
  // (scripts/check_includes.py), and ChooseCappedTarget fixes the choice from the capped set.
  g_cpu_targets.store(hwy::SupportedTargets());
  if (const char* log = std::getenv("NIBBLE_DISPATCH_LOG"); log != nullptr && log[0] != '\0') {
    g_log_set = new std::set<std::string>();
    g_log_path_copy = new std::string(log);  // a copy: a later setenv cannot move it
    g_log_path.store(g_log_path_copy->c_str());
    std::atexit(WriteDispatchLog);
  }
  ChooseCappedTarget();
  const char* env = std::getenv("NIBBLE_CPU");
  if (env == nullptr || env[0] == '\0') return;
  const std::optional<CpuLevel> level = ParseCpuLevel(env);
  if (!level) {
    std::fprintf(stderr, "nibble: error: NIBBLE_CPU='%s': expected native, avx512, avx2 or scalar\n", env);
    std::_Exit(2);
  }
  g_cap.store(static_cast<int>(*level));
  g_source.store("NIBBLE_CPU");
  ApplyToHighway(*level);
}

// The cap is in force before main() and before any test or dispatch.
[[gnu::constructor]] void ApplyAtLoad() { EnsureCpuCap(); }

}  // namespace

std::optional<CpuLevel> ParseCpuLevel(std::string_view s) noexcept {
  if (s == "native") return CpuLevel::kNative;
  if (s == "avx512") return CpuLevel::kAvx512;
  if (s == "avx2") return CpuLevel::kAvx2;
  if (s == "scalar") return CpuLevel::kScalar;
  return std::nullopt;
}

const char* CpuLevelName(CpuLevel l) noexcept {
  switch (l) {
    case CpuLevel::kScalar:
      return "scalar";
    case CpuLevel::kAvx2:
      return "avx2";
    case CpuLevel::kAvx512:
      return "avx512";
    case CpuLevel::kNative:
      return "native";
  }
  return "?";
}

const CpuFeatures& DetectedCpu() noexcept {
  static const CpuFeatures f = Probe();
  return f;
}

CpuLevel DetectedCpuLevel() noexcept {
  const CpuFeatures& f = DetectedCpu();
  if (f.avx512 && f.avx2 && f.fma && f.f16c) return CpuLevel::kAvx512;
  if (f.avx2 && f.fma && f.f16c) return CpuLevel::kAvx2;
  return CpuLevel::kScalar;
}

void EnsureCpuCap() noexcept { std::call_once(g_env_once, ReadEnvironment); }

CpuLevel CpuCap() noexcept {
  EnsureCpuCap();
  return static_cast<CpuLevel>(g_cap.load());
}

CpuLevel EffectiveCpuLevel() noexcept {
  const CpuLevel cap = CpuCap(), have = DetectedCpuLevel();
  return static_cast<int>(cap) < static_cast<int>(have) ? cap : have;
}

const char* CpuCapSource() noexcept {
  EnsureCpuCap();
  return g_source.load();
}

void SetCpuCap(CpuLevel cap, const char* source) noexcept {
  EnsureCpuCap();
  g_cap.store(static_cast<int>(cap));
  g_source.store(source);
  ApplyToHighway(cap);
}

bool CpuHasAvx512Bf16() noexcept {
  return DetectedCpu().avx512_bf16 && static_cast<int>(CpuCap()) >= static_cast<int>(CpuLevel::kAvx512);
}
bool CpuHasAvx512Vnni() noexcept {
  return DetectedCpu().avx512_vnni && static_cast<int>(CpuCap()) >= static_cast<int>(CpuLevel::kAvx512);
}
bool CpuHasAvx2Fma() noexcept {
  return static_cast<int>(EffectiveCpuLevel()) >= static_cast<int>(CpuLevel::kAvx2);
}

void NoteDispatch(const char* what) noexcept {
  if (g_log_path.load(std::memory_order_relaxed) == nullptr) return;
  try {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log_set->insert(what);
  } catch (...) {  // the log is a diagnostic: never fail a kernel call for it
  }
}

void NoteHighwayDispatch() noexcept {
  if (g_log_path.load(std::memory_order_relaxed) == nullptr) return;
  try {
    NoteDispatch((std::string("highway ") + g_hwy_target.load()).c_str());
  } catch (...) {
  }
}

int64_t CappedHighwayTargets() noexcept {
  EnsureCpuCap();
  return CappedTargetsNow();
}

void SetPinnedHighwayTarget(int64_t target) noexcept {
  g_pinned.store(target);
  ChooseCappedTarget();
}

void RefreshHighwayTarget() noexcept {
  const int64_t t = CappedTargetsNow();  // not CappedHighwayTargets: this runs inside EnsureCpuCap's once
  g_hwy_target.store(hwy::TargetName(t & -t));  // x86: the lowest bit is the best target
}

std::string HighwayTargetName() {
  const int64_t t = CappedHighwayTargets();
  return hwy::TargetName(t & -t);
}

std::string HighwayCompiledTargets() {
  std::string s;
  for (int64_t t = HWY_TARGETS; t != 0; t &= t - 1) {
    if (!s.empty()) s += ' ';
    s += hwy::TargetName(t & -t);
  }
  return s;
}

}  // namespace nibble
