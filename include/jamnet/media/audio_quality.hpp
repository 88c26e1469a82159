// Objective audio quality against a reference: SNR, segmental SNR, and the
// lag that aligns a received signal with what was sent. Used by the demo, the
// tests and the benchmarks, so every figure is computed one way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

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

// Segmental SNR of a test signal made of known tones, with no reference to
// line up: each segment is fitted (least squares) with a sine and a cosine
// per frequency plus a constant, and what the fit cannot explain is the
// error. Any delay, fractional or not, and any resampling that keeps the
// pitch score as well as a bit-exact copy; a wrong pitch, a gap, a click or
// noise does not. The stream is taken from its first to its last segment
// louder than silence_dbfs, less one segment at each end (the fade in and
// out); silent segments inside it count at floor_db (a dropout).
// max_pitch_ppm > 0 also tries every tone up to that far off pitch (in
// steps of max_pitch_ppm / 8) and keeps the best fit per segment: a
// receiver that steers its buffer by resampling (up to 1000 ppm, under two
// cents) plays a pitch that wanders that much, which is not noise.
struct ToneSnr {
  double segsnr_db = std::numeric_limits<double>::quiet_NaN();  // NaN: no stream found
  std::size_t segments = 0;         // judged
  std::size_t silent_segments = 0;  // ... of which silent (dropouts)
  double seconds = 0;               // length of the stream found
};
ToneSnr tone_segsnr_db(std::span<const float> x, double sample_rate, std::span<const double> freqs_hz,
                       const SegSnrConfig& config = {}, double max_pitch_ppm = 0);

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

// A playout recording lined up with what was sent, and how close it is.
struct AlignedAudio {
  std::vector<float> received;  // same length as the reference
  std::int64_t lag_frames = 0;
  double correlation = 0;
  double snr_db = 0;
  double segsnr_db = 0;
};
AlignedAudio align_playout(const std::vector<float>& reference, const std::vector<float>& played,
                           std::int64_t max_lag);

}  // namespace jamnet::media
