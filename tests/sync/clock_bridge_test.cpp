#include "jamnet/sync/clock_bridge.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

namespace jamnet::sync {
namespace {

constexpr Nanos kMs = 1'000'000;
constexpr Nanos kSec = 1'000'000'000;

// A TestClock read at a virtual monotonic time the test sets.
class VirtualClock final : public ClockSource {
 public:
  VirtualClock(Nanos offset, double skew_ppm, const std::atomic<Nanos>& mono)
      : tc_(offset, skew_ppm, 0), mono_(mono) {}
  ClockKind kind() const noexcept override { return ClockKind::kTest; }
  Nanos now_ns() const noexcept override { return tc_.from_monotonic(mono_.load()); }
  Nanos from_monotonic(Nanos m) const noexcept override { return tc_.from_monotonic(m); }
  Nanos to_monotonic(Nanos t) const noexcept override { return tc_.to_monotonic(t); }
  double skew_ppm() const { return tc_.skew_ppm(); }

 private:
  TestClock tc_;
  const std::atomic<Nanos>& mono_;
};

double true_drift_ppm(const VirtualClock& a, const VirtualClock& b) {
  return ((1.0 + b.skew_ppm() * 1e-6) / (1.0 + a.skew_ppm() * 1e-6) - 1.0) * 1e6;
}

// The bridge's a time of b time `b` (truth).
Nanos truth_b_of_a(const VirtualClock& a, const VirtualClock& b, Nanos at) {
  return b.from_monotonic(a.to_monotonic(at));
}

struct Rig {
  std::atomic<Nanos> mono{100 * kSec};
  VirtualClock a{1'500'000'000, 10.0, mono};   // "GPU"
  VirtualClock b{-2'000'000'000, 50.0, mono};  // "CPU"
  // add_pair at the current virtual time, b read with noise of +-noise_ns.
  void feed(ClockBridge& br, int n, Nanos step, Nanos noise_ns, std::mt19937& rng) {
    std::uniform_int_distribution<Nanos> jitter(-noise_ns, noise_ns);
    for (int i = 0; i < n; ++i) {
      const Nanos m = mono.load();
      br.add_pair(a.from_monotonic(m), b.from_monotonic(m) + (noise_ns ? jitter(rng) : 0),
                  2 * noise_ns + 100);
      mono = m + step;
    }
  }
};

TEST(ClockBridge, ModeNames) {
  EXPECT_EQ(to_string(ClockMasterMode::kGpu), "gpu");
  EXPECT_EQ(to_string(ClockMasterMode::kCpu), "cpu");
  EXPECT_EQ(to_string(ClockMasterMode::kHybrid), "hybrid");
}

TEST(ClockBridge, IdentityBeforeAnyPair) {
  Rig r;
  ClockBridge br(r.a, r.b);
  EXPECT_EQ(br.a_to_b(12345), 12345);
  EXPECT_EQ(br.b_to_a(12345), 12345);
  EXPECT_FALSE(br.locked());
  EXPECT_EQ(br.sync_quality(), 0.0);
  EXPECT_EQ(br.current_offset_us(), 0.0);
}

TEST(ClockBridge, EstimatesOffsetAndDrift) {
  Rig r;
  std::mt19937 rng(7);
  ClockBridge br(r.a, r.b);
  r.feed(br, 100, 50 * kMs, 300, rng);
  EXPECT_TRUE(br.locked());
  EXPECT_GE(br.sync_quality(), 0.5);
  EXPECT_LE(br.sync_quality(), 1.0);
  EXPECT_NEAR(br.current_drift_ppm(), true_drift_ppm(r.a, r.b), 0.1);
  const Nanos now_a = r.a.now_ns();
  const Nanos last_a = r.a.from_monotonic(r.mono.load() - 50 * kMs);  // the latest pair
  const double true_off = static_cast<double>(truth_b_of_a(r.a, r.b, last_a) - last_a);
  EXPECT_NEAR(br.current_offset_us() * 1000.0, true_off, 1000.0);
  for (Nanos d = -3 * kSec; d <= kSec; d += 10 * kMs) {
    const Nanos at = now_a + d;
    const Nanos bt = truth_b_of_a(r.a, r.b, at);
    ASSERT_LT(std::abs(br.a_to_b(at) - bt), 1000) << d;
    ASSERT_LT(std::abs(br.b_to_a(bt) - at), 1000) << d;
    ASSERT_LE(std::abs(br.b_to_a(br.a_to_b(at)) - at), 1);
    EXPECT_EQ(br.gpu_time_to_cpu(at), br.a_to_b(at));
    EXPECT_EQ(br.cpu_time_to_gpu(bt), br.b_to_a(bt));
  }
}

TEST(ClockBridge, SampleReadsBothClocks) {
  Rig r;
  ClockBridge br(r.a, r.b);
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(br.sample());  // virtual clocks: a zero-width bracket
    r.mono = r.mono.load() + 50 * kMs;
  }
  EXPECT_TRUE(br.locked());
  const Nanos at = r.a.now_ns();
  EXPECT_LE(std::abs(br.a_to_b(at) - truth_b_of_a(r.a, r.b, at)), 2);
  EXPECT_NEAR(br.current_drift_ppm(), true_drift_ppm(r.a, r.b), 0.01);
}

TEST(ClockBridge, SampleWithRealClocks) {
  const TestClock a(kSec, 0.0);
  const MonotonicClock b;
  ClockBridge br(a, b);
  int ok = 0;
  for (int i = 0; i < 50; ++i) {
    ok += br.sample() ? 1 : 0;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  ASSERT_GT(ok, 0);
  const Nanos at = a.now_ns();
  EXPECT_LT(std::abs(br.a_to_b(at) - (at - kSec)), 100'000);
}

// b reads 100 µs later on every read: the b-a-b bracket is too wide.
class SteppingClock final : public ClockSource {
 public:
  ClockKind kind() const noexcept override { return ClockKind::kTest; }
  Nanos now_ns() const noexcept override { return t_.fetch_add(100'000); }
  Nanos from_monotonic(Nanos m) const noexcept override { return m; }
  Nanos to_monotonic(Nanos t) const noexcept override { return t; }

 private:
  mutable std::atomic<Nanos> t_{0};
};

TEST(ClockBridge, DropsWideBrackets) {
  Rig r;
  SteppingClock b;
  ClockBridge br(r.a, b);
  EXPECT_FALSE(br.sample());
  EXPECT_EQ(br.current_offset_us(), 0.0);
  EXPECT_EQ(br.a_to_b(5), 5);  // still no pair

  // add_pair drops them too.
  std::mt19937 rng(1);
  ClockBridge br2(r.a, r.b);
  r.feed(br2, 20, 50 * kMs, 0, rng);
  const double off = br2.current_offset_us();
  const double drift = br2.current_drift_ppm();
  const Nanos m = r.mono.load();
  br2.add_pair(r.a.from_monotonic(m), r.b.from_monotonic(m) + kMs, 100'000);  // 1 ms off, wide
  EXPECT_EQ(br2.current_offset_us(), off);
  EXPECT_EQ(br2.current_drift_ppm(), drift);
  br2.add_pair(r.a.from_monotonic(m), r.b.from_monotonic(m) + kMs, 1'000);  // 1 ms off, narrow
  EXPECT_NE(br2.current_offset_us(), off);
}

TEST(ClockBridge, ModesDefineTheTimeline) {
  std::mt19937 rng(3);
  for (const ClockMasterMode mode :
       {ClockMasterMode::kGpu, ClockMasterMode::kCpu, ClockMasterMode::kHybrid}) {
    Rig r;
    ClockBridgeConfig cfg;
    cfg.master = mode;
    ClockBridge br(r.a, r.b, cfg);
    r.feed(br, 64, 50 * kMs, 0, rng);
    EXPECT_EQ(br.clock_master(), mode);
    const Nanos now_a = r.a.now_ns();
    for (Nanos d = 0; d < kSec; d += 50 * kMs) {
      const Nanos at = now_a + d;
      const Nanos bt = br.a_to_b(at);
      const Nanos t = br.timeline_from_a(at);
      switch (mode) {
        case ClockMasterMode::kGpu:
          EXPECT_EQ(t, at);
          break;
        case ClockMasterMode::kCpu:
          EXPECT_LE(std::abs(t - bt), 2);
          break;
        case ClockMasterMode::kHybrid:
          EXPECT_LE(std::abs(t - (at + (bt - at) / 2)), 2);
          break;
      }
      EXPECT_LE(std::abs(br.timeline_from_b(bt) - t), 2);
    }
  }
}

// Switching modes moves the timeline by ~3.5 s; it is slewed in at 500 ppm,
// so reads 1 ms apart never jump by more than 0.5 µs beyond the target's own
// rate, and the timeline arrives at the new mode's definition.
TEST(ClockBridge, ModeSwitchIsSlewed) {
  Rig r;
  // b - a is about 2 ms (at the rig's 100 s), so that the slew finishes
  // within the test, and drifts by 40 ppm.
  VirtualClock a(0, 10.0, r.mono);
  VirtualClock b(-2 * kMs, 50.0, r.mono);
  ClockBridge br(a, b);
  for (int i = 0; i < 64; ++i) {
    const Nanos m = r.mono.load();
    br.add_pair(a.from_monotonic(m), b.from_monotonic(m), 100);
    r.mono = m + 50 * kMs;
  }
  const auto check_run = [&](Nanos from_a, Nanos span, double target_share) {
    Nanos prev = br.timeline_from_a(from_a);
    double max_dev = 0;
    for (Nanos at = from_a + kMs; at <= from_a + span; at += kMs) {
      const Nanos t = br.timeline_from_a(at);
      // the target's rate over 1 ms: 1 + share * drift
      const double expect = 1e6 * (1.0 + target_share * br.current_drift_ppm() * 1e-6);
      max_dev = std::max(max_dev, std::abs(static_cast<double>(t - prev) - expect));
      prev = t;
    }
    return max_dev;
  };
  const Nanos now_a = a.now_ns();
  const Nanos before = br.timeline_from_a(now_a);
  ASSERT_EQ(before, now_a);
  br.set_clock_master(ClockMasterMode::kCpu);
  EXPECT_EQ(br.clock_master(), ClockMasterMode::kCpu);
  EXPECT_LE(std::abs(br.timeline_from_a(now_a) - before), 1);  // no jump at the switch
  EXPECT_LE(check_run(now_a, 6 * kSec, 1.0), 501.0);           // <= 500 ppm of 1 ms, + rounding
  const Nanos later = now_a + 6 * kSec;                        // 2 ms at 500 ppm takes 4 s
  EXPECT_LE(std::abs(br.timeline_from_a(later) - br.a_to_b(later)), 1);

  // Hybrid from there: halfway.
  r.mono = a.to_monotonic(later);
  const Nanos now2 = a.now_ns();
  ASSERT_EQ(now2, later);
  const Nanos t2 = br.timeline_from_a(now2);
  br.set_clock_master(ClockMasterMode::kHybrid);
  EXPECT_LE(std::abs(br.timeline_from_a(now2) - t2), 1);
  EXPECT_LE(check_run(now2, 4 * kSec, 0.5), 501.0);
  const Nanos later2 = now2 + 4 * kSec;
  const Nanos b2 = br.a_to_b(later2);
  EXPECT_LE(std::abs(br.timeline_from_a(later2) - (later2 + (b2 - later2) / 2)), 1);
}

TEST(ClockBridge, FitChangesAreSlewedToo) {
  Rig r;
  ClockBridgeConfig cfg;
  cfg.master = ClockMasterMode::kCpu;
  ClockBridge br(r.a, r.b, cfg);
  std::mt19937 rng(9);
  r.feed(br, 64, 50 * kMs, 0, rng);
  // The b clock is suddenly read 200 µs later (a new fit) while we read the
  // timeline every ms.
  Nanos prev_a = r.a.now_ns();
  Nanos prev_t = br.timeline_from_a(prev_a);
  double max_dev = 0;
  for (int i = 0; i < 3000; ++i) {
    r.mono = r.mono.load() + kMs;
    if (i % 50 == 0) {
      const Nanos m = r.mono.load();
      br.add_pair(r.a.from_monotonic(m), r.b.from_monotonic(m) + (i >= 500 ? 200'000 : 0), 100);
    }
    const Nanos at = r.a.now_ns();
    const Nanos t = br.timeline_from_a(at);
    const double expect =
        static_cast<double>(at - prev_a) * (1.0 + true_drift_ppm(r.a, r.b) * 1e-6);
    max_dev = std::max(max_dev, std::abs(static_cast<double>(t - prev_t) - expect));
    prev_a = at;
    prev_t = t;
  }
  EXPECT_LT(max_dev, 1000.0);  // no jump > 1 µs between reads 1 ms apart
}

TEST(ClockBridge, CallbacksFire) {
  Rig r;
  VirtualClock b(0, 90.0, r.mono);  // 80 ppm against a: above the 50 ppm alert
  ClockBridge br(r.a, b);
  std::vector<bool> states;
  std::vector<double> drifts;
  br.on_sync_state_changed([&](bool locked) { states.push_back(locked); });
  br.on_clock_drift_detected([&](double ppm) { drifts.push_back(ppm); });
  for (int i = 0; i < 64; ++i) {
    const Nanos m = r.mono.load();
    br.add_pair(r.a.from_monotonic(m), b.from_monotonic(m), 100);
    r.mono = m + 50 * kMs;
  }
  ASSERT_EQ(states.size(), 1u);
  EXPECT_TRUE(states[0]);
  ASSERT_EQ(drifts.size(), 1u);  // once, not on every pair
  EXPECT_NEAR(drifts[0], true_drift_ppm(r.a, b), 0.1);

  // Garbage pairs: the residual grows, the bridge unlocks.
  std::mt19937 rng(2);
  std::uniform_int_distribution<Nanos> junk(-40'000, 40'000);
  for (int i = 0; i < 64; ++i) {
    const Nanos m = r.mono.load();
    br.add_pair(r.a.from_monotonic(m), b.from_monotonic(m) + junk(rng), 100);
    r.mono = m + 50 * kMs;
  }
  EXPECT_FALSE(br.locked());
  ASSERT_GE(states.size(), 2u);
  EXPECT_FALSE(states.back());
}

TEST(ClockBridge, DriftCorrectionOff) {
  Rig r;
  ClockBridgeConfig cfg;
  cfg.drift_correction = false;
  ClockBridge br(r.a, r.b, cfg);
  std::mt19937 rng(4);
  r.feed(br, 20, 50 * kMs, 0, rng);
  EXPECT_EQ(br.current_drift_ppm(), 0.0);
  const Nanos at = r.a.now_ns();
  // offset only: a_to_b moves 1:1 with a
  EXPECT_EQ(br.a_to_b(at + kSec) - br.a_to_b(at), kSec);
  br.enable_drift_correction(true);
  EXPECT_NEAR(br.current_drift_ppm(), true_drift_ppm(r.a, r.b), 0.01);
  br.enable_drift_correction(false);
  EXPECT_EQ(br.current_drift_ppm(), 0.0);
}

TEST(ClockBridge, SyncIntervalIsClamped) {
  Rig r;
  ClockBridgeConfig cfg;
  cfg.sync_interval_ms = 0;
  ClockBridge br(r.a, r.b, cfg);
  EXPECT_EQ(br.sync_interval_ms(), 1.0);
  br.set_sync_interval_ms(20);
  EXPECT_EQ(br.sync_interval_ms(), 20.0);
  br.set_sync_interval_ms(5000);
  EXPECT_EQ(br.sync_interval_ms(), 1000.0);
  br.set_sync_interval_ms(0.25);
  EXPECT_EQ(br.sync_interval_ms(), 1.0);
}

TEST(ClockBridge, ConcurrentReadersAndSampler) {
  // A reader maps a's time onto b's while the sampler refits (and switches
  // mode): every mapping must land between the b readings around it, a
  // torn read of the fit would not. TSan (make tsan) watches the same run.
  const TestClock a(kSec, 20.0);
  const MonotonicClock b;
  GPUCPUSyncBridge br(a, b);
  for (int i = 0; i < 20; ++i) br.sample();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, off{0}, bad_quality{0};
  std::atomic<Nanos> worst{0};
  std::thread reader([&] {
    while (!stop.load()) {
      const Nanos b0 = b.now_ns();
      const Nanos at = a.now_ns();
      const Nanos mapped = br.a_to_b(at);
      const Nanos b1 = b.now_ns();
      (void)br.timeline_from_a(at);
      const double q = br.sync_quality();
      const Nanos err = mapped < b0 ? b0 - mapped : (mapped > b1 ? mapped - b1 : 0);
      if (err > worst.load()) worst = err;
      if (err > 2 * kMs) off.fetch_add(1);
      if (!(q >= 0.0 && q <= 1.0)) bad_quality.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  for (int i = 0; i < 200; ++i) {
    br.sample();
    if (i == 100) br.set_clock_master(ClockMasterMode::kHybrid);
  }
  while (reads.load() < 100) std::this_thread::yield();  // the reader ran alongside
  stop = true;
  reader.join();
  EXPECT_EQ(off.load(), 0u) << "of " << reads.load() << " mappings; worst " << worst.load()
                            << " ns outside the b readings around it";
  EXPECT_EQ(bad_quality.load(), 0u);
}

}  // namespace
}  // namespace jamnet::sync
