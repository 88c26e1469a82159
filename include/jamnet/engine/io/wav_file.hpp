// Audio files through libsndfile: WAV, FLAC and whatever else it reads.
//
// File I/O: control thread only, never the audio thread.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "jamnet/core/result.hpp"

namespace jamnet::engine::io {

struct AudioFileData {
  std::vector<float> samples;  // interleaved
  int channels = 0;
  int sample_rate = 0;
  std::size_t frames() const noexcept {
    return channels > 0 ? samples.size() / static_cast<std::size_t>(channels) : 0;
  }
};

enum class AudioFileFormat { kWavFloat, kWav16, kWav24, kFlac24 };

Result<AudioFileData> read_audio_file(const std::string& path);
// Reads any file libsndfile knows and mixes it to mono (average of channels).
Result<std::vector<float>> read_wav_mono(const std::string& path, int* rate_out = nullptr);
// Writes interleaved samples; the format follows `format` (default 32-bit float WAV).
Result<void> write_audio_file(const std::string& path, std::span<const float> interleaved,
                              int channels, int sample_rate,
                              AudioFileFormat format = AudioFileFormat::kWavFloat);
inline Result<void> write_wav(const std::string& path, std::span<const float> interleaved,
                              int channels, int sample_rate) {
  return write_audio_file(path, interleaved, channels, sample_rate);
}

}  // namespace jamnet::engine::io
