#include "jamnet/sync/clock_source.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace jamnet::sync {
namespace {

__extension__ using i128 = __int128;

constexpr Nanos kSec = 1'000'000'000;
constexpr Nanos kHour = 3600 * kSec;

TEST(ClockSource, KindNames) {
  EXPECT_EQ(to_string(ClockKind::kMonotonic), "monotonic");
  EXPECT_EQ(to_string(ClockKind::kAudioDevice), "audio");
  EXPECT_EQ(to_string(ClockKind::kGpu), "gpu");
  EXPECT_EQ(to_string(ClockKind::kTest), "test");
}

TEST(ClockSource, MonotonicIsIdentity) {
  MonotonicClock c;
  EXPECT_EQ(c.kind(), ClockKind::kMonotonic);
  EXPECT_EQ(c.from_monotonic(123456789), 123456789);
  EXPECT_EQ(c.to_monotonic(-5), -5);
  const Nanos a = c.now_ns();
  const Nanos b = monotonic_ns();
  EXPECT_LE(a, b);
}

TEST(TestClock, ReadsOffsetPlusSkew) {
  const TestClock c(3 * kSec, 100.0, 0);
  EXPECT_EQ(c.kind(), ClockKind::kTest);
  EXPECT_EQ(c.offset_ns(), 3 * kSec);
  EXPECT_DOUBLE_EQ(c.skew_ppm(), 100.0);
  EXPECT_EQ(c.from_monotonic(0), 3 * kSec);
  EXPECT_EQ(c.from_monotonic(kSec), kSec + 3 * kSec + 100'000);  // +100 µs per second
  // Hours away keep ns precision: 1e13 ns at 100 ppm gains exactly 1e9 ns.
  EXPECT_EQ(c.from_monotonic(10'000 * kSec), 10'000 * kSec + 3 * kSec + kSec);
  EXPECT_EQ(c.from_monotonic(-10'000 * kSec), -10'000 * kSec + 3 * kSec - kSec);
  const TestClock slow(-2 * kSec, -100.0, 5 * kSec);
  EXPECT_EQ(slow.from_monotonic(5 * kSec), 3 * kSec);
  EXPECT_EQ(slow.from_monotonic(6 * kSec), 4 * kSec - 100'000);
}

TEST(TestClock, NowFollowsTheMonotonicClock) {
  const TestClock c(kHour, 50.0);
  const Nanos m0 = monotonic_ns();
  const Nanos t = c.now_ns();
  const Nanos m1 = monotonic_ns();
  EXPECT_GE(t, c.from_monotonic(m0));
  EXPECT_LE(t, c.from_monotonic(m1));
}

// Readings at or above the monotonic rate are distinct for distinct instants,
// so to_monotonic(from_monotonic(m)) == m exactly. A slow clock (negative skew)
// has fewer readings than monotonic ns, so there the exact direction is
// from_monotonic(to_monotonic(t)) == t, and the other is within 1 ns.
TEST(TestClock, InverseRoundTripsExactly) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<Nanos> wide(-5 * kHour, 5 * kHour);
  const Nanos offsets[] = {0, 3 * kHour, -3 * kHour, 7 * kSec + 123};
  const double fast[] = {0.0, 0.001, 1.0, 37.5, 100.0, 99.999};
  const double slow[] = {-0.001, -1.0, -37.5, -100.0, -99.999};
  for (const Nanos off : offsets) {
    for (const Nanos origin : {Nanos{0}, 12345 * kSec, -kHour}) {
      for (const double skew : fast) {
        const TestClock c(off, skew, origin);
        for (int i = 0; i < 2000; ++i) {
          const Nanos m = origin + wide(rng);
          ASSERT_EQ(c.to_monotonic(c.from_monotonic(m)), m) << "skew " << skew << " m " << m;
        }
        for (Nanos m = origin - 3000; m <= origin + 3000; ++m) {
          ASSERT_EQ(c.to_monotonic(c.from_monotonic(m)), m) << "skew " << skew << " m " << m;
        }
      }
      for (const double skew : slow) {
        const TestClock c(off, skew, origin);
        for (int i = 0; i < 2000; ++i) {
          const Nanos t = origin + off + wide(rng);
          ASSERT_EQ(c.from_monotonic(c.to_monotonic(t)), t) << "skew " << skew << " t " << t;
          const Nanos m = origin + wide(rng);
          ASSERT_LE(std::abs(c.to_monotonic(c.from_monotonic(m)) - m), 1) << "skew " << skew;
        }
      }
    }
  }
}

TEST(AudioDeviceClock, ReadsMonotonicBeforeTheFirstCycle) {
  AudioDeviceClock c(48000);
  EXPECT_EQ(c.kind(), ClockKind::kAudioDevice);
  EXPECT_EQ(c.sample_rate(), 48000u);
  EXPECT_EQ(c.from_monotonic(777), 777);
  EXPECT_EQ(c.to_monotonic(777), 777);
}

TEST(AudioDeviceClock, InterpolatesFromTheLastCycle) {
  AudioDeviceClock c(48000);
  c.on_cycle(48000, 5 * kSec);  // frame 48000 = 1 s of device time, at mono 5 s
  EXPECT_EQ(c.from_monotonic(5 * kSec), kSec);
  EXPECT_EQ(c.from_monotonic(5 * kSec + 123), kSec + 123);
  EXPECT_EQ(c.to_monotonic(kSec + 123), 5 * kSec + 123);
  c.on_cycle(48000 + 256, 5 * kSec + 5'400'000);  // the device runs a bit slow
  const Nanos t256 = c.time_of_sample(48000 + 256);
  EXPECT_EQ(c.from_monotonic(5 * kSec + 5'400'000), t256);
  EXPECT_EQ(c.to_monotonic(t256 + 1000), 5 * kSec + 5'401'000);
  // now_ns reads through the calibration.
  c.on_cycle(0, monotonic_ns());
  const Nanos now = c.now_ns();
  EXPECT_GE(now, 0);
  EXPECT_LT(now, kSec);
}

TEST(AudioDeviceClock, SampleIndexMathIsExact) {
  for (const std::uint32_t rate : {44100u, 48000u, 96000u, 22050u}) {
    AudioDeviceClock c(rate);
    // time_of_sample rounds down, sample_at_or_after rounds up.
    EXPECT_EQ(c.time_of_sample(0), 0);
    EXPECT_EQ(c.sample_at_or_after(0), 0);
    EXPECT_EQ(c.sample_at_or_after(1), 1);
    EXPECT_EQ(c.time_of_sample(rate), kSec);
    EXPECT_EQ(c.sample_at_or_after(kSec), static_cast<std::int64_t>(rate));
    EXPECT_EQ(c.sample_at_or_after(kSec + 1), static_cast<std::int64_t>(rate) + 1);
    std::mt19937_64 rng(rate);
    std::uniform_int_distribution<std::int64_t> samples(
        -static_cast<std::int64_t>(rate) * 3600 * 24, static_cast<std::int64_t>(rate) * 3600 * 24);
    for (int i = 0; i < 20000; ++i) {
      const std::int64_t s = samples(rng);
      const Nanos t = c.time_of_sample(s);
      // floor(s * 1e9 / rate), checked with 128-bit arithmetic
      const i128 exact = static_cast<i128>(s) * kSec;
      EXPECT_LE(static_cast<i128>(t) * rate, exact);
      EXPECT_GT(static_cast<i128>(t + 1) * rate, exact);
      EXPECT_EQ(c.sample_at_or_after(t), s) << rate << " " << s;
      // The first sample at or after any time.
      const Nanos q = t + static_cast<Nanos>(rng() % 30000);
      const std::int64_t f = c.sample_at_or_after(q);
      EXPECT_GE(c.time_of_sample(f) + 1, q);  // its time (rounded down) is not before q - 1ns
      EXPECT_LT(static_cast<i128>(f - 1) * kSec, static_cast<i128>(q) * rate);
      EXPECT_GE(static_cast<i128>(f) * kSec, static_cast<i128>(q) * rate);
    }
  }
}

// Readers on other threads never see a frame from one cycle with the
// monotonic time of another. Cycle k publishes frame k * rate (k seconds of
// device time) at mono 7k, so from_monotonic(X) = X + k * (1e9 - 7): a torn
// pair would not be of that form.
TEST(AudioDeviceClock, ReadersNeverSeeATornCycle) {
  AudioDeviceClock c(48000);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  constexpr Nanos kX = 1'000'000;
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      Nanos last_k = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const Nanos v = c.from_monotonic(kX) - kX;
        if (v % (kSec - 7) != 0 || v / (kSec - 7) < last_k) bad.fetch_add(1);
        last_k = v / (kSec - 7);
        const Nanos t = c.to_monotonic(kX);  // = 7k + X - k * 1e9
        if ((kX - t) % (kSec - 7) != 0) bad.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  std::uint64_t k = 1;
  while (std::chrono::steady_clock::now() < until || reads.load() < 1000) {
    for (int i = 0; i < 1000; ++i, ++k) c.on_cycle(k * 48000, static_cast<Nanos>(7 * k));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
}

// A fake GPU counter: gpu_ns(m) = (m + offset) * (1 + skew), read as ticks of
// `period` ns (rounded down), with an optional deviation.
struct FakeGpu {
  Nanos mono = 0;
  Nanos offset = 0;
  double skew_ppm = 0;
  double period = 1.0;
  Nanos deviation = 20;
  long double true_ns(Nanos m) const {
    return static_cast<long double>(m + offset) *
           (1.0L + static_cast<long double>(skew_ppm) / 1e6L);
  }
  CalibratedPair read() const {
    return CalibratedPair{static_cast<std::uint64_t>(std::floor(true_ns(mono) / period)), mono,
                          deviation};
  }
};

TEST(GpuClock, ReadsMonotonicUntilCalibrated) {
  GpuClock c([]() -> std::optional<CalibratedPair> { return std::nullopt; }, 1.0);
  EXPECT_EQ(c.kind(), ClockKind::kGpu);
  EXPECT_FALSE(c.calibrate());
  EXPECT_EQ(c.from_monotonic(42), 42);
  EXPECT_EQ(c.to_monotonic(42), 42);
  GpuClock none(nullptr, 1.0);
  EXPECT_FALSE(none.calibrate());
}

TEST(GpuClock, TicksToNs) {
  GpuClock c([] { return std::optional<CalibratedPair>{}; }, 52.08);
  EXPECT_EQ(c.ticks_to_ns(0), 0);
  EXPECT_EQ(c.ticks_to_ns(100), 5208);
  EXPECT_EQ(c.ticks_to_ns(1'000'000'000'000ULL), 52'080'000'000'000LL);
}

TEST(GpuClock, OnePairGivesTheOffset) {
  FakeGpu g{.mono = 10 * kSec, .offset = 123 * kSec, .skew_ppm = 0, .period = 1.0};
  GpuClock c([&] { return std::optional<CalibratedPair>(g.read()); }, g.period);
  ASSERT_TRUE(c.calibrate());
  EXPECT_EQ(c.from_monotonic(10 * kSec), 133 * kSec);
  EXPECT_EQ(c.from_monotonic(11 * kSec), 134 * kSec);
  EXPECT_EQ(c.to_monotonic(134 * kSec), 11 * kSec);
}

void check_fit(double period, double skew_ppm, Nanos offset) {
  SCOPED_TRACE(testing::Message() << "period " << period << " skew " << skew_ppm);
  FakeGpu g{.mono = 1000 * kSec, .offset = offset, .skew_ppm = skew_ppm, .period = period};
  GpuClock c([&] { return std::optional<CalibratedPair>(g.read()); }, period);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.calibrate());
    g.mono += 50'000'000;  // every 50 ms
  }
  const Nanos last = g.mono - 50'000'000;
  for (Nanos m = last - kSec; m <= last + kSec; m += 7'777'777) {
    const auto truth = static_cast<Nanos>(std::llroundl(g.true_ns(m)));
    EXPECT_NEAR(static_cast<double>(c.from_monotonic(m)), static_cast<double>(truth), 100.0);
    EXPECT_NEAR(static_cast<double>(c.to_monotonic(truth)), static_cast<double>(m), 100.0);
  }
}

TEST(GpuClock, FitsSkewAndOffset) {
  check_fit(1.0, 0.0, 0);
  check_fit(1.0, 37.0, 5 * kSec);
  check_fit(52.08, 37.0, 5 * kSec);
  check_fit(52.08, -80.0, 86'400 * kSec);  // a counter a day ahead
  check_fit(41.666666, 150.0, -999 * kSec);
}

TEST(GpuClock, DropsPairsWithAWideDeviation) {
  FakeGpu g{.mono = 10 * kSec, .offset = kSec, .skew_ppm = 25.0, .period = 52.08, .deviation = 40};
  int n = 0;
  GpuClock c(
      [&] {
        CalibratedPair p = g.read();
        if (++n % 5 == 0) {  // a preempted read: 50 µs late on the counter, and says so
          p.ticks += static_cast<std::uint64_t>(50'000 / g.period);
          p.max_deviation_ns = 50'000;
        }
        return std::optional<CalibratedPair>(p);
      },
      g.period);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(c.calibrate());
    g.mono += 50'000'000;
  }
  for (Nanos m = g.mono - kSec; m <= g.mono + kSec; m += 100'000'000) {
    EXPECT_NEAR(static_cast<double>(c.from_monotonic(m)), static_cast<double>(g.true_ns(m)), 100.0);
  }
}

// Readers see either the old or the new fit, never a mix: the counter runs at
// exactly 1 + 1/1024 of monotonic, so every fit describes the same line, but
// each has a different reference point; a torn (ref, offset) would be off by
// ~1000 ns.
TEST(GpuClock, ReadersNeverSeeATornFit) {
  Nanos mono = 1 << 30;
  GpuClock c(
      [&] {
        const auto ticks = static_cast<std::uint64_t>(mono + mono / 1024 + 777);
        return std::optional<CalibratedPair>(CalibratedPair{ticks, mono, 10});
      },
      1.0);
  ASSERT_TRUE(c.calibrate());
  mono += 1024 * 1000;
  ASSERT_TRUE(c.calibrate());
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0};
  std::thread reader([&] {
    const Nanos x = (Nanos{1} << 30) + 1024 * 500;
    const Nanos truth = x + x / 1024 + 777;
    while (!stop.load(std::memory_order_relaxed)) {
      if (std::abs(c.from_monotonic(x) - truth) > 2) bad.fetch_add(1);
    }
  });
  for (int i = 0; i < 20000; ++i) {
    mono += 1024 * 1000;
    c.calibrate();
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0u);
}

}  // namespace
}  // namespace jamnet::sync
