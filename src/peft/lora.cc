// LoRA adapters: targeting, PEFT's initialisation, forward and backward as GEMMs over the
// rank-r intermediate, counter-based dropout, merge.
#include "peft/lora.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <set>

#include "core/tensor.h"
#include "kernels/gemm.h"
#include "nibble/error.h"

namespace nibble::peft {
namespace {

using kernels::Trans;

// SplitMix64's finaliser: a counter-based generator (each output a hash of its counter).
uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 53 bits.
double Uniform(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

bool Matches(const std::string& path, const std::string& entry) {
  return path == entry || (path.size() > entry.size() && path.ends_with(entry) &&
                           path[path.size() - entry.size() - 1] == '.');
}

}  // namespace

double LoraConfig::Scale() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

void LoraConfig::Validate() const {
  if (r < 1 || r > (1 << 16)) throw ConfigError(fmt::format("LoRA option 'r': expected 1..65536, got {}", r));
  if (!std::isfinite(lora_alpha) || lora_alpha <= 0)
    throw ConfigError(fmt::format("LoRA option 'lora_alpha': expected a positive number, got {}", lora_alpha));
  if (!(lora_dropout >= 0 && lora_dropout < 1))
    throw ConfigError(fmt::format("LoRA option 'lora_dropout': expected a value in [0, 1), got {}", lora_dropout));
  if (target_modules.empty()) throw ConfigError("LoRA option 'target_modules': no module given");
  if (fan_in_fan_out)
    throw ConfigError("LoRA option 'fan_in_fan_out': Llama Linears store [out, in] (nn.Linear); it must be false");
  if (bias != "none")
    throw ConfigError(fmt::format("LoRA option 'bias': only \"none\" is implemented, got \"{}\"", bias));
}

LoraInit ParseLoraInit(const std::string& s) {
  if (s == "true" || s == "True") return LoraInit::kKaiming;
  if (s == "false" || s == "False") return LoraInit::kNone;
  if (s == "gaussian") return LoraInit::kGaussian;
  throw ConfigError(fmt::format("LoRA option 'init_lora_weights': expected true, false or gaussian, got \"{}\"", s));
}

std::string ModulePath(const model::RoleAt& r) {
  std::string n = r.HfName();
  return n.substr(0, n.size() - std::string_view(".weight").size());
}

std::vector<model::RoleAt> TargetedLinears(const model::LlamaConfig& mc, const LoraConfig& c) {
  std::vector<model::RoleAt> linears;
  model::ForEachRole(mc, [&](const model::RoleAt& r) {
    if (r.role->kind == model::RoleKind::kLinear) linears.push_back(r);
  });
  const bool all = c.target_modules.size() == 1 && c.target_modules[0] == "all-linear";
  std::vector<model::RoleAt> out;
  std::set<std::string> unmatched(c.target_modules.begin(), c.target_modules.end());
  for (const model::RoleAt& r : linears) {
    const std::string path = ModulePath(r);
    bool hit = all && r.role->name != std::string_view("lm_head");
    for (const std::string& e : c.target_modules) {
      if (!all && Matches(path, e)) {
        hit = true;
        unmatched.erase(e);
      }
    }
    if (hit) out.push_back(r);
  }
  if (all) unmatched.clear();
  if (!unmatched.empty() || out.empty()) {
    std::set<std::string> names;
    for (const model::RoleAt& r : linears) {
      const std::string p = ModulePath(r);
      names.insert(p.substr(p.rfind('.') + 1));
    }
    throw ConfigError(fmt::format("LoRA option 'target_modules': {} matches no Linear of this model; its Linear "
                                  "modules are {} (and all-linear: every one but lm_head)",
                                  unmatched.empty() ? std::string("the list") : "'" + *unmatched.begin() + "'",
                                  fmt::join(names, ", ")));
  }
  return out;
}

// ---- LoraLinear ----

LoraLinear::LoraLinear(size_t in, size_t out, size_t r, float scale, float dropout, uint64_t stream)
    : in_(in), out_(out), r_(r), scale_(scale), dropout_(dropout), stream_(stream) {}

bool LoraLinear::Keep(uint64_t counter, size_t row, size_t col) const {
  const uint64_t h = Mix(Mix(stream_ ^ Mix(counter)) + static_cast<uint64_t>(row) * in_ + col);
  return Uniform(h) >= static_cast<double>(dropout_);
}

const float* LoraLinear::Dropped(const model::LinearCall& call, const float* x, size_t M, float* xd) const {
  if (!call.training || dropout_ == 0.0f) return x;
  const float keep_scale = 1.0f / (1.0f - dropout_);  // torch's inverted dropout
  for (size_t m = 0; m < M; ++m)
    for (size_t i = 0; i < in_; ++i)
      xd[m * in_ + i] = Keep(call.rng_counter, m, i) ? x[m * in_ + i] * keep_scale : 0.0f;
  return xd;
}

// The scale is applied to the rank-r intermediate ([M, r]), never to an [M, out] or
// [M, in] array: y += (s·u)·Bᵀ accumulates straight into y. (PEFT computes s·(u·Bᵀ); the
// two differ by f32 rounding only.)
void LoraLinear::Forward(const model::LinearCall& call, const float* x, float* y, size_t M) const {
  const bool drop = call.training && dropout_ > 0.0f;
  Tensor scratch(*call.alloc, DType::kF32, Shape{static_cast<int64_t>(M * (r_ + (drop ? in_ : 0)))});
  float* u = static_cast<float*>(scratch.data());  // [M, r]
  const float* xd = Dropped(call, x, M, u + M * r_);
  kernels::Gemm(call.threads, Trans::kNo, Trans::kYes, xd, a_, u, M, r_, in_);         // u = xd·Aᵀ
  for (size_t i = 0; i < M * r_; ++i) u[i] *= scale_;
  kernels::Gemm(call.threads, Trans::kNo, Trans::kYes, u, b_, y, M, out_, r_, true);    // y += (s·u)·Bᵀ
}

void LoraLinear::Backward(const model::LinearCall& call, const float* x, const float* dy, float* dx, size_t M) const {
  const bool drop = call.training && dropout_ > 0.0f;
  Tensor scratch(*call.alloc, DType::kF32, Shape{static_cast<int64_t>(M * (2 * r_ + (drop ? 2 * in_ : 0)))});
  float* u = static_cast<float*>(scratch.data());  // [M, r] recomputed: s·xd·Aᵀ
  float* du = u + M * r_;                           // [M, r] s·dy·B
  float* xd_buf = du + M * r_;                      // [M, in] when dropping
  const float* xd = Dropped(call, x, M, xd_buf);
  kernels::Gemm(call.threads, Trans::kNo, Trans::kYes, xd, a_, u, M, r_, in_);
  for (size_t i = 0; i < M * r_; ++i) u[i] *= scale_;
  kernels::Gemm(call.threads, Trans::kYes, Trans::kNo, dy, u, gb_, out_, r_, M, true);    // dB += dyᵀ·(s·u)
  kernels::Gemm(call.threads, Trans::kNo, Trans::kNo, dy, b_, du, M, r_, out_);           // du = dy·B
  for (size_t i = 0; i < M * r_; ++i) du[i] *= scale_;                                     // du = s·dy·B
  kernels::Gemm(call.threads, Trans::kYes, Trans::kNo, du, xd, ga_, r_, in_, M, true);    // dA += duᵀ·xd
  if (dx == nullptr) return;
  if (!drop) {
    kernels::Gemm(call.threads, Trans::kNo, Trans::kNo, du, a_, dx, M, in_, r_, true);    // dx += du·A
    return;
  }
  float* dxd = xd_buf + M * in_;  // d(xd) = du·A, then through the mask
  kernels::Gemm(call.threads, Trans::kNo, Trans::kNo, du, a_, dxd, M, in_, r_);
  const float keep_scale = 1.0f / (1.0f - dropout_);
  for (size_t m = 0; m < M; ++m)
    for (size_t i = 0; i < in_; ++i)
      if (Keep(call.rng_counter, m, i)) dx[m * in_ + i] += dxd[m * in_ + i] * keep_scale;
}

// ---- LoraModel ----

LoraModel::LoraModel(const model::LlamaConfig& mc, const LoraConfig& c, model::ParamIndex& index, uint64_t seed)
    : config_(c), seed_(seed) {
  config_.Validate();
  targets_ = TargetedLinears(mc, config_);
  first_entry_ = index.entries().size();
  const size_t r = static_cast<size_t>(config_.r);
  for (size_t i = 0; i < targets_.size(); ++i) {
    const model::RoleAt& t = targets_[i];
    const Shape w = t.role->ShapeIn(mc);
    const size_t out = static_cast<size_t>(w[0]), in = static_cast<size_t>(w[1]);
    const std::string base = "base_model.model." + ModulePath(t);
    index.Add(base + ".lora_A.weight", Shape{static_cast<int64_t>(r), static_cast<int64_t>(in)}, true);
    index.Add(base + ".lora_B.weight", Shape{static_cast<int64_t>(out), static_cast<int64_t>(r)}, true);
    adapters_.push_back(std::make_unique<LoraLinear>(in, out, r, static_cast<float>(config_.Scale()),
                                                     static_cast<float>(config_.lora_dropout), Mix(seed ^ Mix(i + 1))));
  }
}

void LoraModel::Init(const model::ParamIndex& index, float* params) const {
  for (size_t i = 0; i < adapters_.size(); ++i) {
    const LoraLinear& ad = *adapters_[i];
    const model::ParamEntry& ea = index.entries()[entry_a(i)];
    const model::ParamEntry& eb = index.entries()[entry_a(i) + 1];
    float* a = params + ea.offset;
    float* b = params + eb.offset;
    const uint64_t s = Mix(seed_ ^ Mix(0xA11CE + i));
    // Kaiming-uniform with a = √5 on a [rows, fan_in] matrix: U(−1/√fan_in, 1/√fan_in).
    auto kaiming = [&](float* w, size_t n, size_t fan_in, uint64_t stream) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      for (size_t k = 0; k < n; ++k) w[k] = static_cast<float>((2 * Uniform(Mix(stream + k)) - 1) * bound);
    };
    switch (config_.init) {
      case LoraInit::kKaiming:
        kaiming(a, ea.count, ad.in(), s);
        std::fill_n(b, eb.count, 0.0f);
        break;
      case LoraInit::kGaussian:  // standard deviation 1/r: Box–Muller on the counter-based uniforms
        for (size_t k = 0; k < ea.count; ++k) {
          const double u1 = 1.0 - Uniform(Mix(s + 2 * k)), u2 = Uniform(Mix(s + 2 * k + 1));
          a[k] = static_cast<float>(std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2) / ad.r());
        }
        std::fill_n(b, eb.count, 0.0f);
        break;
      case LoraInit::kNone:  // nn.Linear's own init for both
        kaiming(a, ea.count, ad.in(), s);
        kaiming(b, eb.count, ad.r(), Mix(s + 1));
        break;
    }
  }
}

void LoraModel::Attach(const model::ParamIndex& index, const float* params, float* grads,
                       model::LlamaWeights& w) const {
  for (size_t i = 0; i < adapters_.size(); ++i) {
    const model::ParamEntry& ea = index.entries()[entry_a(i)];
    const model::ParamEntry& eb = index.entries()[entry_a(i) + 1];
    adapters_[i]->Bind(params + ea.offset, params + eb.offset, grads ? grads + ea.offset : nullptr,
                       grads ? grads + eb.offset : nullptr);
    targets_[i].Linear(w)->adapter = adapters_[i].get();
  }
}

void LoraModel::Merge(const LoraLinear& ad, float* w, bool unmerge) {
  const size_t in = ad.in(), out = ad.out(), r = ad.r();
  const double s = unmerge ? -static_cast<double>(ad.scale()) : ad.scale();
  for (size_t o = 0; o < out; ++o)
    for (size_t i = 0; i < in; ++i) {
      double acc = 0;
      for (size_t k = 0; k < r; ++k) acc += static_cast<double>(ad.b()[o * r + k]) * ad.a()[k * in + i];
      w[o * in + i] += static_cast<float>(s * acc);
    }
}

}  // namespace nibble::peft
