#include "jamnet/engine/io/file_backend.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "jamnet/engine/io/wav_file.hpp"

namespace jamnet::engine::io {
namespace {

using namespace std::chrono_literals;

// Output j = gain * input j (input 0 when there are fewer inputs); counts
// cycles and checks the virtual clock as it goes.
class CopyWithGain : public AudioCallback {
 public:
  explicit CopyWithGain(float gain) : gain_(gain) {}

  void process(const AudioBlock& block) noexcept override {
    const auto& in = block.info;
    if (in.frame_time != next_frame_) clock_errors_.fetch_add(1);
    if (in.start_ns != static_cast<Nanos>(in.frame_time * 1'000'000'000 / in.sample_rate) ||
        in.wake_ns != in.start_ns)
      clock_errors_.fetch_add(1);
    next_frame_ = in.frame_time + in.frames;
    if (in.frames == 0 || in.frames > 128) clock_errors_.fetch_add(1);
    for (std::size_t j = 0; j < block.outputs.size(); ++j) {
      const float* src =
          block.inputs.empty() ? nullptr : block.inputs[std::min(j, block.inputs.size() - 1)];
      for (std::uint32_t f = 0; f < in.frames; ++f)
        block.outputs[j][f] = src != nullptr ? gain_ * src[f] : 0.0f;
    }
    calls_.fetch_add(1);
  }

  std::uint64_t calls() const { return calls_.load(); }
  std::uint64_t clock_errors() const { return clock_errors_.load(); }

 private:
  float gain_;
  std::uint64_t next_frame_ = 0;
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> clock_errors_{0};
};

class FileBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("jamnet-file-backend-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A deterministic multi-channel signal: a different sine per channel plus
  // a little pseudo-random noise, so no two samples are alike.
  static std::vector<float> signal(std::size_t frames, int channels, int rate) {
    std::vector<float> out(frames * static_cast<std::size_t>(channels));
    std::uint32_t x = 12345;
    for (std::size_t f = 0; f < frames; ++f) {
      for (int c = 0; c < channels; ++c) {
        x = x * 1664525u + 1013904223u;
        const double t = static_cast<double>(f) / rate;
        out[f * channels + c] =
            static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * (220.0 * (c + 1)) * t) +
                               0.01 * (static_cast<double>(x >> 8) / (1 << 24) - 0.5));
      }
    }
    return out;
  }

  std::string write_input(const std::string& name, std::size_t frames, int channels,
                          int rate = 48000) const {
    const auto p = path(name);
    const auto samples = signal(frames, channels, rate);
    EXPECT_TRUE(write_audio_file(p, samples, channels, rate).has_value());
    return p;
  }

  static BackendConfig config(const std::string& in, const std::string& out, int inputs,
                              int outputs) {
    BackendConfig c;
    c.client_name = "filetest";
    c.inputs.clear();
    c.outputs.clear();
    for (int i = 0; i < inputs; ++i) c.inputs.push_back("in_" + std::to_string(i + 1));
    for (int i = 0; i < outputs; ++i) c.outputs.push_back("out_" + std::to_string(i + 1));
    c.input_path = in;
    c.output_path = out;
    c.sample_rate = 48000;
    c.frames = 128;
    return c;
  }

  // Starts, waits for finished(), stops.
  static void run_to_end(AudioBackend& b, AudioCallback& cb,
                         std::chrono::milliseconds timeout = 30s) {
    ASSERT_TRUE(b.start(cb).has_value());
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!b.finished() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(b.finished());
    b.stop();
    EXPECT_FALSE(b.failure().has_value()) << b.failure()->message;
  }

  std::filesystem::path dir_;
};

// 72001 frames: the last cycle is one frame long.
constexpr std::size_t kOddFrames = 72001;

TEST_F(FileBackendTest, FloatWavPassesThroughBitExactly) {
  const auto in = write_input("in.wav", kOddFrames, 2);
  auto b = open_file_backend(config(in, path("out.wav"), 2, 2));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ((*b)->kind(), "file");
  EXPECT_EQ((*b)->input_ports(), (std::vector<std::string>{"filetest:in_1", "filetest:in_2"}));
  CopyWithGain cb(1.0f);
  run_to_end(**b, cb);
  EXPECT_EQ(cb.clock_errors(), 0u);
  EXPECT_EQ(cb.calls(), (kOddFrames + 127) / 128);
  EXPECT_EQ((*b)->cycles(), cb.calls());
  EXPECT_EQ((*b)->xruns(), 0u);

  const auto want = read_audio_file(in);
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got->channels, 2);
  EXPECT_EQ(got->sample_rate, 48000);
  ASSERT_EQ(got->frames(), kOddFrames);
  EXPECT_TRUE(got->samples == want->samples);  // bit-exact
}

TEST_F(FileBackendTest, GainIsApplied) {
  const auto in = write_input("in.wav", 10000, 1);
  auto b = open_file_backend(config(in, path("out.wav"), 1, 1));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  CopyWithGain cb(0.25f);  // a power of two: exact in float
  run_to_end(**b, cb);
  const auto want = read_audio_file(in);
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->samples.size(), want->samples.size());
  std::size_t diffs = 0;
  for (std::size_t i = 0; i < got->samples.size(); ++i)
    diffs += got->samples[i] == 0.25f * want->samples[i] ? 0 : 1;
  EXPECT_EQ(diffs, 0u);
}

TEST_F(FileBackendTest, FlacOutputIs24Bit) {
  const auto in = write_input("in.wav", 20000, 2);
  auto b = open_file_backend(config(in, path("out.flac"), 2, 2));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  CopyWithGain cb(1.0f);
  run_to_end(**b, cb);
  const auto want = read_audio_file(in);
  const auto got = read_audio_file(path("out.flac"));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got->channels, 2);
  ASSERT_EQ(got->samples.size(), want->samples.size());
  double max_err = 0;
  for (std::size_t i = 0; i < got->samples.size(); ++i)
    max_err = std::max(max_err, std::fabs(double{got->samples[i]} - want->samples[i]));
  // 24-bit quantisation: within a couple of LSBs (2^-23), far below 16-bit's 2^-15.
  EXPECT_LT(max_err, 4.0 / (1 << 23));
  EXPECT_GT(max_err, 0.0);  // it really went through integers
  // FLAC is lossless but compresses: smaller than the float WAV would be.
  EXPECT_LT(std::filesystem::file_size(path("out.flac")), want->samples.size() * sizeof(float));
}

TEST_F(FileBackendTest, MonoFileFeedsEveryInput) {
  const auto in = write_input("mono.wav", 5000, 1);
  auto b = open_file_backend(config(in, path("out.wav"), 3, 3));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  CopyWithGain cb(1.0f);
  run_to_end(**b, cb);
  const auto want = read_audio_file(in);
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->channels, 3);
  ASSERT_EQ(got->frames(), 5000u);
  for (std::size_t f = 0; f < 5000; ++f) {
    for (std::size_t c = 0; c < 3; ++c) ASSERT_EQ(got->samples[f * 3 + c], want->samples[f]);
  }
}

// Writes frame_time + f: the output shows every frame once, in order.
class FrameCounter : public AudioCallback {
 public:
  void process(const AudioBlock& block) noexcept override {
    for (const float* in : block.inputs) {
      for (std::uint32_t f = 0; f < block.info.frames; ++f) nonzero_inputs_ += in[f] != 0.0f;
    }
    for (float* out : block.outputs) {
      for (std::uint32_t f = 0; f < block.info.frames; ++f)
        out[f] = static_cast<float>(block.info.frame_time + f);
    }
  }
  std::atomic<std::uint64_t> nonzero_inputs_{0};
};

TEST_F(FileBackendTest, SilenceForMaxFrames) {
  auto c = config("", path("out.wav"), 2, 1);
  c.max_frames = 1000;
  auto b = open_file_backend(c);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  FrameCounter cb;
  run_to_end(**b, cb);
  EXPECT_EQ(cb.nonzero_inputs_.load(), 0u);
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  ASSERT_EQ(got->frames(), 1000u);
  for (std::size_t f = 0; f < 1000; ++f) ASSERT_EQ(got->samples[f], static_cast<float>(f));
  EXPECT_EQ((*b)->cycles(), 8u);  // 7 * 128 + 104
}

TEST_F(FileBackendTest, MaxFramesPadsTheInputWithSilence) {
  const auto in = write_input("in.wav", 300, 1);
  auto c = config(in, path("out.wav"), 1, 1);
  c.max_frames = 500;
  auto b = open_file_backend(c);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  CopyWithGain cb(1.0f);
  run_to_end(**b, cb);
  const auto want = read_audio_file(in);
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->frames(), 500u);
  for (std::size_t f = 0; f < 300; ++f) ASSERT_EQ(got->samples[f], want->samples[f]);
  for (std::size_t f = 300; f < 500; ++f) ASSERT_EQ(got->samples[f], 0.0f);
}

TEST_F(FileBackendTest, ClearErrors) {
  {
    auto b = open_file_backend(config(path("missing.wav"), path("out.wav"), 1, 1));
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::kNotFound);
    EXPECT_NE(b.error().message.find("missing.wav"), std::string::npos) << b.error().message;
  }
  {
    const auto in = write_input("three.wav", 100, 3);
    auto b = open_file_backend(config(in, path("out.wav"), 2, 2));
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::kInvalidArgument);
    EXPECT_NE(b.error().message.find("3 channels"), std::string::npos) << b.error().message;
    EXPECT_NE(b.error().message.find("2 inputs"), std::string::npos) << b.error().message;
  }
  {
    const auto in = write_input("44k.wav", 100, 1, 44100);
    auto b = open_file_backend(config(in, path("out.wav"), 1, 1));
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::kInvalidArgument);
    EXPECT_NE(b.error().message.find("44100"), std::string::npos) << b.error().message;
    EXPECT_NE(b.error().message.find("48000"), std::string::npos) << b.error().message;
  }
  {
    auto b = open_file_backend(config("", path("out.wav"), 1, 1));  // no length
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::kInvalidArgument);
    EXPECT_NE(b.error().message.find("max_frames"), std::string::npos) << b.error().message;
  }
  {
    auto c = config("", path("out.mp3"), 1, 1);
    c.max_frames = 10;
    auto b = open_file_backend(c);
    ASSERT_FALSE(b.has_value());
    EXPECT_EQ(b.error().code, Errc::kInvalidArgument);
    EXPECT_NE(b.error().message.find(".flac"), std::string::npos) << b.error().message;
  }
  {
    auto c = config("", path("no-such-dir/out.wav"), 1, 1);
    c.max_frames = 10;
    auto b = open_file_backend(c);
    ASSERT_TRUE(b.has_value()) << b.error().message;
    FrameCounter cb;
    auto started = (*b)->start(cb);
    ASSERT_FALSE(started.has_value());
    EXPECT_EQ(started.error().code, Errc::kIo);
    EXPECT_NE(started.error().message.find("no-such-dir"), std::string::npos);
  }
}

TEST_F(FileBackendTest, AddOutputBeforeStartOnly) {
  const auto in = write_input("in.wav", 1000, 1);
  auto b = open_file_backend(config(in, path("out.wav"), 1, 1));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  auto idx = (*b)->add_output("out_2");
  ASSERT_TRUE(idx.has_value()) << idx.error().message;
  EXPECT_EQ(*idx, 1u);
  EXPECT_EQ((*b)->add_output("out_2").error().code, Errc::kInvalidArgument);
  CopyWithGain cb(1.0f);
  run_to_end(**b, cb);
  EXPECT_EQ((*b)->add_output("out_3").error().code, Errc::kUnsupported);
  EXPECT_EQ((*b)->start(cb).error().code, Errc::kUnsupported);  // one run per backend
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->channels, 2);
  EXPECT_EQ(got->frames(), 1000u);
}

TEST_F(FileBackendTest, StopEndsEarlyAndKeepsWhatWasWritten) {
  auto c = config("", path("out.wav"), 0, 1);
  c.max_frames = std::uint64_t{48000} * 3600 * 24;  // a day: it will not get there
  auto b = open_file_backend(c);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  FrameCounter cb;
  ASSERT_TRUE((*b)->start(cb).has_value());
  std::this_thread::sleep_for(50ms);
  (*b)->stop();
  (*b)->stop();  // idempotent
  EXPECT_FALSE((*b)->finished());
  const auto cycles = (*b)->cycles();
  EXPECT_GT(cycles, 0u);
  const auto got = read_audio_file(path("out.wav"));
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got->frames(), cycles * 128);  // whole cycles, each written
  for (std::size_t f = 0; f < got->frames(); f += 997)
    ASSERT_EQ(got->samples[f], static_cast<float>(f));
}

TEST_F(FileBackendTest, RunsMuchFasterThanRealTime) {
  const auto in = write_input("ten.wav", 48000 * 10, 2);
  auto b = open_file_backend(config(in, path("ten-out.wav"), 2, 2));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  CopyWithGain cb(1.0f);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*b)->start(cb).has_value());
  while (!(*b)->finished() && std::chrono::steady_clock::now() - t0 < 10s)
    std::this_thread::sleep_for(1ms);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (*b)->stop();
  std::printf("file backend: 10 s of stereo audio in %.3f s (%.0fx real time)\n", secs, 10 / secs);
  EXPECT_TRUE((*b)->finished());
  EXPECT_LT(secs, 3.0);  // an unoptimised ASan build does it in a fraction of that
  const auto got = read_audio_file(path("ten-out.wav"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->frames(), 480000u);
}

}  // namespace
}  // namespace jamnet::engine::io
