// The int8-activation 4-bit GEMV: activation quantization, the int8 weight table, the
// scalar oracle, and the dispatch to the VNNI or AVX2 kernel (the oracle's loop at the
// scalar cap).
#include "quant/qgemv4_i8.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu_features.h"

namespace nibble::quant {

bool SupportsInt8Activations(const QTensor& w) {
  const int64_t K = w.cols(), B = w.blocksize;
  return w.method != QuantMethod::kLlmInt8 && w.format != nullptr && w.format->code_bits == 4 &&
         w.format->lut != nullptr && K % kActBlock == 0 && B % kActBlock == 0 && K % B == 0;
}

Int8Table MakeInt8Table(const float* lut16) {
  float tmax = 0.0f;
  bool integers = true;
  for (int c = 0; c < 16; ++c) {
    tmax = std::max(tmax, std::fabs(lut16[c]));
    integers = integers && lut16[c] == std::nearbyint(lut16[c]);
  }
  Int8Table t{};
  t.mult = tmax == 0.0f ? 1.0f : (integers ? std::floor(127.0f / tmax) : 127.0f / tmax);
  for (int c = 0; c < 16; ++c) t.t[c] = static_cast<int8_t>(std::nearbyint(lut16[c] * t.mult));
  return t;
}

// Round to nearest even for |v| < 2^22 in the default rounding mode (equal to
// nearbyint there, without its library call): 1.5 * 2^23 pushes the fraction out.
inline float RoundNearestEven(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

void QuantizeActivationsQ8(const float* x, int64_t K, Q8Activations* out) {
  const int64_t nb = K / kActBlock;
  out->q.resize(static_cast<size_t>(K));
  out->d.resize(static_cast<size_t>(nb));
  out->sum.resize(static_cast<size_t>(nb));
  for (int64_t j = 0; j < nb; ++j) {
    const float* xb = x + j * kActBlock;
    float amax = 0.0f;
    bool finite = true;
    for (int64_t k = 0; k < kActBlock; ++k) {
      finite = finite && std::isfinite(xb[k]);
      amax = std::max(amax, std::fabs(xb[k]));
    }
    // Blocks the codes cannot represent: NaN or inf (d = NaN, so y is NaN as on the f32
    // path), and amax < 127 / FLT_MAX, whose 127 / amax overflows (q = 0: the block's
    // contribution is below 64 · 3.7e-37 · |w|).
    const float inv = finite && amax > 0.0f ? 127.0f / amax : 0.0f;
    const bool zero = !finite || !std::isfinite(inv);
    int32_t s = 0;
    int8_t* q = out->q.data() + j * kActBlock;
    for (int64_t k = 0; k < kActBlock; ++k) {
      // |x * inv| <= 127 * (1 + 2^-23) < 127.5, so the clamp never changes a finite block.
      const float v = zero ? 0.0f : std::clamp(RoundNearestEven(xb[k] * inv), -127.0f, 127.0f);
      q[k] = static_cast<int8_t>(v);
      s += static_cast<int32_t>(v);
    }
    out->d[static_cast<size_t>(j)] = finite ? amax / 127.0f : std::numeric_limits<float>::quiet_NaN();
    out->sum[static_cast<size_t>(j)] = s;
  }
}

namespace {

// Rows [n0, n1) by the definition, for activations `a` (one x row) into y[n].
void RowsI8Ref(const QTensor& w, const Int8Table& tab, const Q8Activations& a, float* y, int64_t n0, int64_t n1,
               std::vector<float>* scales) {
  const int64_t K = w.cols(), B = w.blocksize, bpr = K / B;
  scales->resize(static_cast<size_t>(bpr));
  for (int64_t n = n0; n < n1; ++n) {
    w.BlockScales(n * bpr, (n + 1) * bpr, scales->data());
    const uint8_t* codes = w.codes.data() + n * K / 2;
    float acc = 0.0f;
    for (int64_t j = 0; j < K / kActBlock; ++j) {
      int32_t dot = 0;
      for (int64_t k = j * kActBlock; k < (j + 1) * kActBlock; k += 2) {
        const uint8_t c = codes[k / 2];
        dot += tab.t[c >> 4] * a.q[static_cast<size_t>(k)] + tab.t[c & 0xF] * a.q[static_cast<size_t>(k + 1)];
      }
      const float s = a.d[static_cast<size_t>(j)] * ((*scales)[static_cast<size_t>(j * kActBlock / B)] / tab.mult);
      acc += static_cast<float>(dot) * s;
    }
    y[n] = acc;
  }
}

}  // namespace

void QGemv4I8Ref(const float* x, const QTensor& w, float* y, int64_t M) {
  const int64_t N = w.rows(), K = w.cols();
  const Int8Table tab = MakeInt8Table(w.format->lut);
  Q8Activations a;
  std::vector<float> scales;
  for (int64_t m = 0; m < M; ++m) {
    QuantizeActivationsQ8(x + m * K, K, &a);
    RowsI8Ref(w, tab, a, y + m * N, 0, N, &scales);
  }
}

namespace detail {

void LayoutForVnni(const Q8Activations& a, int64_t K, float mult, VnniActivations* out) {
  const int64_t nb = K / kActBlock, groups = (nb + 3) / 4;
  out->xa.assign(static_cast<size_t>(groups * 256), 0);
  out->bias.assign(static_cast<size_t>(groups * 16), 0);
  out->sa.assign(static_cast<size_t>(groups * 16), 0.0f);
  static constexpr int64_t kOff[4][2] = {{0, 1}, {0, 0}, {32, 1}, {32, 0}};  // {base, parity} per step j
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t g = b / 4, k = b % 4;
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t i = 0; i < 16; ++i)
        out->xa[static_cast<size_t>(g * 256 + j * 64 + k * 16 + i)] =
            a.q[static_cast<size_t>(b * kActBlock + kOff[j][0] + 2 * i + kOff[j][1])];
    for (int64_t l = 0; l < 4; ++l) {
      out->bias[static_cast<size_t>(g * 16 + 4 * k + l)] = -32 * a.sum[static_cast<size_t>(b)];
      out->sa[static_cast<size_t>(g * 16 + 4 * k + l)] = a.d[static_cast<size_t>(b)] / mult;
    }
  }
}

void LayoutForAvx2(const Q8Activations& a, int64_t K, float mult, int8_t* xa, float* sa) {
  for (int64_t b = 0; b < K / kActBlock; ++b) {
    int8_t* dst = xa + b * 128;
    const int8_t* q = a.q.data() + b * kActBlock;
    for (int64_t i = 0; i < 32; ++i) {
      dst[i] = q[2 * i];
      dst[32 + i] = q[2 * i + 1];
      dst[64 + i] = static_cast<int8_t>(q[2 * i] < 0 ? -q[2 * i] : q[2 * i]);  // |q| <= 127
      dst[96 + i] = static_cast<int8_t>(q[2 * i + 1] < 0 ? -q[2 * i + 1] : q[2 * i + 1]);
    }
    sa[b] = a.d[static_cast<size_t>(b)] / mult;
  }
}

void LayoutForAvx2Prompt(const Q8Activations& a, int64_t K, float mult, int16_t* x16, float* sa) {
  static constexpr int kOrder[4][2] = {{0, 2}, {4, 6}, {1, 3}, {5, 7}};  // element offsets in 8i..8i+7
  for (int64_t b = 0; b < K / kActBlock; ++b) {
    int16_t* dst = x16 + b * 64;
    const int8_t* q = a.q.data() + b * kActBlock;
    for (int part = 0; part < 4; ++part)
      for (int i = 0; i < 8; ++i) {
        dst[part * 16 + 2 * i] = q[8 * i + kOrder[part][0]];
        dst[part * 16 + 2 * i + 1] = q[8 * i + kOrder[part][1]];
      }
    sa[b] = a.d[static_cast<size_t>(b)] / mult;
  }
}

}  // namespace detail

Int8ActivationsPath ChooseInt8ActivationsPath() noexcept {
  if (CpuHasAvx512Vnni()) return Int8ActivationsPath::kAvx512Vnni;
  if (CpuHasAvx2Fma()) return Int8ActivationsPath::kAvx2;
  return Int8ActivationsPath::kRef;
}

const char* Int8ActivationsPathName(Int8ActivationsPath p) noexcept {
  switch (p) {
    case Int8ActivationsPath::kAvx512Vnni:
      return "avx512vnni (vpdpbusd)";
    case Int8ActivationsPath::kAvx2:
      return "avx2 (vpmaddubsw; prompts vpmaddwd)";
    case Int8ActivationsPath::kRef:
      return "scalar reference";
  }
  return "?";
}

void QGemv4I8(int num_threads, const float* x, const QTensor& w, float* y, int64_t M) noexcept {
  const int threads = std::max(1, num_threads);
  const int64_t N = w.rows(), K = w.cols();
  const Int8Table tab = MakeInt8Table(w.format->lut);
  const Int8ActivationsPath path = ChooseInt8ActivationsPath();
  NoteDispatch(path == Int8ActivationsPath::kAvx512Vnni ? "int8-activations avx512vnni"
               : path == Int8ActivationsPath::kAvx2      ? "int8-activations avx2"
                                                         : "int8-activations scalar reference");
  if (path == Int8ActivationsPath::kAvx512Vnni) {
    std::vector<detail::VnniActivations> va(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) detail::QuantizeForVnni(x + m * K, K, tab.mult, &va[static_cast<size_t>(m)]);
    const int64_t groups = (K / kActBlock + 3) / 4;
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> scale_buf(static_cast<size_t>(4 * groups * 4));
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      detail::Gemv4I8RowsVnni(&w, tab, va.data(), M, y, N * t / nt, N * (t + 1) / nt, scale_buf.data());
    }
    return;
  }
  if (path == Int8ActivationsPath::kAvx2) {
    // The activations' buffers are the calling thread's and keep their capacity (up to
    // kKeep below), so a forward pass allocates them once; prompts quantize their tokens
    // in parallel.
    thread_local std::vector<int8_t> xa;
    thread_local std::vector<int16_t> x16;
    thread_local std::vector<float> sa;
    const int64_t bpr = K / kActBlock;
    const bool prompt = M >= detail::kAvx2PromptRows;
    if (prompt) {
      x16.resize(static_cast<size_t>(M * bpr * 64));
    } else {
      xa.resize(static_cast<size_t>(M * bpr * 128));
    }
    sa.resize(static_cast<size_t>(M * bpr));
    int8_t* const xa_p = xa.data();
    int16_t* const x16_p = x16.data();
    float* const sa_p = sa.data();
#pragma omp parallel for num_threads(M >= 8 ? threads : 1) schedule(static)
    for (int64_t m = 0; m < M; ++m) {
      thread_local Q8Activations q;
      QuantizeActivationsQ8(x + m * K, K, &q);
      if (prompt) {
        detail::LayoutForAvx2Prompt(q, K, tab.mult, x16_p + m * bpr * 64, sa_p + m * bpr);
      } else {
        detail::LayoutForAvx2(q, K, tab.mult, xa_p + m * bpr * 128, sa_p + m * bpr);
      }
    }
    const detail::Avx2Activations act{prompt ? nullptr : xa_p, prompt ? x16_p : nullptr, sa_p};
#pragma omp parallel num_threads(threads)
    {
      std::vector<float> scale_buf(static_cast<size_t>(4 * bpr));
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      detail::Gemv4I8RowsAvx2(&w, tab, act, M, y, N * t / nt, N * (t + 1) / nt, scale_buf.data());
    }
    // Kept for the next call up to 64 MiB (a 2048-token prompt at K = 16384); a larger
    // one is released rather than held for the thread's life.
    constexpr size_t kKeep = size_t{64} << 20;
    if (x16.capacity() * sizeof(int16_t) > kKeep) std::vector<int16_t>().swap(x16);
    if (xa.capacity() > kKeep) std::vector<int8_t>().swap(xa);
    return;
  }
  std::vector<Q8Activations> a(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) QuantizeActivationsQ8(x + m * K, K, &a[static_cast<size_t>(m)]);
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> scales;
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    for (int64_t m = 0; m < M; ++m)
      RowsI8Ref(w, tab, a[static_cast<size_t>(m)], y + m * N, N * t / nt, N * (t + 1) / nt, &scales);
  }
}

}  // namespace nibble::quant
