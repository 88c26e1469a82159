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

}  // namespace jamnet::media
