#include "jamnet/media/test_signals.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace jamnet::media {

namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

double midi_hz(int note) {
  return 440.0 * std::pow(2.0, (note - 69) / 12.0);
}

void normalise_peak(std::vector<float>& x, float peak) {
  float m = 0.0f;
  for (float v : x) m = std::max(m, std::abs(v));
  if (m <= 0.0f) return;
  const float g = peak / m;
  for (float& v : x) v *= g;
}

}  // namespace

std::vector<float> sine(double hz, double seconds, int rate, float amplitude) {
  const auto n = static_cast<std::size_t>(std::max(0.0, std::round(seconds * rate)));
  std::vector<float> x(n);
  const double w = kTwoPi * hz / rate;
  for (std::size_t i = 0; i < n; ++i)
    x[i] = amplitude * static_cast<float>(std::sin(w * static_cast<double>(i)));
  return x;
}

// Additive "electric piano" notes: a few harmonics with faster decay for the
// higher ones, a 5 ms attack, a strum of a few ms between chord notes, and a
// release; Cmaj7 - Am7 - Dm7 - G7, one chord per second, plus a melody note
// on each half second.
std::vector<float> chords(double seconds, int rate) {
  const auto n = static_cast<std::size_t>(std::max(0.0, std::round(seconds * rate)));
  std::vector<float> x(n, 0.0f);
  static constexpr std::array<std::array<int, 4>, 4> kChords{{
      {48, 64, 67, 71},  // Cmaj7 (C3 root)
      {45, 60, 64, 67},  // Am7
      {50, 60, 65, 69},  // Dm7
      {43, 59, 65, 67},  // G7
  }};
  static constexpr std::array<int, 8> kMelody{76, 79, 72, 76, 77, 74, 71, 74};
  auto add_note = [&](double start_s, double dur_s, int key, double amp) {
    const double f = midi_hz(key);
    const auto start = static_cast<std::size_t>(start_s * rate);
    const double attack = 0.005 * rate, release = 0.08 * rate;
    const auto len = static_cast<std::size_t>((dur_s + 0.08) * rate);
    for (std::size_t i = 0; i < len && start + i < n; ++i) {
      const double t = static_cast<double>(i) / rate;
      double env = std::min(1.0, static_cast<double>(i) / attack);
      const double held = dur_s * rate;
      if (static_cast<double>(i) > held) env *= std::max(0.0, 1.0 - (i - held) / release);
      double s = 0.0;
      for (int h = 1; h <= 6; ++h) {
        if (f * h > 0.45 * rate) break;
        s += std::exp(-t * (1.5 + 1.2 * h)) / h * std::sin(kTwoPi * f * h * t + 0.3 * h);
      }
      x[start + i] += static_cast<float>(amp * env * s);
    }
  };
  const int total_beats = static_cast<int>(std::ceil(seconds));
  for (int c = 0; c < total_beats; ++c) {
    const auto& ch = kChords[static_cast<std::size_t>(c) % kChords.size()];
    for (std::size_t k = 0; k < ch.size(); ++k)
      add_note(c + 0.006 * static_cast<double>(k), 0.97, ch[k], k == 0 ? 0.22 : 0.14);
    for (int half = 0; half < 2; ++half)
      add_note(c + 0.5 * half, 0.46,
               kMelody[static_cast<std::size_t>(2 * c + half) % kMelody.size()], 0.16);
  }
  normalise_peak(x, 0.5f);
  return x;
}

}  // namespace jamnet::media
