// AdamW, the LR schedules and gradient clipping against torch + transformers
// (tests/golden/optim, scripts/goldens/make_optim_goldens.py), and AdamWStep against the
// double AdamWStepRef.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nibble/error.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "util/test_paths.h"

namespace nibble::optim {
namespace {

nlohmann::json Golden() {
  std::ifstream f(test::Golden("optim/adamw.json"));
  EXPECT_TRUE(f.good()) << "missing tests/golden/optim/adamw.json";
  return nlohmann::json::parse(f);
}

std::vector<float> Floats(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(static_cast<float>(x.get<double>()));
  return v;
}

// The schedules' multipliers are the same Python expressions: equal to 1e-15.
TEST(OptimGolden, ScheduleMultipliersMatchTransformers) {
  const nlohmann::json g = Golden()["schedules"];
  const int64_t warmup = g["warmup_steps"], total = g["total_steps"];
  for (const auto& [name, mult] : g["multipliers"].items()) {
    const LrSchedule s = ParseLrSchedule(name);
    EXPECT_EQ(LrScheduleName(s), name);
    for (size_t step = 0; step < mult.size(); ++step)
      EXPECT_NEAR(LrMultiplier(s, static_cast<int64_t>(step), warmup, total), mult[step].get<double>(), 1e-15)
          << name << " step " << step;
  }
  try {
    ParseLrSchedule("cosine_with_restarts");
    FAIL() << "an unknown schedule was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cosine_with_restarts"), std::string::npos);
  }
}

// Ten steps of clip + AdamW + linear warmup against torch, every parameter after every
// step. Tolerance: torch's vectorized and scalar kernels round the lerp differently (one
// FMA or two roundings: 1 ulp of m), and torch's clip norm is an f32 norm of f32 norms
// where nibble sums squares in double (the clip factor differs by ~1e-7 relatively); each
// moves an update by ~1e-7 of lr, so after ten steps parameters agree to 2e-6·(|p| + lr).
TEST(OptimGolden, AdamWTrajectoryMatchesTorch) {
  const nlohmann::json g = Golden();
  const nlohmann::json& cfg = g["config"];
  AdamWConfig c;
  c.beta1 = cfg["beta1"];
  c.beta2 = cfg["beta2"];
  c.eps = cfg["eps"];
  const double base_lr = cfg["lr"], wd = cfg["weight_decay"], max_norm = cfg["max_grad_norm"];
  const LrSchedule sched = ParseLrSchedule(cfg["schedule"].get<std::string>());
  const int64_t warmup = cfg["warmup_steps"], total = cfg["total_steps"];
  std::map<std::string, std::vector<float>> p, m, v;
  for (const auto& name : g["order"]) {
    p[name] = Floats(g["initial"][name.get<std::string>()]);
    m[name].assign(p[name].size(), 0.0f);
    v[name].assign(p[name].size(), 0.0f);
  }
  int64_t step = 0;
  for (const auto& s : g["steps"]) {
    const double lr = base_lr * LrMultiplier(sched, step, warmup, total);
    EXPECT_NEAR(lr, s["lr"].get<double>(), 1e-15) << "step " << step;
    std::map<std::string, std::vector<float>> grads;
    std::vector<std::span<float>> spans;
    for (const auto& name : g["order"]) {
      grads[name] = Floats(s["grads"][name.get<std::string>()]);
      spans.emplace_back(grads[name]);
    }
    const double norm = ClipGradNorm(spans, max_norm);
    EXPECT_NEAR(norm, s["grad_norm"].get<double>(), 1e-6 * norm) << "step " << step;
    ++step;
    for (const auto& name_j : g["order"]) {
      const std::string name = name_j;
      const double decay = name == "norm" ? 0.0 : wd;
      AdamWStep(p[name].data(), grads[name].data(), m[name].data(), v[name].data(), p[name].size(), step, lr, decay, c);
      const std::vector<float> want = Floats(s["params"][name]);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(p[name][i], want[i], 2e-6 * (std::fabs(want[i]) + base_lr)) << name << "[" << i << "] step " << step;
    }
  }
}

// The f32 update against the same update in double over many steps. Both store p, m and
// v in f32, but the f32 path also rounds p·(1 − lr·wd) and p + update inside each step:
// up to 2 ulp of p per step (2·steps·ε·|p| after `steps`), plus ~16 ulp of each update
// (steps·16·ε·lr).
TEST(AdamW, StepMatchesDoubleRef) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  const size_t n = 37;
  std::vector<float> p(n), m(n, 0), v(n, 0), pr, mr(n, 0), vr(n, 0);
  for (float& x : p) x = n01(rng);
  pr = p;
  AdamWConfig c;
  const double lr = 1e-3;
  for (int64_t step = 1; step <= 50; ++step) {
    std::vector<float> g(n);
    for (float& x : g) x = n01(rng);
    AdamWStep(p.data(), g.data(), m.data(), v.data(), n, step, lr, 0.01, c);
    AdamWStepRef(pr.data(), g.data(), mr.data(), vr.data(), n, step, lr, 0.01, c);
  }
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(p[i], pr[i], 50 * 16 * FLT_EPSILON * lr + 2 * 50 * FLT_EPSILON * std::fabs(pr[i])) << i;
    EXPECT_NEAR(m[i], mr[i], 1e-5 * (std::fabs(mr[i]) + 1e-3)) << i;
  }
}

// clip_grad_norm_: no change under the limit, scaled to the limit (within 1e-6) above it.
TEST(ClipGradNorm, ScalesOnlyAboveTheLimit) {
  std::vector<float> a = {3.0f, 4.0f}, b = {0.0f, 12.0f};
  std::vector<std::span<float>> spans = {a, b};
  EXPECT_DOUBLE_EQ(ClipGradNorm(spans, 100.0), 13.0);
  EXPECT_EQ(a[0], 3.0f);
  EXPECT_DOUBLE_EQ(ClipGradNorm(spans, 1.0), 13.0);
  EXPECT_NEAR(std::sqrt(a[0] * a[0] + a[1] * a[1] + b[1] * b[1]), 1.0, 1e-6);
  const std::vector<float> before = a;
  const double norm = ClipGradNorm(spans, 0.0);  // 0: measure only
  EXPECT_NEAR(norm, 1.0, 1e-6);
  EXPECT_EQ(a, before);
}

}  // namespace
}  // namespace nibble::optim
