#include "jamnet/engine/io/wav_file.hpp"

#include <sndfile.h>

#include "sndfile_ptr.hpp"

#include <memory>

namespace jamnet::engine::io {
namespace {

int sndfile_format(AudioFileFormat f) noexcept {
  switch (f) {
    case AudioFileFormat::kWav16:
      return SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    case AudioFileFormat::kWav24:
      return SF_FORMAT_WAV | SF_FORMAT_PCM_24;
    case AudioFileFormat::kFlac24:
      return SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
    case AudioFileFormat::kWavFloat:
      break;
  }
  return SF_FORMAT_WAV | SF_FORMAT_FLOAT;
}

}  // namespace

Result<AudioFileData> read_audio_file(const std::string& path) {
  SF_INFO info{};
  SndfilePtr f(sf_open(path.c_str(), SFM_READ, &info));
  if (!f) return make_error(Errc::kIo, path + ": " + sf_strerror(nullptr));
  if (info.channels <= 0 || info.samplerate <= 0 || info.frames < 0)
    return make_error(Errc::kParse, path + ": no audio in this file");
  constexpr sf_count_t kMaxFrames = sf_count_t{1} << 31;
  if (info.frames > kMaxFrames / info.channels)
    return make_error(Errc::kTooLarge, path + ": file too long to load at once");
  AudioFileData out;
  out.channels = info.channels;
  out.sample_rate = info.samplerate;
  out.samples.resize(static_cast<std::size_t>(info.frames * info.channels));
  const sf_count_t got = sf_readf_float(f.get(), out.samples.data(), info.frames);
  out.samples.resize(static_cast<std::size_t>(got * info.channels));
  return out;
}

Result<std::vector<float>> read_wav_mono(const std::string& path, int* rate_out) {
  auto data = read_audio_file(path);
  if (!data) return std::unexpected(data.error());
  if (rate_out) *rate_out = data->sample_rate;
  if (data->channels == 1) return std::move(data->samples);
  std::vector<float> mono(data->frames());
  const auto ch = static_cast<std::size_t>(data->channels);
  for (std::size_t i = 0; i < mono.size(); ++i) {
    float sum = 0;
    for (std::size_t c = 0; c < ch; ++c) sum += data->samples[i * ch + c];
    mono[i] = sum / static_cast<float>(ch);
  }
  return mono;
}

Result<void> write_audio_file(const std::string& path, std::span<const float> interleaved,
                              int channels, int sample_rate, AudioFileFormat format) {
  if (channels <= 0 || sample_rate <= 0)
    return make_error(Errc::kInvalidArgument, "write_audio_file: channels and rate must be > 0");
  if (interleaved.size() % static_cast<std::size_t>(channels) != 0)
    return make_error(Errc::kInvalidArgument,
                      "write_audio_file: sample count is not a multiple of the channel count");
  SF_INFO info{};
  info.channels = channels;
  info.samplerate = sample_rate;
  info.format = sndfile_format(format);
  SndfilePtr f(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!f) return make_error(Errc::kIo, path + ": " + sf_strerror(nullptr));
  if (format != AudioFileFormat::kWavFloat) sf_command(f.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const auto frames = static_cast<sf_count_t>(interleaved.size() / channels);
  if (sf_writef_float(f.get(), interleaved.data(), frames) != frames)
    return make_error(Errc::kIo, path + ": " + sf_strerror(f.get()));
  return {};
}

}  // namespace jamnet::engine::io
