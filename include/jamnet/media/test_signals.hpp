// Synthetic test signals, computed (no files, no tools): a sine, and a
// chord progression with note onsets. Used by the demo (what keys plays), the
// tests and the benchmarks; music and speech from real synthesisers live in
// bench/signals.
#pragma once

#include <vector>

namespace jamnet::media {

inline constexpr int kTestSignalRate = 48000;

std::vector<float> sine(double hz, double seconds, int rate = kTestSignalRate,
                        float amplitude = 0.5f);
// Cmaj7 - Am7 - Dm7 - G7, one chord per second, with a melody on the half
// seconds: additive "electric piano" notes, peak 0.5.
std::vector<float> chords(double seconds, int rate = kTestSignalRate);

}  // namespace jamnet::media
