// Objective audio quality against a reference: SNR, segmental SNR, and the
// lag that aligns a received signal with what was sent. Used by the demo, the
// tests and the benchmarks, so every figure is computed one way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace jamnet::media {

struct SegSnrConfig {
  std::size_t segment = 960;  // 20 ms at 48 kHz
  double floor_db = -10;      // per-segment SNR clamped to [floor_db, ceiling_db]
  double ceiling_db = 35;
  double silence_dbfs = -60;  // segments whose reference is quieter are skipped
};

// 10 log10(sum ref^2 / sum (ref - test)^2) over the common length; +inf when equal.
double snr_db(std::span<const float> ref, std::span<const float> test) noexcept;
// Mean of the clamped per-segment SNRs (the usual convention for codecs and
// loss concealment); NaN when every segment is silent.
double segmental_snr_db(std::span<const float> ref, std::span<const float> test,
                        const SegSnrConfig& config = {}) noexcept;

struct Alignment {
  std::int64_t lag = 0;    // test[n + lag] matches ref[n]
  double correlation = 0;  // normalised, at that lag
};
// The lag in [-max_lag, max_lag] with the best normalised cross-correlation,
// every lag exactly (one FFT correlation, overlap energies from prefix sums),
// among lags whose overlap holds at least half of the shorter signal. On
// tonal signals neighbouring periods correlate almost as well as the true
// lag, so nothing is skipped. Allocates: not for the audio thread.
Alignment best_lag(std::span<const float> ref, std::span<const float> test, std::int64_t max_lag);

}  // namespace jamnet::media
