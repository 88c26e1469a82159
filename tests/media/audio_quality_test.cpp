// The quality figures every test and benchmark uses: a tone-fit segmental SNR
// that needs no alignment must reward a delayed or resampled copy and punish
// gaps, clicks, noise and a wrong pitch.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "jamnet/media/audio_quality.hpp"

namespace jamnet::media {
namespace {

constexpr double kFreqs[] = {311.0, 997.0};

std::vector<float> tones(double rate, double seconds, double delay_s = 0, double pitch = 1.0) {
  std::vector<float> x(static_cast<std::size_t>(rate * seconds), 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / rate - delay_s;
    if (t < 0) continue;
    double v = 0;
    for (double f : kFreqs) v += 0.3 * std::sin(2 * std::numbers::pi * f * pitch * t);
    x[i] = static_cast<float>(v);
  }
  return x;
}

TEST(ToneSnr, ExactAndFractionallyDelayedCopiesScoreHigh) {
  for (double delay : {0.0, 0.0123457}) {
    const auto x = tones(48000, 1.0, delay);
    const auto r = tone_segsnr_db(x, 48000, kFreqs);
    EXPECT_GE(r.segsnr_db, 34.0) << "delay " << delay;
    EXPECT_EQ(r.silent_segments, 0u);
    EXPECT_GT(r.seconds, 0.9);
  }
  const auto y = tones(44100, 1.0, 0.003);
  EXPECT_GE(tone_segsnr_db(y, 44100, kFreqs).segsnr_db, 34.0);
}

TEST(ToneSnr, GapsNoiseAndWrongPitchScoreLow) {
  auto gap = tones(48000, 1.0);
  std::fill(gap.begin() + 20000, gap.begin() + 24000, 0.0f);  // 83 ms
  EXPECT_LT(tone_segsnr_db(gap, 48000, kFreqs).segsnr_db, 33.0);
  EXPECT_GE(tone_segsnr_db(gap, 48000, kFreqs).silent_segments, 3u);
  std::fill(gap.begin() + 10000, gap.begin() + 20000, 0.0f);  // 300 ms in all
  EXPECT_LT(tone_segsnr_db(gap, 48000, kFreqs).segsnr_db, 30.0);

  auto noisy = tones(48000, 1.0);
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 0.05f);
  for (auto& v : noisy) v += n(rng);
  EXPECT_LT(tone_segsnr_db(noisy, 48000, kFreqs).segsnr_db, 20.0);

  // 44.1 kHz audio played as 48 kHz: every pitch 8.8% high.
  const auto sharp = tones(48000, 1.0, 0.0, 48000.0 / 44100.0);
  EXPECT_LT(tone_segsnr_db(sharp, 48000, kFreqs).segsnr_db, 10.0);

  // Within the pitch allowance (drift steering) it is not noise; 8.8% is.
  const auto steered = tones(48000, 1.0, 0.0, 1.003);
  EXPECT_LT(tone_segsnr_db(steered, 48000, kFreqs).segsnr_db, 30.0);
  EXPECT_LT(tone_segsnr_db(steered, 48000, kFreqs, {}, 1000).segsnr_db, 30.0);
  EXPECT_GE(tone_segsnr_db(steered, 48000, kFreqs, {}, 4000).segsnr_db, 34.0);
  EXPECT_LT(tone_segsnr_db(sharp, 48000, kFreqs, {}, 1000).segsnr_db, 10.0);

  const std::vector<float> silence(48000, 0.0f);
  EXPECT_TRUE(std::isnan(tone_segsnr_db(silence, 48000, kFreqs).segsnr_db));
}

}  // namespace
}  // namespace jamnet::media
