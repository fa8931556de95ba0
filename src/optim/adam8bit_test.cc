// bitsandbytes' 8-bit AdamW (spec bnb-compatible-quantization.md §4.2.2): TV8 bit for bit,
// the sign fix and the all-zero block, a plain reference (linear code search, the spec's
// pseudocode line by line) over many blocks and steps, thread counts, paged against RAM
// state, and the optimizer names.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "nibble/error.h"
#include "optim/adam8bit.h"
#include "optim/optimizer.h"
#include "quant/formats/dynamic8/dynamic8.h"

namespace nibble::optim {
namespace {

namespace d8 = quant::dynamic8;

// TV8 (spec §7): one step of four elements, every value compared by its bits.
TEST(Adam8bit, TV8) {
  std::vector<float> p = {1.0f, -0.5f, 0.25f, 0.0f}, g = {0.1f, -0.2f, 0.0f, 0.4f};
  std::vector<uint8_t> q1(4, 0), q2(4, 0);
  float a1 = 0, a2 = 0;
  Adam8bitStep(1, p.data(), g.data(), q1.data(), q2.data(), &a1, &a2, 4, 1, {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f});
  EXPECT_EQ(a1, 0.040000010281801224f);
  EXPECT_EQ(a2, 0.00015999794413801283f);
  EXPECT_EQ(q1, (std::vector<uint8_t>{201, 35, 127, 255}));
  EXPECT_EQ(q2, (std::vector<uint8_t>{100, 148, 0, 255}));
  const uint32_t want[4] = {0x3f7fbdcf, 0xbeff7c46, 0x3e7fff58, 0xba831219};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(std::bit_cast<uint32_t>(p[i]), want[i]) << "p[" << i << "]";
}

// A tiny negative first moment keeps its sign (code 126, not the 0 at 127); a block whose
// moments are all zero stores absmax 0 and codes 255 / 0.
TEST(Adam8bit, SignFixAndZeroBlock) {
  // Block 0: one large gradient and one tiny negative one (m/A1 ≈ −1e-7).
  std::vector<float> p(512, 0.0f), g(512, 0.0f);
  g[0] = 1.0f;
  g[1] = -1e-7f;
  std::vector<uint8_t> q1(512, 127), q2(512, 0);
  std::vector<float> a1(2, 0.0f), a2(2, 0.0f);
  Adam8bitStep(1, p.data(), g.data(), q1.data(), q2.data(), a1.data(), a2.data(), 512, 1, {});
  EXPECT_EQ(q1[0], 255);
  EXPECT_EQ(q1[1], 126);
  EXPECT_EQ(q1[2], 127);  // a zero moment in a live block stays at the exact 0
  EXPECT_EQ(a1[1], 0.0f);
  EXPECT_EQ(a2[1], 0.0f);
  for (size_t i = 256; i < 512; ++i) {
    ASSERT_EQ(q1[i], 255) << i;
    ASSERT_EQ(q2[i], 0) << i;
  }
}

// The spec's pseudocode line by line, with the linear definition of select8.
void RefStep(std::vector<float>& p, const std::vector<float>& g, std::vector<uint8_t>& q1, std::vector<uint8_t>& q2,
             std::vector<float>& A1, std::vector<float>& A2, int64_t t, float lr, float wd) {
  const d8::Map S = d8::SignedMap(), U = d8::UnsignedMap();
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  volatile float c1 = 1.0f - static_cast<float>(std::pow(double{b1}, double(t)));
  volatile float c2 = std::sqrt(1.0f - static_cast<float>(std::pow(double{b2}, double(t))));
  volatile float a = -lr * c2;
  volatile float step_size = a / c1;
  for (size_t b = 0; b * 256 < p.size(); ++b) {
    const size_t e = std::min(p.size(), (b + 1) * 256);
    std::vector<float> m(e - b * 256), v(e - b * 256);
    float n1 = 0, n2 = 0;
    for (size_t i = b * 256; i < e; ++i) {
      volatile float gi = g[i], vi = U[q2[i]] * A2[b], mi = S[q1[i]] * A1[b];
      volatile float x = (1.0f - b2) * gi;
      volatile float y = x * gi;
      volatile float z = vi * b2;
      vi = z + y;
      volatile float w = (1.0f - b1) * gi;
      volatile float u = mi * b1;
      mi = u + w;
      m[i - b * 256] = mi;
      v[i - b * 256] = vi;
      n1 = std::max(n1, std::fabs(mi));
      n2 = std::max(n2, std::fabs(vi));
    }
    A1[b] = n1;
    A2[b] = n2;
    for (size_t i = b * 256; i < e; ++i) {
      const float mi = m[i - b * 256], vi = v[i - b * 256];
      volatile float ce = c2 * eps;
      volatile float s = std::sqrt(vi);
      volatile float den = s + ce;
      volatile float u = mi / den;
      volatile float su = step_size * u;
      volatile float np = p[i] + su;
      if (wd > 0) {
        volatile float lw = lr * wd;
        volatile float dec = 1.0f - lw;
        np = np * dec;
      }
      p[i] = np;
      uint8_t c = d8::SelectRef(S, mi / n1);
      if (std::signbit(S[c]) != std::signbit(mi)) c = static_cast<uint8_t>(mi > 0 ? c + 1 : c - 1);
      q1[i] = c;
      q2[i] = d8::SelectRef(U, vi / n2);
    }
  }
}

// Five steps over 3 blocks and a partial one, with varied gradient scales, equal to the
// reference bit for bit, for 1 and 4 threads.
TEST(Adam8bit, MatchesThePlainReferenceOverSteps) {
  const size_t n = 3 * 256 + 77;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> p0(n);
  for (float& x : p0) x = nd(rng);
  for (int threads : {1, 4}) {
    std::vector<float> p = p0, rp = p0;
    std::vector<uint8_t> q1(n, 127), q2(n, 0), r1(n, 127), r2(n, 0);
    std::vector<float> a1(4, 0), a2(4, 0), ra1(4, 0), ra2(4, 0);
    std::mt19937 grng(7);
    for (int64_t t = 1; t <= 5; ++t) {
      std::vector<float> g(n);
      for (size_t i = 0; i < n; ++i) g[i] = nd(grng) * (i < 256 ? 1e-4f : i < 512 ? 1.0f : 30.0f);
      Adam8bitStep(threads, p.data(), g.data(), q1.data(), q2.data(), a1.data(), a2.data(), n, t,
                   {2e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f});
      RefStep(rp, g, r1, r2, ra1, ra2, t, 2e-3f, 0.01f);
    }
    EXPECT_EQ(std::memcmp(p.data(), rp.data(), n * 4), 0) << threads << " threads";
    EXPECT_EQ(q1, r1);
    EXPECT_EQ(q2, r2);
    EXPECT_EQ(a1, ra1);
    EXPECT_EQ(a2, ra2);
  }
}

// A non-finite gradient element resets its moments and leaves its parameter alone.
TEST(Adam8bit, NonFiniteGradientElementIsSkipped) {
  std::vector<float> p = {1.0f, 2.0f, 3.0f}, g = {0.5f, NAN, INFINITY};
  std::vector<uint8_t> q1(3, 200), q2(3, 200);
  float a1 = 1.0f, a2 = 1.0f;
  Adam8bitStep(1, p.data(), g.data(), q1.data(), q2.data(), &a1, &a2, 3, 2, {});
  EXPECT_NE(p[0], 1.0f);
  EXPECT_EQ(p[1], 2.0f);
  EXPECT_EQ(p[2], 3.0f);
  EXPECT_EQ(q1[1], 127);
  EXPECT_EQ(q2[1], 0);
}

// Ranges() covers 126000 parameters.
constexpr size_t kRangesTotal = 126000;

std::vector<float> Normal(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng) * scale;
  return v;
}

std::vector<ParamRange> Ranges() {
  // One tensor below min_8bit_size (f32 state), two above; one of them above the paging
  // threshold, so a paged state puts only that one in the file.
  return {{0, 1000, false}, {1000, 5000, true}, {6000, 120000, true}};
}

// For every optimizer, paged state equals RAM state bit for bit over three steps, and only
// tensors of >= 1e5 elements are paged.
TEST(AdamWState, PagedEqualsInRamForEveryOptimizer) {
  const std::vector<ParamRange> ranges = Ranges();
  const size_t n = kRangesTotal;
  std::mt19937 rng(11);
  const std::vector<float> p0 = Normal(rng, n, 1.0f);
  const std::string dir = testing::TempDir();
  for (const char* name : {"adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}) {
    OptimSpec paged = ParseOptim(name), ram = paged;
    ram.paged = false;
    paged.paged = true;
    Allocator alloc_a, alloc_b;
    AdamWState a(ram, ranges, alloc_a, dir), b(paged, ranges, alloc_b, dir);
    a.Zero();
    b.Zero();
    std::vector<float> pa = p0, pb = p0;
    for (int64_t t = 1; t <= 3; ++t) {
      const std::vector<float> g = Normal(rng, n, 1e-2f);
      a.Step(2, pa.data(), g.data(), t, 1e-3, 0.1, {});
      b.Step(2, pb.data(), g.data(), t, 1e-3, 0.1, {});
    }
    EXPECT_EQ(std::memcmp(pa.data(), pb.data(), n * 4), 0) << name;
    EXPECT_FALSE(b.slots()[0].paged);
    EXPECT_FALSE(b.slots()[1].paged);
    EXPECT_TRUE(b.slots()[2].paged);
    EXPECT_EQ(a.paged_bytes(), 0u);
    EXPECT_EQ(b.paged_bytes() + b.ram_bytes(), a.ram_bytes()) << name;
    EXPECT_EQ(a.slots()[0].eight_bit, false);
    EXPECT_EQ(a.slots()[2].eight_bit, paged.kind == OptimKind::kBnb8bit);
  }
}

// adamw_torch through the state is torch's AdamW step per tensor; bitsandbytes' 32-bit
// update stays within rounding of it (decay after the step instead of before: O(lr²·wd)),
// and the 8-bit one within the codes' resolution.
TEST(AdamWState, OptimizersAgreeWithinTheirPrecision) {
  const std::vector<ParamRange> ranges = Ranges();
  const size_t n = kRangesTotal;
  std::mt19937 rng(12);
  const std::vector<float> p0 = Normal(rng, n, 1.0f);
  std::vector<std::vector<float>> gs;
  for (int t = 0; t < 4; ++t) gs.push_back(Normal(rng, n, 1e-2f));
  auto run = [&](const char* name) {
    Allocator alloc;
    AdamWState s(ParseOptim(name), ranges, alloc, "");
    s.Zero();
    std::vector<float> p = p0;
    for (int64_t t = 1; t <= 4; ++t) s.Step(1, p.data(), gs[t - 1].data(), t, 1e-3, 0.0, {});
    return p;
  };
  const std::vector<float> torch = run("adamw_torch"), b32 = run("paged_adamw_32bit"), b8 = run("adamw_8bit");
  std::vector<float> direct = p0, m(n, 0), v(n, 0);
  for (int64_t t = 1; t <= 4; ++t)
    for (const ParamRange& r : ranges)
      AdamWStep(1, direct.data() + r.offset, gs[t - 1].data() + r.offset, m.data() + r.offset, v.data() + r.offset,
                r.count, t, 1e-3, 0.0, {});
  EXPECT_EQ(std::memcmp(torch.data(), direct.data(), n * 4), 0);
  double d32 = 0, d8 = 0, moved = 0;
  for (size_t i = 0; i < n; ++i) {
    d32 = std::max(d32, double{std::fabs(b32[i] - torch[i])});
    d8 = std::max(d8, double{std::fabs(b8[i] - torch[i])});
    moved = std::max(moved, double{std::fabs(torch[i] - p0[i])});
  }
  // Four steps of at most lr = 1e-3 each: the 32-bit update differs by rounding (a few ulp
  // of |p| ≤ 5, 1e-6), the 8-bit one by the moments' 8-bit resolution (a fraction of a step).
  EXPECT_LT(d32, 2e-6);
  EXPECT_LT(d8, 1e-3);
  EXPECT_GT(moved, 3e-3);
}

TEST(OptimSpec, NamesAndAliases) {
  EXPECT_EQ(OptimName(ParseOptim("adamw")), "adamw_torch");
  EXPECT_EQ(OptimName(ParseOptim("adamw_bnb_8bit")), "adamw_8bit");
  EXPECT_EQ(OptimName(ParseOptim("paged_adamw")), "paged_adamw_32bit");
  EXPECT_EQ(OptimName(ParseOptim("paged_adamw_8bit")), "paged_adamw_8bit");
  try {
    ParseOptim("sgd");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"sgd\""), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("paged_adamw_8bit"), std::string::npos);
  }
  EXPECT_THROW(PagedArena("/nonexistent/dir", 1), IoError);
}

}  // namespace
}  // namespace nibble::optim
