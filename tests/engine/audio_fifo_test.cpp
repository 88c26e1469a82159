#include "jamnet/engine/audio_fifo.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace jamnet::engine {
namespace {

constexpr std::uint32_t kRate = 48'000;

std::vector<float> ramp(std::size_t n, float first = 0.0f) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = first + static_cast<float>(i);
  return v;
}

TEST(AudioFifo, CapacityRoundsUpToPowerOfTwo) {
  EXPECT_EQ(AudioFifo(2, 0, kRate).capacity_frames(), 1u);
  EXPECT_EQ(AudioFifo(2, 1000, kRate).capacity_frames(), 1024u);
  EXPECT_EQ(AudioFifo(2, 1024, kRate).capacity_frames(), 1024u);
  EXPECT_EQ(AudioFifo(0, 8, kRate).channels(), 1u);
  EXPECT_DOUBLE_EQ(AudioFifo(1, 48'000, kRate).capacity_seconds(), 65'536.0 / 48'000.0);
}

TEST(AudioFifo, PushPopKeepsOrderAndChannels) {
  AudioFifo fifo(2, 16, kRate);
  const std::vector<float> in = {0.1f, -0.1f, 0.2f, -0.2f, 0.3f, -0.3f};
  EXPECT_EQ(fifo.write(in), 3u);
  EXPECT_EQ(fifo.buffered_frames(), 3u);
  std::vector<float> out(4, 9.0f);
  EXPECT_EQ(fifo.read(out), 2u);
  EXPECT_EQ(out, std::vector<float>({0.1f, -0.1f, 0.2f, -0.2f}));
  EXPECT_EQ(fifo.read(std::span<float>(out).first(2)), 1u);
  EXPECT_EQ(out[0], 0.3f);
  EXPECT_EQ(out[1], -0.3f);
  EXPECT_EQ(fifo.buffered_frames(), 0u);
  const auto s = fifo.stats();
  EXPECT_EQ(s.frames_written, 3u);
  EXPECT_EQ(s.frames_read, 3u);
  EXPECT_EQ(s.underrun_events, 0u);
}

TEST(AudioFifo, WrapsAroundManyTimes) {
  AudioFifo fifo(3, 8, kRate);
  float next_in = 0, next_out = 0;
  std::mt19937 rng(1);
  std::uniform_int_distribution<std::size_t> n(1, 8);
  for (int round = 0; round < 5000; ++round) {
    const std::size_t w = std::min(n(rng), fifo.free_frames());
    const auto in = ramp(w * 3, next_in);
    ASSERT_EQ(fifo.write(in), w);
    next_in += static_cast<float>(w * 3);
    std::vector<float> out(std::min(n(rng), fifo.buffered_frames()) * 3);
    const std::size_t got = fifo.read(out);
    ASSERT_EQ(got * 3, out.size());
    for (float v : out) ASSERT_EQ(v, next_out++);
  }
  EXPECT_EQ(fifo.stats().underrun_events, 0u);
  EXPECT_EQ(fifo.stats().overflow_frames, 0u);
}

TEST(AudioFifo, ExactlyFullAndExactlyEmpty) {
  AudioFifo fifo(1, 8, kRate);
  EXPECT_EQ(fifo.buffered_frames(), 0u);
  EXPECT_EQ(fifo.free_frames(), 8u);
  EXPECT_EQ(fifo.write(ramp(8)), 8u);  // exactly full: all of it fits
  EXPECT_EQ(fifo.free_frames(), 0u);
  EXPECT_EQ(fifo.stats().overflow_frames, 0u);
  const std::vector<float> one = {99.0f};
  EXPECT_EQ(fifo.write(one), 0u);  // full: nothing more
  EXPECT_EQ(fifo.stats().overflow_frames, 1u);
  std::vector<float> out(8);
  EXPECT_EQ(fifo.read(out), 8u);  // exactly empty: no underrun
  EXPECT_EQ(out, ramp(8));
  EXPECT_EQ(fifo.stats().underrun_events, 0u);
  EXPECT_EQ(fifo.buffered_frames(), 0u);
  EXPECT_EQ(fifo.read(out), 0u);  // empty: all silence
  for (float v : out) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(fifo.stats().underrun_events, 1u);
  EXPECT_EQ(fifo.stats().silent_frames, 8u);
  // Empty spans are no-ops, not underruns.
  EXPECT_EQ(fifo.read(std::span<float>()), 0u);
  EXPECT_EQ(fifo.write(std::span<const float>()), 0u);
  EXPECT_EQ(fifo.stats().underrun_events, 1u);
}

TEST(AudioFifo, OverfillDropNewestKeepsWhatFits) {
  AudioFifo fifo(2, 8, kRate);
  EXPECT_EQ(fifo.write(ramp(2 * 5)), 5u);
  EXPECT_EQ(fifo.write(ramp(2 * 6, 10.0f)), 3u);  // 3 of 6 fit
  const auto s = fifo.stats();
  EXPECT_EQ(s.frames_written, 8u);
  EXPECT_EQ(s.overflow_frames, 3u);
  std::vector<float> out(16);
  EXPECT_EQ(fifo.read(out), 8u);
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 10), ramp(10));
  EXPECT_EQ(std::vector<float>(out.begin() + 10, out.end()), ramp(6, 10.0f));
}

TEST(AudioFifo, OverfillDropOldestKeepsTheNewest) {
  AudioFifo fifo(1, 8, kRate, OverflowPolicy::kDropOldest);
  EXPECT_EQ(fifo.write(ramp(5)), 5u);          // 0..4
  EXPECT_EQ(fifo.write(ramp(6, 100.0f)), 6u);  // evicts 0, 1, 2
  EXPECT_EQ(fifo.buffered_frames(), 8u);
  EXPECT_EQ(fifo.stats().overflow_frames, 3u);
  std::vector<float> out(8);
  EXPECT_EQ(fifo.read(out), 8u);
  EXPECT_EQ(out, std::vector<float>({3, 4, 100, 101, 102, 103, 104, 105}));
  // A write bigger than the whole FIFO keeps its last 8 frames.
  EXPECT_EQ(fifo.write(ramp(3, 50.0f)), 3u);
  EXPECT_EQ(fifo.write(ramp(20, 200.0f)), 8u);
  EXPECT_EQ(fifo.stats().overflow_frames, 3u + 12u + 3u);
  EXPECT_EQ(fifo.read(out), 8u);
  EXPECT_EQ(out, ramp(8, 212.0f));
}

TEST(AudioFifo, UnderrunPadsWithSilenceAndCounts) {
  AudioFifo fifo(2, 64, kRate);
  EXPECT_EQ(fifo.write(ramp(6, 1.0f)), 3u);
  std::vector<float> out(10, 7.0f);
  EXPECT_EQ(fifo.read(out), 3u);
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 6), ramp(6, 1.0f));
  for (std::size_t i = 6; i < out.size(); ++i) EXPECT_EQ(out[i], 0.0f);
  auto s = fifo.stats();
  EXPECT_EQ(s.underrun_events, 1u);
  EXPECT_EQ(s.silent_frames, 2u);
  EXPECT_EQ(s.frames_read, 3u);
  std::fill(out.begin(), out.end(), 7.0f);
  EXPECT_EQ(fifo.read(out), 0u);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  s = fifo.stats();
  EXPECT_EQ(s.underrun_events, 2u);
  EXPECT_EQ(s.silent_frames, 7u);
}

TEST(AudioFifo, PartialFramesAreIgnoredOnWriteAndZeroedOnRead) {
  AudioFifo fifo(2, 8, kRate);
  EXPECT_EQ(fifo.write(ramp(5, 1.0f)), 2u);  // the fifth sample is half a frame
  std::vector<float> out(5, 9.0f);
  EXPECT_EQ(fifo.read(out), 2u);
  EXPECT_EQ(out, std::vector<float>({1, 2, 3, 4, 0}));
  EXPECT_EQ(fifo.stats().underrun_events, 0u);
}

TEST(AudioFifo, Int16InputConvertsBy32768) {
  AudioFifo fifo(1, 8, kRate);
  const std::vector<std::int16_t> in = {-32768, -16384, -1, 0, 1, 16384, 32767};
  EXPECT_EQ(fifo.write_i16(in), 7u);
  std::vector<float> out(7);
  EXPECT_EQ(fifo.read(out), 7u);
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[1], -0.5f);
  EXPECT_EQ(out[2], -1.0f / 32768.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_EQ(out[5], 0.5f);
  EXPECT_EQ(out[6], 32767.0f / 32768.0f);
}

TEST(AudioFifo, Int16OutputSaturatesAndRoundsToNearest) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<float, std::int16_t>> cases = {
      {0.0f, 0},
      {1.0f, 32767},  // [-1, 1) maps onto the int16 range; 1.0 saturates
      {2.0f, 32767},
      {kInf, 32767},
      {-1.0f, -32768},
      {-1.5f, -32768},
      {-kInf, -32768},
      {std::nanf(""), 0},
      {0.5f, 16384},
      {-0.5f, -16384},
      {0.4f / 32768.0f, 0},
      {0.6f / 32768.0f, 1},
      {-0.6f / 32768.0f, -1},
      {1.5f / 32768.0f, 2},  // ties to even
      {2.5f / 32768.0f, 2},
      {32766.6f / 32768.0f, 32767},
      {-32767.6f / 32768.0f, -32768},
  };
  for (const auto& [x, want] : cases) EXPECT_EQ(AudioFifo::float_to_i16(x), want) << x;

  AudioFifo fifo(1, 32, kRate);
  std::vector<float> in;
  for (const auto& c : cases) in.push_back(c.first);
  ASSERT_EQ(fifo.write(in), cases.size());
  std::vector<std::int16_t> out(cases.size() + 2, 123);
  EXPECT_EQ(fifo.read_i16(out), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(out[i], cases[i].second) << i;
  EXPECT_EQ(out[cases.size()], 0);  // padding is int16 silence
  EXPECT_EQ(fifo.stats().underrun_events, 1u);
}

TEST(AudioFifo, Int16RoundTripIsExactForEveryValue) {
  AudioFifo fifo(1, 65'536, kRate);
  std::vector<std::int16_t> in;
  for (int v = -32768; v <= 32767; ++v) in.push_back(static_cast<std::int16_t>(v));
  ASSERT_EQ(fifo.write_i16(in), in.size());
  std::vector<std::int16_t> out(in.size());
  ASSERT_EQ(fifo.read_i16(out), in.size());
  EXPECT_EQ(out, in);
}

TEST(AudioFifo, BufferedSeconds) {
  AudioFifo fifo(2, 48'000, kRate);
  EXPECT_EQ(fifo.buffered_seconds(), 0.0);
  fifo.write(std::vector<float>(2 * 4'800, 0.0f));
  EXPECT_DOUBLE_EQ(fifo.buffered_seconds(), 0.1);
  std::vector<float> out(2 * 2'400);
  fifo.read(out);
  EXPECT_DOUBLE_EQ(fifo.buffered_seconds(), 0.05);
}

TEST(AudioFifo, ConcurrentWriterAndReaderMoveTenMillionSamplesIntact) {
  // Stereo: 5 M frames = 10 M samples, a counter that floats hold exactly
  // (< 2^24). Random block sizes on both sides, a small ring, so it wraps
  // and fills and empties all the time.
  constexpr std::size_t kSamples = 10'000'000;
  constexpr std::uint32_t kCh = 2;
  AudioFifo fifo(kCh, 1024, kRate);
  std::thread writer([&] {
    std::mt19937 rng(2);
    std::uniform_int_distribution<std::size_t> frames(1, 700);
    std::vector<float> block;
    std::size_t next = 0;
    while (next < kSamples) {
      const std::size_t n = std::min(frames(rng) * kCh, kSamples - next);
      block.resize(n);
      for (std::size_t i = 0; i < n; ++i) block[i] = static_cast<float>(next + i);
      std::size_t done = 0;
      while (done < n) {
        const std::size_t w = fifo.write(std::span<const float>(block).subspan(done));
        done += w * kCh;
        if (w == 0) std::this_thread::yield();
      }
      next += n;
    }
  });
  std::mt19937 rng(3);
  std::uniform_int_distribution<std::size_t> frames(1, 512);
  std::vector<float> out(512 * kCh);
  std::size_t expect = 0;
  std::size_t bad = 0;
  while (expect < kSamples) {
    const std::span<float> block = std::span<float>(out).first(frames(rng) * kCh);
    const std::size_t got = fifo.read(block) * kCh;
    for (std::size_t i = 0; i < got; ++i) {
      if (block[i] != static_cast<float>(expect + i)) ++bad;
    }
    for (std::size_t i = got; i < block.size(); ++i) {
      if (block[i] != 0.0f) ++bad;  // padding is silence
    }
    expect += got;
    if (got == 0) std::this_thread::yield();
  }
  writer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(expect, kSamples);
  const auto s = fifo.stats();
  EXPECT_EQ(s.frames_written, kSamples / kCh);
  EXPECT_EQ(s.frames_read, kSamples / kCh);
  // (overflow_frames counts what a full ring turned away; this writer offers
  // those frames again, so they are not lost.)
  EXPECT_EQ(fifo.buffered_frames(), 0u);
}

TEST(AudioFifo, ConcurrentDropOldestNeverDuplicatesOrReorders) {
  // The writer floods without waiting, so evictions race the reader's claims;
  // what the reader gets must be an increasing subsequence, and every frame
  // offered is accounted for as read, still buffered or lost.
  constexpr std::size_t kFrames = 2'000'000;
  AudioFifo fifo(1, 256, kRate, OverflowPolicy::kDropOldest);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::mt19937 rng(4);
    std::uniform_int_distribution<std::size_t> frames(1, 300);
    std::vector<float> block;
    std::size_t next = 1;
    while (next <= kFrames) {
      const std::size_t n = std::min(frames(rng), kFrames + 1 - next);
      block.resize(n);
      for (std::size_t i = 0; i < n; ++i) block[i] = static_cast<float>(next + i);
      fifo.write(block);
      next += n;
    }
    done.store(true);
  });
  std::vector<float> out(128);
  float last = 0.0f;
  std::size_t bad = 0, real = 0;
  auto drain_once = [&] {
    const std::size_t got = fifo.read(out);
    for (std::size_t i = 0; i < got; ++i) {
      if (!(out[i] > last) || out[i] != std::floor(out[i]) || out[i] > kFrames) ++bad;
      last = out[i];
    }
    real += got;
    return got;
  };
  while (!done.load()) drain_once();
  while (drain_once() > 0) {
  }
  writer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(last, static_cast<float>(kFrames));  // the newest frame always survives
  const auto s = fifo.stats();
  EXPECT_EQ(s.frames_read, real);
  EXPECT_EQ(s.frames_read + fifo.buffered_frames() + s.overflow_frames, kFrames);
}

TEST(AudioFifo, WriteLockedSerialisesSeveralWriters) {
  // Stereo frames (writer id, sequence number): per writer, the reader must
  // see 0, 1, 2, ... with nothing lost, doubled or reordered.
  constexpr int kWriters = 4;
  constexpr std::size_t kPerWriter = 200'000;
  AudioFifo fifo(2, 512, kRate);
  std::vector<std::thread> writers;
  for (int id = 0; id < kWriters; ++id) {
    writers.emplace_back([&fifo, id] {
      std::mt19937 rng(static_cast<unsigned>(10 + id));
      std::uniform_int_distribution<std::size_t> frames(1, 64);
      std::vector<float> block;
      std::size_t next = 0;
      while (next < kPerWriter) {
        const std::size_t n = std::min(frames(rng), kPerWriter - next);
        block.resize(2 * n);
        for (std::size_t i = 0; i < n; ++i) {
          block[2 * i] = static_cast<float>(id);
          block[2 * i + 1] = static_cast<float>(next + i);
        }
        std::size_t done = 0;
        while (done < n) {
          const std::size_t w = fifo.write_locked(std::span<const float>(block).subspan(2 * done));
          done += w;
          if (w == 0) std::this_thread::yield();
        }
        next += n;
      }
    });
  }
  std::vector<std::size_t> seen(kWriters, 0);
  std::size_t total = 0, bad = 0;
  std::vector<float> out(2 * 256);
  while (total < kWriters * kPerWriter) {
    const std::size_t got = fifo.read(out);
    for (std::size_t i = 0; i < got; ++i) {
      const int id = static_cast<int>(out[2 * i]);
      if (id < 0 || id >= kWriters || out[2 * i + 1] != static_cast<float>(seen[id])) {
        ++bad;
        continue;
      }
      ++seen[id];
    }
    total += got;
    if (got == 0) std::this_thread::yield();
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(bad, 0u);
  for (int id = 0; id < kWriters; ++id) EXPECT_EQ(seen[id], kPerWriter) << id;
  EXPECT_EQ(fifo.stats().frames_written, kWriters * kPerWriter);
}

TEST(AudioFifo, ReadWaitReturnsWhenEnoughFramesArrive) {
  AudioFifo fifo(1, 1024, kRate);
  std::thread writer([&] {
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      fifo.write(ramp(48, static_cast<float>(48 * i)));
    }
  });
  std::vector<float> out(480);
  // A generous timeout: the test checks the result, not the timing.
  EXPECT_EQ(fifo.read_wait(out, 30'000'000'000), 480u);
  writer.join();
  EXPECT_EQ(out, ramp(480));
  EXPECT_EQ(fifo.stats().underrun_events, 0u);
}

TEST(AudioFifo, ReadWaitTimesOutWithWhatThereIs) {
  AudioFifo fifo(1, 64, kRate);
  fifo.write(ramp(10, 1.0f));
  std::vector<float> out(32, 5.0f);
  const Nanos t0 = monotonic_ns();
  EXPECT_EQ(fifo.read_wait(out, 3'000'000), 10u);
  EXPECT_GE(monotonic_ns() - t0, 3'000'000);  // it did wait the timeout out
  EXPECT_EQ(out[9], 10.0f);
  EXPECT_EQ(out[10], 0.0f);
  EXPECT_EQ(fifo.stats().underrun_events, 1u);
  // Asking for more than the FIFO can hold waits only until it is full.
  std::thread writer([&] { fifo.write(ramp(64)); });
  std::vector<float> big(200);
  EXPECT_EQ(fifo.read_wait(big, 30'000'000'000), 64u);
  writer.join();
}

}  // namespace
}  // namespace jamnet::engine
