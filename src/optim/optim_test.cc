// AdamW, the LR schedules and gradient clipping against torch + transformers
// (tests/golden/optim, scripts/goldens/make_optim_goldens.py), and AdamWStep against the
// double AdamWStepRef.
#include <gtest/gtest.h>

#include <cfloat>
#include <algorithm>
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

float Ulp(float x) {
  const float a = std::fabs(x);
  return std::nextafter(a, INFINITY) - a;
}

// Ten steps of clip + AdamW + linear warmup against torch, every parameter after every
// step, to `step` ulp of the parameter plus 2 ulp of lr per step (an update is a few lr at
// most, and a parameter passing near 0 has an ulp far below its update's). Tensors of 7, 15, 71, 40 and 4 elements run through torch's vectorized
// loop and its scalar tail; "tiny" has gradients near 1e-9, where eps sets the update (a
// misplaced or missing eps moves those parameters by far more). Measured: most elements
// equal torch's bits; the rest drift by about an ulp per step, where torch's scalar tail
// rounds lerp's product and sum separately (nibble fuses them, as torch's vector body does)
// or its compiled kernels contract differently. At the scalar cap nibble's lerp is not
// fused either (Highway's scalar MulAdd rounds twice).
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
    const double norm = ClipGradNorm(2, spans, max_norm);
    EXPECT_NEAR(norm, s["grad_norm"].get<double>(), 1e-6 * norm) << "step " << step;
    ++step;
    for (const auto& name_j : g["order"]) {
      const std::string name = name_j;
      const double decay = name == "norm" ? 0.0 : wd;
      AdamWStep(1, p[name].data(), grads[name].data(), m[name].data(), v[name].data(), p[name].size(), step, lr,
                decay, c);
      const std::vector<float> want = Floats(s["params"][name]);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_LE(std::fabs(p[name][i] - want[i]),
                  static_cast<float>(step) * (Ulp(want[i]) + 2 * Ulp(static_cast<float>(base_lr))))
            << name << "[" << i << "] step " << step;
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
    AdamWStep(1, p.data(), g.data(), m.data(), v.data(), n, step, lr, 0.01, c);
    AdamWStepRef(pr.data(), g.data(), mr.data(), vr.data(), n, step, lr, 0.01, c);
  }
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(p[i], pr[i], 50 * 16 * FLT_EPSILON * lr + 2 * 50 * FLT_EPSILON * std::fabs(pr[i])) << i;
    EXPECT_NEAR(m[i], mr[i], 1e-5 * (std::fabs(mr[i]) + 1e-3)) << i;
  }
}

// Each element's update depends only on its own p, g, m, v: a large range (split over
// threads) gives the same bits as the same elements updated in small pieces.
TEST(AdamW, LargeRangesSplitOverThreadsGiveTheSameBits) {
  const size_t n = 300007;
  std::mt19937 rng(9);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::vector<float> p(n), g(n), m(n), v(n);
  for (size_t i = 0; i < n; ++i) p[i] = n01(rng), g[i] = n01(rng), m[i] = 0.1f * n01(rng), v[i] = std::fabs(n01(rng));
  std::vector<float> p2 = p, m2 = m, v2 = v;
  AdamWConfig c;
  AdamWStep(2, p.data(), g.data(), m.data(), v.data(), n, 3, 1e-3, 0.01, c);
  for (size_t b = 0; b < n; b += 1000) {
    const size_t k = std::min<size_t>(1000, n - b);
    AdamWStep(1, p2.data() + b, g.data() + b, m2.data() + b, v2.data() + b, k, 3, 1e-3, 0.01, c);
  }
  EXPECT_EQ(p, p2);
  EXPECT_EQ(m, m2);
  EXPECT_EQ(v, v2);
}

// clip_grad_norm_: no change under the limit, scaled to the limit (within 1e-6) above it.
TEST(ClipGradNorm, ScalesOnlyAboveTheLimit) {
  std::vector<float> a = {3.0f, 4.0f}, b = {0.0f, 12.0f};
  std::vector<std::span<float>> spans = {a, b};
  EXPECT_DOUBLE_EQ(ClipGradNorm(1, spans, 100.0), 13.0);
  EXPECT_EQ(a[0], 3.0f);
  EXPECT_DOUBLE_EQ(ClipGradNorm(1, spans, 1.0), 13.0);
  EXPECT_NEAR(std::sqrt(a[0] * a[0] + a[1] * a[1] + b[1] * b[1]), 1.0, 1e-6);
  const std::vector<float> before = a;
  const double norm = ClipGradNorm(1, spans, 0.0);  // 0: measure only
  EXPECT_NEAR(norm, 1.0, 1e-6);
  EXPECT_EQ(a, before);
}

// The chunked f32 sums against the double oracle on a large, uneven set of tensors (tails
// of every length below a vector, a chunk boundary inside a tensor): the norm within
// 4096·ε relative (each chunk's f32 sum), and the same bits at 1, 2 and 3 threads.
TEST(ClipGradNorm, MatchesRefOnEveryTargetAndThreadCount) {
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 1e-2f);
  std::vector<std::vector<float>> store;
  for (size_t n : {1u, 7u, 15u, 16u, 17u, 4095u, 4097u, 300000u, 33u}) {
    store.emplace_back(n);
    for (float& x : store.back()) x = dist(rng);
  }
  auto spans_of = [](std::vector<std::vector<float>>& s) {
    std::vector<std::span<float>> out;
    for (auto& v : s) out.emplace_back(v);
    return out;
  };
  std::vector<std::vector<float>> ref_store = store;
  const double want = ClipGradNormRef(spans_of(ref_store), 0.5);
  double first = -1;
  for (int threads : {1, 2, 3}) {
    std::vector<std::vector<float>> s = store;
    const double got = ClipGradNorm(threads, spans_of(s), 0.5);
    EXPECT_NEAR(got, want, 4096 * 6e-8 * want);
    if (first < 0) first = got;
    EXPECT_EQ(got, first) << threads;
    for (size_t t = 0; t < s.size(); ++t)
      for (size_t i = 0; i < s[t].size(); ++i) ASSERT_NEAR(s[t][i], ref_store[t][i], 1e-6f * std::fabs(ref_store[t][i]) + 1e-12f);
  }
}

}  // namespace
}  // namespace nibble::optim
