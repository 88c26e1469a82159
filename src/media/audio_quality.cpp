#include "jamnet/media/audio_quality.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <numbers>
#include <vector>

namespace jamnet::media {

double snr_db(std::span<const float> ref, std::span<const float> test) noexcept {
  const std::size_t n = std::min(ref.size(), test.size());
  double sig = 0, err = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(ref[i]) - test[i];
    sig += static_cast<double>(ref[i]) * ref[i];
    err += d * d;
  }
  if (err == 0) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(sig / err);
}

double segmental_snr_db(std::span<const float> ref, std::span<const float> test,
                        const SegSnrConfig& c) noexcept {
  const std::size_t n = std::min(ref.size(), test.size());
  const double silence = std::pow(10.0, c.silence_dbfs / 10);  // mean square
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t start = 0; start + c.segment <= n; start += c.segment) {
    double sig = 0, err = 0;
    for (std::size_t i = start; i < start + c.segment; ++i) {
      const double d = static_cast<double>(ref[i]) - test[i];
      sig += static_cast<double>(ref[i]) * ref[i];
      err += d * d;
    }
    if (sig / static_cast<double>(c.segment) < silence) continue;
    const double db = err == 0 ? c.ceiling_db : 10 * std::log10(sig / err);
    sum += std::clamp(db, c.floor_db, c.ceiling_db);
    ++count;
  }
  return count ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
}

namespace {

// Solves a x = b (n x n, row-major) by Gaussian elimination with partial
// pivoting; false when singular.
bool solve(std::vector<double>& a, std::vector<double>& b, std::size_t n) {
  for (std::size_t col = 0; col < n; ++col) {
    std::size_t piv = col;
    for (std::size_t r = col + 1; r < n; ++r)
      if (std::abs(a[r * n + col]) > std::abs(a[piv * n + col])) piv = r;
    if (std::abs(a[piv * n + col]) < 1e-12) return false;
    if (piv != col) {
      for (std::size_t k = 0; k < n; ++k) std::swap(a[col * n + k], a[piv * n + k]);
      std::swap(b[col], b[piv]);
    }
    for (std::size_t r = col + 1; r < n; ++r) {
      const double f = a[r * n + col] / a[col * n + col];
      for (std::size_t k = col; k < n; ++k) a[r * n + k] -= f * a[col * n + k];
      b[r] -= f * b[col];
    }
  }
  for (std::size_t i = n; i-- > 0;) {
    double v = b[i];
    for (std::size_t k = i + 1; k < n; ++k) v -= a[i * n + k] * b[k];
    b[i] = v / a[i * n + i];
  }
  return true;
}

// The fraction of the segment's energy the tones explain, as an SNR in dB.
double tone_fit_db(std::span<const float> seg, double rate, std::span<const double> freqs,
                   const SegSnrConfig& c) {
  const std::size_t m = 2 * freqs.size() + 1;  // sin, cos per tone, and a constant
  std::vector<double> ata(m * m, 0.0), atb(m, 0.0), row(m);
  for (std::size_t i = 0; i < seg.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    for (std::size_t k = 0; k < freqs.size(); ++k) {
      const double w = 2 * std::numbers::pi * freqs[k] * t;
      row[2 * k] = std::sin(w);
      row[2 * k + 1] = std::cos(w);
    }
    row[m - 1] = 1.0;
    for (std::size_t r = 0; r < m; ++r) {
      atb[r] += row[r] * seg[i];
      for (std::size_t k = 0; k < m; ++k) ata[r * m + k] += row[r] * row[k];
    }
  }
  if (!solve(ata, atb, m)) return c.floor_db;
  double sig = 0, err = 0;
  for (std::size_t i = 0; i < seg.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    double fit = atb[m - 1];
    for (std::size_t k = 0; k < freqs.size(); ++k) {
      const double w = 2 * std::numbers::pi * freqs[k] * t;
      fit += atb[2 * k] * std::sin(w) + atb[2 * k + 1] * std::cos(w);
    }
    sig += fit * fit;
    const double d = seg[i] - fit;
    err += d * d;
  }
  const double db = err == 0 ? c.ceiling_db : 10 * std::log10(sig / err);
  return std::clamp(db, c.floor_db, c.ceiling_db);
}

}  // namespace

ToneSnr tone_segsnr_db(std::span<const float> x, double rate, std::span<const double> freqs,
                       const SegSnrConfig& c, double max_pitch_ppm) {
  ToneSnr r;
  const std::size_t seg = c.segment;
  if (seg == 0 || freqs.empty() || rate <= 0) return r;
  const std::size_t nseg = x.size() / seg;
  const double silence = std::pow(10.0, c.silence_dbfs / 10);
  auto loud = [&](std::size_t s) {
    double e = 0;
    for (std::size_t i = s * seg; i < (s + 1) * seg; ++i) e += static_cast<double>(x[i]) * x[i];
    return e / static_cast<double>(seg) >= silence;
  };
  std::size_t first = nseg, last = 0;
  for (std::size_t s = 0; s < nseg; ++s)
    if (loud(s)) {
      first = std::min(first, s);
      last = s;
    }
  if (first == nseg || last < first + 2) return r;
  r.seconds = static_cast<double>((last - first + 1) * seg) / rate;
  double sum = 0;
  for (std::size_t s = first + 1; s < last; ++s) {
    ++r.segments;
    if (!loud(s)) {
      ++r.silent_segments;
      sum += c.floor_db;
      continue;
    }
    double best = c.floor_db;
    const int steps = max_pitch_ppm > 0 ? 8 : 0;
    std::vector<double> f(freqs.begin(), freqs.end());
    for (int k = -steps; k <= steps; ++k) {
      const double scale = 1.0 + (steps ? max_pitch_ppm * 1e-6 * k / steps : 0.0);
      for (std::size_t i = 0; i < f.size(); ++i) f[i] = freqs[i] * scale;
      best = std::max(best, tone_fit_db(x.subspan(s * seg, seg), rate, f, c));
    }
    sum += best;
  }
  r.segsnr_db = sum / static_cast<double>(r.segments);
  return r;
}

namespace {

// In-place iterative radix-2 FFT; n is a power of two. inverse: no 1/n scale.
void fft(std::vector<std::complex<double>>& a, bool inverse) {
  const std::size_t n = a.size();
  for (std::size_t i = 1, j = 0; i < n; ++i) {
    std::size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (std::size_t len = 2; len <= n; len <<= 1) {
    const double ang = 2.0 * std::numbers::pi / static_cast<double>(len) * (inverse ? 1 : -1);
    const std::complex<double> wl(std::cos(ang), std::sin(ang));
    const std::size_t half = len / 2;
    // Twiddles computed once per stage (recurrence drift stays tiny at this size).
    std::vector<std::complex<double>> w(half);
    w[0] = 1.0;
    for (std::size_t k = 1; k < half; ++k) {
      // Exact every 64 steps so the recurrence cannot drift.
      if (k % 64 == 0) {
        const double t = ang * static_cast<double>(k);
        w[k] = {std::cos(t), std::sin(t)};
      } else {
        w[k] = w[k - 1] * wl;
      }
    }
    for (std::size_t i = 0; i < n; i += len) {
      for (std::size_t k = 0; k < half; ++k) {
        const std::complex<double> u = a[i + k];
        const std::complex<double> v = a[i + k + half] * w[k];
        a[i + k] = u + v;
        a[i + k + half] = u - v;
      }
    }
  }
}

}  // namespace

Alignment best_lag(std::span<const float> ref, std::span<const float> test, std::int64_t max_lag) {
  const std::size_t nr = ref.size(), nt = test.size();
  if (nr == 0 || nt == 0 || max_lag < 0) return {};
  // Circular correlation equals the linear one for |lag| <= max_lag once the
  // transform is at least max(nr, nt) + max_lag long: wrapped terms meet zeros.
  const std::size_t span = static_cast<std::size_t>(
      std::min<std::int64_t>(max_lag, static_cast<std::int64_t>(std::max(nr, nt))));
  std::size_t n = 1;
  while (n < std::max(nr, nt) + span) n <<= 1;
  // One complex FFT carries both real signals: ref in the real part, test in
  // the imaginary part; their spectra are separated by conjugate symmetry.
  std::vector<std::complex<double>> z(n);
  for (std::size_t i = 0; i < nr; ++i) z[i].real(ref[i]);
  for (std::size_t i = 0; i < nt; ++i) z[i].imag(test[i]);
  fft(z, false);
  std::vector<std::complex<double>> c(n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::complex<double> zk = z[k], zn = std::conj(z[(n - k) & (n - 1)]);
    const std::complex<double> r = 0.5 * (zk + zn);                            // FFT(ref)
    const std::complex<double> t = std::complex<double>(0, -0.5) * (zk - zn);  // FFT(test)
    c[k] = std::conj(r) * t;
  }
  fft(c, true);  // c[lag mod n] * n = sum_i ref[i] test[i + lag]
  // Prefix energies give each lag's overlap energies exactly.
  std::vector<double> er(nr + 1, 0.0), et(nt + 1, 0.0);
  for (std::size_t i = 0; i < nr; ++i) er[i + 1] = er[i] + double{ref[i]} * ref[i];
  for (std::size_t i = 0; i < nt; ++i) et[i + 1] = et[i] + double{test[i]} * test[i];
  const std::int64_t min_overlap =
      static_cast<std::int64_t>(std::max<std::size_t>(1, std::min(nr, nt) / 2));
  Alignment best{0, -2.0};
  const std::int64_t lnr = static_cast<std::int64_t>(nr), lnt = static_cast<std::int64_t>(nt);
  const std::int64_t lim = static_cast<std::int64_t>(span);
  for (std::int64_t lag = -lim; lag <= lim; ++lag) {
    // ref[i] with test[i + lag], i in [i0, i1)
    const std::int64_t i0 = std::max(std::int64_t{0}, -lag), i1 = std::min(lnr, lnt - lag);
    if (i1 - i0 < min_overlap) continue;
    const double exx = er[static_cast<std::size_t>(i1)] - er[static_cast<std::size_t>(i0)];
    const double eyy =
        et[static_cast<std::size_t>(i1 + lag)] - et[static_cast<std::size_t>(i0 + lag)];
    if (!(exx > 0 && eyy > 0)) continue;
    const std::size_t idx =
        static_cast<std::size_t>(lag < 0 ? static_cast<std::int64_t>(n) + lag : lag);
    const double xy = c[idx].real() / static_cast<double>(n);
    const double corr = xy / std::sqrt(exx * eyy);
    if (corr > best.correlation) best = {lag, corr};
  }
  if (best.correlation < -1.5) return {};
  return best;
}

AlignedAudio align_playout(const std::vector<float>& reference, const std::vector<float>& played,
                           std::int64_t max_lag) {
  AlignedAudio a;
  const auto best = best_lag(reference, played, max_lag);
  a.lag_frames = best.lag;
  a.correlation = best.correlation;
  a.received.assign(reference.size(), 0.0f);
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const std::int64_t j = static_cast<std::int64_t>(i) + best.lag;
    if (j >= 0 && j < static_cast<std::int64_t>(played.size()))
      a.received[i] = played[static_cast<std::size_t>(j)];
  }
  a.snr_db = snr_db(reference, a.received);
  a.segsnr_db = segmental_snr_db(reference, a.received);
  return a;
}

}  // namespace jamnet::media
