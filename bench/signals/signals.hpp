// Real test signals, generated at test time (nothing downloaded): sines and
// chords, music rendered by fluidsynth from a MIDI file we write, and speech
// from espeak-ng. Shared by tests, benchmarks and the demo.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/media/test_signals.hpp"

namespace jamnet::signals {

inline constexpr int kRate = 48000;

// The synthetic ones live in the library (media/test_signals.hpp).
inline std::vector<float> sine(double hz, double seconds, int rate = kRate,
                               float amplitude = 0.5f) {
  return media::sine(hz, seconds, rate, amplitude);
}
inline std::vector<float> chords(double seconds, int rate = kRate) {
  return media::chords(seconds, rate);
}
// Piano, bass and drums (a short song we write as a MIDI file), rendered by
// fluidsynth with the FluidR3 GM soundfont and mixed to mono. workdir holds
// the MIDI and WAV files; the result is cached there by content.
Result<std::vector<float>> music(const std::filesystem::path& workdir, double seconds,
                                 int rate = kRate);
// espeak-ng reading a fixed text, resampled to rate with libsamplerate.
Result<std::vector<float>> speech(const std::filesystem::path& workdir, int rate = kRate);

}  // namespace jamnet::signals
