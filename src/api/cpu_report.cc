// nibble::SetCpuDispatchCap and nibble::CpuDispatchReport: the public face of
// core/cpu_features.h, with each layer describing its own dispatch.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "kernels/matmul.h"
#include "nibble/cpu.h"
#include "nibble/error.h"
#include "nibble/nibble.h"
#include "quant/qgemv.h"

namespace nibble {

void SetCpuDispatchCap(std::string_view level) {
  const std::optional<CpuLevel> l = ParseCpuLevel(level);
  if (!l) throw ConfigError(fmt::format("--cpu '{}': expected native, avx512, avx2 or scalar", level));
  SetCpuCap(*l, "--cpu");
}

std::string CpuDispatchReport() {
  const CpuFeatures& f = DetectedCpu();
  std::vector<std::string> have;
  auto add = [&](bool on, const char* name) {
    if (on) have.emplace_back(name);
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512, "avx512f/bw/vl/dq");
  add(f.avx512_vnni, "avx512vnni");
  add(f.avx512_bf16, "avx512bf16");
  add(f.avx_vnni, "avxvnni");
  std::string out = fmt::format("nibble {}\n", Version());
  out += fmt::format("cpu: {}\n", f.brand.empty() ? "(no brand string)" : f.brand);
  std::string list;
  for (const std::string& h : have) list += (list.empty() ? "" : " ") + h;
  out += fmt::format("features: {} (level {})\n", list.empty() ? "baseline x86-64 only" : list,
                     CpuLevelName(DetectedCpuLevel()));
  out += fmt::format("cap: {} (from {}); kernels run at: {}\n", CpuLevelName(CpuCap()), CpuCapSource(),
                     CpuLevelName(EffectiveCpuLevel()));
  out += fmt::format("highway: {} (compiled: {})\n", HighwayTargetName(), HighwayCompiledTargets());
  std::vector<KernelPath> paths = kernels::DenseKernelPaths();
  for (KernelPath& p : quant::QuantKernelPaths()) paths.push_back(std::move(p));
  size_t width = 0;
  for (const KernelPath& p : paths) width = std::max(width, p.family.size());
  out += "kernel paths:\n";
  for (const KernelPath& p : paths) out += fmt::format("  {:<{}}  {}\n", p.family, width, p.path);
  return out;
}

}  // namespace nibble
