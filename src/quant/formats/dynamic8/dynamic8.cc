// The dynamic map generator (PyTorch's float32 linspace, both roundings), select8 as a
// binary search, the blockwise 8-bit codec and double quantization of absmax constants.
#include "quant/formats/dynamic8/dynamic8.h"

#include <algorithm>
#include <cmath>

namespace nibble::quant::dynamic8 {
namespace {

Map FromBits(const uint32_t (&bits)[256]) {
  Map m{};
  for (int i = 0; i < 256; ++i) m[i] = std::bit_cast<float>(bits[i]);
  return m;
}

// torch.linspace on CPU for float32 (RangeFactoriesKernel.cpp): the first half counts up
// from start, the second half down from end; `fma` fuses step*i with the add.
std::vector<float> LinspaceF32(float start, float end, int n, bool fma) {
  std::vector<float> v(static_cast<size_t>(n));
  const float step = (end - start) / static_cast<float>(n - 1);
  const int half = n / 2;
  for (int i = 0; i < n; ++i) {
    if (i < half) {
      const float fi = static_cast<float>(i);
      v[i] = fma ? std::fmaf(step, fi, start) : start + step * fi;
    } else {
      const float fj = static_cast<float>(n - 1 - i);
      v[i] = fma ? std::fmaf(-step, fj, end) : end - step * fj;
    }
  }
  return v;
}

}  // namespace

Map SignedMap() { return FromBits(kSignedBits); }
Map UnsignedMap() { return FromBits(kUnsignedBits); }

Map GenerateMap(bool is_signed, bool fma) {
  std::vector<float> data;
  constexpr int kMaxExponentBits = 7;
  for (int i = 0; i < kMaxExponentBits; ++i) {
    const int nseg = is_signed ? (1 << i) : (1 << (i + 1));
    const std::vector<float> bnd = LinspaceF32(0.1f, 1.0f, nseg + 1, fma);
    const auto scale = static_cast<float>(std::pow(10.0, i - (kMaxExponentBits - 1)));
    for (int k = 0; k < nseg; ++k) {
      const float mid = (bnd[k] + bnd[k + 1]) / 2.0f;
      data.push_back(scale * mid);
      if (is_signed) data.push_back(-(scale * mid));
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  Map m{};
  std::copy_n(data.begin(), 256, m.begin());
  return m;
}

Midpoints MidpointsOf(const Map& map) {
  Midpoints m{};
  for (int k = 0; k < 255; ++k) m[k] = (map[k] + map[k + 1]) * 0.5f;
  return m;
}

uint8_t Select(const Midpoints& mids, float s) noexcept {
  if (std::isnan(s)) return 0;
  // First k with s <= m[k]; equality goes to the even one of k, k+1.
  const auto it = std::lower_bound(mids.begin(), mids.end(), s);
  const auto k = static_cast<int>(it - mids.begin());
  if (k == 255) return 255;
  if (s == mids[k]) return static_cast<uint8_t>((k % 2 == 0) ? k : k + 1);
  return static_cast<uint8_t>(k);
}

SelectTable MakeSelectTable(const Map& map) {
  SelectTable t;
  t.mids = MidpointsOf(map);
  for (uint32_t bucket = 0; bucket < 65536; ++bucket) {
    // The smallest float of the bucket in the order the key preserves.
    const uint32_t key = bucket << 16;
    const uint32_t bits = (key & 0x80000000u) != 0 ? (key & 0x7fffffffu) : ~key;
    const float lo = std::bit_cast<float>(bits);
    t.first[bucket] = std::isnan(lo) ? uint8_t{0}
                                      : static_cast<uint8_t>(std::min<ptrdiff_t>(
                                            254, std::lower_bound(t.mids.begin(), t.mids.end(), lo) - t.mids.begin()));
  }
  return t;
}

uint8_t SelectRef(const Map& map, float s) noexcept {
  if (std::isnan(s)) return 0;
  for (int k = 0; k < 255; ++k) {
    const float m = (map[k] + map[k + 1]) * 0.5f;
    if (s < m) return static_cast<uint8_t>(k);
    if (s == m) return static_cast<uint8_t>((k % 2 == 0) ? k : k + 1);
  }
  return 255;
}

void Quantize(const Map& map, const float* x, int64_t n, int64_t blocksize, uint8_t* codes, float* absmax) noexcept {
  const Midpoints mids = MidpointsOf(map);
  for (int64_t b = 0, begin = 0; begin < n; ++b, begin += blocksize) {
    const int64_t end = std::min(n, begin + blocksize);
    float a = 0.0f;
    for (int64_t i = begin; i < end; ++i) a = std::max(a, std::fabs(x[i]));
    absmax[b] = a;
    const float inv = 1.0f / a;  // +inf for an all-zero block: NaN scaled values, code 0
    for (int64_t i = begin; i < end; ++i) codes[i] = Select(mids, x[i] * inv);
  }
}

void Dequantize(const float* map, const uint8_t* codes, const float* absmax, int64_t n, int64_t blocksize,
                float* out) noexcept {
  for (int64_t i = 0; i < n; ++i) out[i] = map[codes[i]] * absmax[i / blocksize];
}

NestedAbsmax CompressAbsmax(std::span<const float> absmax) {
  NestedAbsmax r;
  r.map = SignedMap();
  r.nested_blocksize = kNestedBlocksize;
  const auto nb = static_cast<int64_t>(absmax.size());
  double sum = 0.0;
  for (float a : absmax) sum += static_cast<double>(a);
  r.offset = nb > 0 ? static_cast<float>(sum / static_cast<double>(nb)) : 0.0f;
  std::vector<float> centred(absmax.size());
  for (size_t j = 0; j < absmax.size(); ++j) centred[j] = absmax[j] - r.offset;
  r.codes.resize(absmax.size());
  r.nested_absmax.resize(static_cast<size_t>((nb + kNestedBlocksize - 1) / kNestedBlocksize));
  Quantize(r.map, centred.data(), nb, kNestedBlocksize, r.codes.data(), r.nested_absmax.data());
  return r;
}

void ReconstructAbsmax(const float* map, const uint8_t* codes, const float* nested_absmax, float offset,
                       int64_t nested_blocksize, int64_t begin, int64_t end, float* out) noexcept {
  for (int64_t j = begin; j < end;) {  // one nested block at a time: no division per element
    const int64_t stop = std::min(end, (j / nested_blocksize + 1) * nested_blocksize);
    const float na = nested_absmax[j / nested_blocksize];
    for (; j < stop; ++j) {
      const float scaled = map[codes[j]] * na;  // rounded once ...
      out[j - begin] = scaled + offset;         // ... then the add
    }
  }
}

}  // namespace nibble::quant::dynamic8
