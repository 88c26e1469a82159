// CPU reference of the batch kernels (include/jamnet/gpu/kernels.hpp).
//
// Compiled with -ffp-contract=off (CMakeLists.txt): every multiply and add
// rounds on its own, as in the GLSL (`precise`) and CUDA (__fmul_rn /
// __fadd_rn) versions, so the three agree bit for bit on IEEE hardware. Keep
// the operation order identical in all three when changing any of them.
#include <algorithm>
#include <cstring>
#include <string>

#include "jamnet/gpu/kernels.hpp"

namespace jamnet::gpu {

Result<void> validate(const PnbtrShape& s) {
  auto bad = [](std::string m) -> Result<void> {
    return std::unexpected(Error{Errc::kInvalidArgument, "pnbtr: " + std::move(m)});
  };
  if (s.streams < 0) return bad("streams must be >= 0, got " + std::to_string(s.streams));
  if (s.order < 1 || s.order > kPnbtrMaxOrder)
    return bad("order must be 1.." + std::to_string(kPnbtrMaxOrder) + ", got " +
               std::to_string(s.order));
  if (s.history < s.order + 2 || s.history > kPnbtrMaxHistory)
    return bad("history must be order+2.." + std::to_string(kPnbtrMaxHistory) + ", got " +
               std::to_string(s.history));
  if (s.frames < 1 || s.frames > kPnbtrMaxFrames)
    return bad("frames must be 1.." + std::to_string(kPnbtrMaxFrames) + ", got " +
               std::to_string(s.frames));
  return {};
}

Result<void> validate(const MixShape& s) {
  auto bad = [](std::string m) -> Result<void> {
    return std::unexpected(Error{Errc::kInvalidArgument, "mix: " + std::move(m)});
  };
  if (s.inputs < 0 || s.outputs < 0)
    return bad("inputs and outputs must be >= 0, got " + std::to_string(s.inputs) + " and " +
               std::to_string(s.outputs));
  if (s.frames < 1 || s.frames > 65536)
    return bad("frames must be 1..65536, got " + std::to_string(s.frames));
  if (std::int64_t{s.inputs} * s.frames > (std::int64_t{1} << 28) ||
      std::int64_t{s.outputs} * s.frames > (std::int64_t{1} << 28) ||
      std::int64_t{s.outputs} * s.inputs > (std::int64_t{1} << 28))
    return bad("more than 2^28 samples or gains in one buffer");
  return {};
}

namespace {

// One stream. f and b: scratch of `n` doubles each.
void pnbtr_one(const float* x, int n, int order, int frames, float* out, double* f,
               double* b) noexcept {
  double a[kPnbtrMaxOrder + 1];
  double tmp[kPnbtrMaxOrder + 1];
  a[0] = 1.0;
  for (int i = 1; i <= kPnbtrMaxOrder; ++i) a[i] = 0.0;
  double num = 0.0, den = 0.0;
  for (int t = 1; t < n; ++t) {
    const double ft = x[t];
    const double bt = x[t - 1];
    f[t] = ft;
    b[t] = bt;
    const double fb = ft * bt;
    num = num + fb;
    const double ff = ft * ft;
    const double bb = bt * bt;
    const double e = ff + bb;
    den = den + e;
  }
  for (int m = 0; m < order && m + 2 < n; ++m) {
    if (!(den > kPnbtrMinPower)) break;
    const double dn = den * kPnbtrFloorScale;
    const double k = (-2.0 * num) / dn;
    for (int i = 0; i <= m + 1; ++i) {
      const double ka = k * a[m + 1 - i];
      tmp[i] = a[i] + ka;
    }
    for (int i = 0; i <= m + 1; ++i) a[i] = tmp[i];
    num = 0.0;
    den = 0.0;
    // In place, newest first: f[t-1] and b[t-1] are still this stage's.
    for (int t = n - 1; t >= m + 2; --t) {
      const double kb = k * b[t];
      const double fa = f[t] + kb;
      const double kf = k * f[t - 1];
      const double ba = b[t - 1] + kf;
      f[t] = fa;
      b[t] = ba;
      const double fb = fa * ba;
      num = num + fb;
      const double ff = fa * fa;
      const double bb = ba * ba;
      const double e = ff + bb;
      den = den + e;
    }
  }
  // The continuation: w[j - 1] holds y(t - j), the history's newest samples
  // first, then the predictions (clamped to full scale, kept in double).
  double w[kPnbtrMaxOrder];
  for (int j = 1; j <= order; ++j) w[j - 1] = x[n - j];
  for (int i = 0; i < frames; ++i) {
    double s = 0.0;
    for (int j = 1; j <= order; ++j) {
      const double p = a[j] * w[j - 1];
      s = s + p;
    }
    double y = -s;
    if (!(y <= 1.0 && y >= -1.0)) y = (y > 1.0) ? 1.0 : ((y < -1.0) ? -1.0 : 0.0);
    for (int j = order - 1; j >= 1; --j) w[j] = w[j - 1];
    w[0] = y;
    out[i] = static_cast<float>(y);
  }
}

}  // namespace

void pnbtr_reference(const PnbtrShape& s, const float* history, float* out, int first,
                     int last) noexcept {
  double f[kPnbtrMaxHistory];
  double b[kPnbtrMaxHistory];
  for (int st = first; st < last; ++st) {
    pnbtr_one(history + std::size_t(st) * s.history, s.history, s.order, s.frames,
              out + std::size_t(st) * s.frames, f, b);
  }
}

void mix_reference(const MixShape& s, const float* gains, const float* in, float* out) noexcept {
  const std::size_t frames = s.frames;
  for (int o = 0; o < s.outputs; ++o) {
    float* row = out + o * frames;
    std::fill(row, row + frames, 0.0f);
    const float* g = gains + std::size_t(o) * s.inputs;
    for (int i = 0; i < s.inputs; ++i) {
      const float gi = g[i];
      const float* x = in + i * frames;
      for (std::size_t t = 0; t < frames; ++t) {
        const float p = gi * x[t];
        row[t] = row[t] + p;
      }
    }
  }
}

// ------------------------------------------------------------------ JSONL

namespace {

// jmid::Kind order; the name packed little-endian.
constexpr std::uint64_t tag(std::string_view s) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    v |= std::uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
  return v;
}
constexpr std::uint64_t kTags[] = {tag("n+"), tag("n-"),  tag("pp"),    tag("cc"),   tag("pc"),
                                   tag("cp"), tag("pb"),  tag("mtc"),   tag("spp"),  tag("ss"),
                                   tag("tr"), tag("clk"), tag("start"), tag("cont"), tag("stop"),
                                   tag("as"), tag("rst"), tag("sx")};
constexpr int kKinds = 18;
constexpr int kSysExKind = 17;
// 0 c,n,v  1 c,v  2 c,v(bend)  3 v(0..127)  4 v(0..16383)  5 none
constexpr int kShape[kKinds] = {0, 0, 0, 0, 1, 1, 2, 3, 4, 3, 5, 5, 5, 5, 5, 5, 5, 6};

constexpr unsigned kT = 1, kC = 2, kN = 4, kV = 8, kTs = 16, kSeq = 32;

struct Scan {
  const unsigned char* p;
  std::uint32_t len;
  std::uint32_t pos;
  bool ok() const noexcept { return pos < len; }
  unsigned at() const noexcept { return pos < len ? p[pos] : 0u; }
};

bool is_digit(unsigned c) noexcept {
  return c >= '0' && c <= '9';
}

// A JSON integer of at most `max_digits` digits that fits in 64 bits;
// `allow_minus` for signed keys. "-0" and leading zeros are refused (the general parser decides).
bool read_int(Scan& s, int max_digits, bool allow_minus, bool& negative,
              std::uint64_t& magnitude) noexcept {
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

}  // namespace

JsonlFields jsonl_extract_line(std::string_view line) noexcept {
  JsonlFields r;
  r.status = kJsonlFallback;
  if (line.size() < 2 || line.size() > kJsonlMaxLine) return r;
  Scan s{reinterpret_cast<const unsigned char*>(line.data()), std::uint32_t(line.size()), 1};
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
    if (key == tag("t")) {
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
      kind = -1;
      for (int k = 0; k < kKinds; ++k) {
        if (kTags[k] == name) kind = k;
      }
      if (kind < 0 || kind == kSysExKind) return r;
    } else if (key == tag("c") || key == tag("n") || key == tag("v")) {
      bit = key == tag("c") ? kC : (key == tag("n") ? kN : kV);
      bool neg = false;
      std::uint64_t mag = 0;
      if (!read_int(s, 9, true, neg, mag)) return r;
      const std::int64_t val = neg ? -std::int64_t(mag) : std::int64_t(mag);
      (bit == kC ? c : (bit == kN ? n : v)) = val;
    } else if (key == tag("ts")) {
      bit = kTs;
      bool neg = false;
      std::uint64_t mag = 0;
      if (!read_int(s, 19, true, neg, mag)) return r;
      if (mag > (neg ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1)) return r;
      ts = neg ? std::uint64_t(0) - mag : mag;
    } else if (key == tag("seq")) {
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
  const int shape = kShape[kind];
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

void jsonl_reference(std::string_view blob, std::span<const std::uint32_t> offsets,
                     std::span<JsonlFields> out) noexcept {
  for (std::size_t i = 0; i < out.size() && i + 1 < offsets.size(); ++i) {
    std::uint32_t a = offsets[i], e = offsets[i + 1];
    if (e > blob.size() || a > e) {
      out[i] = JsonlFields{.status = kJsonlFallback};
      continue;
    }
    if (e > a && blob[e - 1] == '\n') --e;
    out[i] = jsonl_extract_line(blob.substr(a, e - a));
  }
}

Result<std::vector<std::uint32_t>> split_lines(std::string_view blob) {
  if (blob.size() >= (std::uint64_t{1} << 32))
    return std::unexpected(Error{Errc::kInvalidArgument, "jsonl: a batch must be under 4 GiB"});
  std::vector<std::uint32_t> off;
  off.push_back(0);
  std::size_t pos = 0;
  while (pos < blob.size()) {
    const void* nl = std::memchr(blob.data() + pos, '\n', blob.size() - pos);
    pos = nl ? static_cast<const char*>(nl) - blob.data() + 1 : blob.size();
    off.push_back(std::uint32_t(pos));
  }
  return off;
}

}  // namespace jamnet::gpu
