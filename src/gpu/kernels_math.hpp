// The batch kernels' per-thread code (include/jamnet/gpu/kernels.hpp), once:
// kernels_cpu.cpp (the CPU reference) loops over these functions, and
// cuda/kernels.cu calls them from its __global__ wrappers (and from its host
// emulation). Plain C++17 that nvcc also compiles: JAMNET_HD, no standard
// library beyond fixed-width integers.
//
// Every multiply and add is one rounded operation (jamnet::hd), as in the
// GLSL shaders (`precise`); keep the operation order identical to
// shaders/gpu/*.comp when changing anything here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jamnet/core/host_device.hpp"
#include "jamnet/gpu/kernel_types.hpp"
#include "jamnet/media/pnbtr/lpc.hpp"

namespace jamnet::gpu::math {

// ------------------------------------------------------------------ PNBTR

// One stream: a Burg fit of its history and the AR continuation, in double
// with float in and out. x: the history (n samples, oldest first); out:
// `frames` predictions. f and b: the fit's scratch, element t at
// f[t * stride].
JAMNET_HD inline void pnbtr_stream(const float* x, int n, int order, int frames, float* out,
                                   double* f, double* b, std::size_t stride) {
  double a[kPnbtrMaxOrder + 1];
  double tmp[kPnbtrMaxOrder + 1];
  media::pnbtr::BurgLimits lim;
  lim.floor_scale = kPnbtrFloorScale;
  lim.min_power = kPnbtrMinPower;
  media::pnbtr::burg(x, n, order, lim, f, b, stride, a, tmp);
  // The continuation: w[j - 1] holds y(t - j), the history's newest samples
  // first, then the predictions (clamped to full scale, kept in double).
  double w[kPnbtrMaxOrder];
  for (int j = 1; j <= order; ++j) w[j - 1] = x[n - j];
  for (int i = 0; i < frames; ++i) {
    double y = media::pnbtr::lpc_next(a, order, w, 1);
    if (!(y <= 1.0 && y >= -1.0)) y = (y > 1.0) ? 1.0 : ((y < -1.0) ? -1.0 : 0.0);
    for (int j = order - 1; j >= 1; --j) w[j] = w[j - 1];
    w[0] = y;
    out[i] = hd::to_float(y);
  }
}

// -------------------------------------------------------------------- mix

// out[0..N) = samples f0 .. f0 + N - 1 of output o: gains[o][i] * in[i][f]
// summed over i ascending from 0.0f. A CUDA thread computes one sample
// (N = 1); the CPU a row in chunks (the sums of a chunk are independent, so
// its inner loop vectorises without reordering any sum).
template <int N>
JAMNET_HD inline void mix_samples(std::size_t o, std::size_t f0, int inputs, std::size_t frames,
                                  const float* gains, const float* in, float* out) {
  const float* g = gains + o * std::size_t(inputs);
  float s[N];
  for (int k = 0; k < N; ++k) s[k] = 0.0f;
  for (int i = 0; i < inputs; ++i) {
    const float gi = g[i];
    const float* x = in + std::size_t(i) * frames + f0;
    for (int k = 0; k < N; ++k) s[k] = hd::add(s[k], hd::mul(gi, x[k]));
  }
  for (int k = 0; k < N; ++k) out[k] = s[k];
}

// ------------------------------------------------------------------ JSONL

// A type or key name packed little-endian into 64 bits.
JAMNET_HD constexpr std::uint64_t tag(const char* s) {
  std::uint64_t v = 0;
  for (int i = 0; s[i] != 0; ++i) v |= std::uint64_t(static_cast<unsigned char>(s[i])) << (8 * i);
  return v;
}
inline constexpr int kKinds = 18;
inline constexpr int kSysExKind = 17;
inline constexpr std::uint64_t kTagT = tag("t"), kTagC = tag("c"), kTagN = tag("n"),
                               kTagV = tag("v"), kTagTs = tag("ts"), kTagSeq = tag("seq");
inline constexpr unsigned kT = 1, kC = 2, kN = 4, kV = 8, kTs = 16, kSeq = 32;

// jmid::Kind of a packed type name, or -1. (A table local to the function:
// device code cannot read a namespace-scope host array.)
JAMNET_HD inline int kind_of(std::uint64_t name) {
  constexpr std::uint64_t tags[kKinds] = {
      tag("n+"),    tag("n-"),   tag("pp"),   tag("cc"), tag("pc"),  tag("cp"),
      tag("pb"),    tag("mtc"),  tag("spp"),  tag("ss"), tag("tr"),  tag("clk"),
      tag("start"), tag("cont"), tag("stop"), tag("as"), tag("rst"), tag("sx")};
  int kind = -1;
  for (int k = 0; k < kKinds; ++k) {
    if (tags[k] == name) kind = k;
  }
  return kind;
}

// What a kind carries:
// 0 c,n,v  1 c,v  2 c,v(bend)  3 v(0..127)  4 v(0..16383)  5 none  6 sysex
JAMNET_HD inline int shape_of(int kind) {
  if (kind <= 3) return 0;
  if (kind <= 5) return 1;
  if (kind == 6) return 2;
  if (kind == 7 || kind == 9) return 3;
  if (kind == 8) return 4;
  if (kind <= 16) return 5;
  return 6;
}

struct Scan {
  const unsigned char* p;
  std::uint32_t len;
  std::uint32_t pos;
  JAMNET_HD bool ok() const { return pos < len; }
  JAMNET_HD unsigned at() const { return pos < len ? p[pos] : 0u; }
};

JAMNET_HD inline bool is_digit(unsigned c) {
  return c >= '0' && c <= '9';
}

// A JSON integer of at most `max_digits` digits that fits in 64 bits;
// `allow_minus` for signed keys. "-0" and leading zeros are refused (the
// general parser decides).
JAMNET_HD inline bool read_int(Scan& s, int max_digits, bool allow_minus, bool& negative,
                               std::uint64_t& magnitude) {
  negative = false;
  if (allow_minus && s.at() == '-') {
    negative = true;
    ++s.pos;
  }
  magnitude = 0;
  int digits = 0;
  const std::uint32_t start = s.pos;
  while (is_digit(s.at())) {
    const unsigned d = s.at() - '0';
    if (digits == max_digits || magnitude > (~std::uint64_t{0} - d) / 10) return false;
    magnitude = magnitude * 10 + d;
    ++digits;
    ++s.pos;
  }
  if (digits == 0) return false;
  if (digits > 1 && s.p[start] == '0') return false;
  if (negative && magnitude == 0) return false;
  return true;
}

// One line without its newline (jsonl_extract_line, kernels.hpp, says which
// lines are extracted).
JAMNET_HD inline JsonlFields extract_line(const unsigned char* line, std::uint32_t size) {
  JsonlFields r;
  r.status = kJsonlFallback;
  if (size < 2 || size > kJsonlMaxLine) return r;
  Scan s{line, size, 1};
  if (s.p[0] != '{' || s.p[s.len - 1] != '}') return r;
  unsigned seen = 0;
  int kind = -1;
  std::int64_t c = 0, n = 0, v = 0;
  std::uint64_t ts = 0, seq = 0;
  for (;;) {
    if (s.at() != '"') return r;
    ++s.pos;
    std::uint64_t key = 0;
    int klen = 0;
    while (s.ok() && s.at() != '"') {
      // A NUL would vanish from the packed key: refuse control characters.
      if (klen == 3 || s.at() < 0x20 || s.at() == '\\' || s.at() >= 0x80) return r;
      key |= std::uint64_t{s.at()} << (8 * klen);
      ++klen;
      ++s.pos;
    }
    if (s.at() != '"') return r;
    ++s.pos;
    if (s.at() != ':') return r;
    ++s.pos;
    unsigned bit = 0;
    if (key == kTagT) {
      bit = kT;
      if (s.at() != '"') return r;
      ++s.pos;
      std::uint64_t name = 0;
      int nlen = 0;
      while (s.ok() && s.at() != '"') {
        const unsigned ch = s.at();
        if (nlen == 5 || ch < 0x20 || ch == '\\' || ch >= 0x80) return r;
        name |= std::uint64_t{ch} << (8 * nlen);
        ++nlen;
        ++s.pos;
      }
      if (s.at() != '"' || nlen == 0) return r;
      ++s.pos;
      kind = kind_of(name);
      if (kind < 0 || kind == kSysExKind) return r;
    } else if (key == kTagC || key == kTagN || key == kTagV) {
      bit = key == kTagC ? kC : (key == kTagN ? kN : kV);
      bool neg = false;
      std::uint64_t mag = 0;
      if (!read_int(s, 9, true, neg, mag)) return r;
      const std::int64_t val = neg ? -std::int64_t(mag) : std::int64_t(mag);
      if (bit == kC)
        c = val;
      else if (bit == kN)
        n = val;
      else
        v = val;
    } else if (key == kTagTs) {
      bit = kTs;
      bool neg = false;
      std::uint64_t mag = 0;
      if (!read_int(s, 19, true, neg, mag)) return r;
      if (mag > (neg ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1)) return r;
      ts = neg ? std::uint64_t(0) - mag : mag;
    } else if (key == kTagSeq) {
      bit = kSeq;
      bool neg = false;
      if (!read_int(s, 20, false, neg, seq)) return r;
    } else {
      return r;
    }
    if (seen & bit) return r;
    seen |= bit;
    if (s.at() == ',') {
      ++s.pos;
      continue;
    }
    if (s.at() == '}' && s.pos == s.len - 1) break;
    return r;
  }
  if (!(seen & kT)) return r;
  const int shape = shape_of(kind);
  const bool chan = shape <= 2;
  if (chan && (!(seen & kC) || c < 1 || c > 16)) return r;
  if (shape == 0 && (!(seen & kN) || n < 0 || n > 127)) return r;
  if (shape <= 4) {
    const std::int64_t lo = shape == 2 ? -8192 : 0;
    const std::int64_t hi = shape == 2 ? 8191 : (shape == 4 ? 16383 : 127);
    if (!(seen & kV) || v < lo || v > hi) return r;
  }
  r.kind = std::uint32_t(kind);
  if (chan) r.channel = std::uint32_t(c - 1);
  if (shape == 0) {
    r.data1 = std::uint32_t(n);
    r.data2 = std::uint32_t(v);
  } else if (shape == 1 || shape == 3) {
    r.data1 = std::uint32_t(v);
  } else if (shape == 2 || shape == 4) {
    r.value14 = std::int32_t(v);
  }
  r.ts_lo = std::uint32_t(ts);
  r.ts_hi = std::uint32_t(ts >> 32);
  r.seq_lo = std::uint32_t(seq);
  r.seq_hi = std::uint32_t(seq >> 32);
  r.status = kJsonlOk;
  return r;
}

// Line i of a batch: blob[offsets[i], offsets[i+1]) less a trailing newline;
// offsets outside the blob fall back.
JAMNET_HD inline JsonlFields jsonl_line(std::uint64_t i, const unsigned char* blob,
                                        std::uint64_t blob_size, const std::uint32_t* offsets) {
  std::uint32_t a = offsets[i], e = offsets[i + 1];
  if (e > blob_size || a > e) {
    JsonlFields r;
    r.status = kJsonlFallback;
    return r;
  }
  if (e > a && blob[e - 1] == '\n') --e;
  return extract_line(blob + a, e - a);
}

}  // namespace jamnet::gpu::math
