#include "jamnet/sync/session_clock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

namespace jamnet::sync {
namespace {

constexpr Nanos kUs = 1'000;
constexpr Nanos kMs = 1'000'000;
constexpr Nanos kSec = 1'000'000'000;

// An estimate saying session = local + offset (+ drift), exact (drift_sd 0)
// unless told otherwise.
ClockEstimate est_at(Nanos ref, double offset_ns, double drift_ppm = 0, double drift_sd = 0) {
  ClockEstimate e;
  e.ref_local = ref;
  e.offset_ns = offset_ns;
  e.drift_ppm = drift_ppm;
  e.drift_sd_ppm = drift_sd;
  e.used = 100;
  e.quality = 1;
  return e;
}

TEST(SessionClock, ResetToLocalIsTheIdentity) {
  SessionClock c;
  c.reset_to_local(5 * kSec);
  EXPECT_EQ(c.session_at(5 * kSec), 5 * kSec);
  EXPECT_EQ(c.session_at(17 * kSec + 3), 17 * kSec + 3);
  EXPECT_EQ(c.local_at(17 * kSec + 3), 17 * kSec + 3);
  EXPECT_FALSE(c.locked());
  EXPECT_EQ(c.steps(), 0u);
  const SessionClockState s = c.state();
  EXPECT_EQ(s.anchor_local, 5 * kSec);
  EXPECT_EQ(s.anchor_session, 5 * kSec);
  EXPECT_EQ(s.rate, 1.0);
}

TEST(SessionClock, StepsWhenFarOffAndUnlocked) {
  SessionClock c;
  c.reset_to_local(0);
  const Nanos now = 10 * kSec;
  const double err = c.steer(now, est_at(now, 3 * kSec, 100.0));
  EXPECT_DOUBLE_EQ(err, 3.0 * kSec);
  EXPECT_EQ(c.steps(), 1u);
  EXPECT_EQ(c.steps_while_locked(), 0u);
  EXPECT_EQ(c.session_at(now), now + 3 * kSec);
  EXPECT_DOUBLE_EQ(c.state().rate, 1.0 + 100e-6);
  EXPECT_DOUBLE_EQ(c.drift_ppm(), 100.0);
  EXPECT_DOUBLE_EQ(c.last_error_ns(), 3.0 * kSec);
  // 1 s later the session has gained 100 µs on the local clock.
  EXPECT_EQ(c.session_at(now + kSec), now + 3 * kSec + kSec + 100 * kUs);
}

TEST(SessionClock, SlewsSmallErrorsContinuously) {
  SessionClock c;
  c.reset_to_local(0);
  const Nanos now = 2 * kSec;
  const Nanos before = c.session_at(now);
  c.steer(now, est_at(now, 400 * kUs, 20.0));  // 400 µs < step threshold
  EXPECT_EQ(c.steps(), 0u);
  EXPECT_EQ(c.session_at(now), before);  // no jump
  // rate = 1 + drift + error / time constant (400 µs / 2 s = 200 ppm)
  EXPECT_NEAR(c.state().rate, 1.0 + 20e-6 + 200e-6, 1e-12);
  EXPECT_DOUBLE_EQ(c.drift_ppm(), 20.0);
}

TEST(SessionClock, SlewIsClamped) {
  SessionClockConfig cfg;
  cfg.step_threshold_ns = kSec;  // never step here
  SessionClock c(cfg);
  c.reset_to_local(0);
  c.steer(kSec, est_at(kSec, 100 * kMs, -30.0));
  EXPECT_EQ(c.steps(), 0u);
  EXPECT_NEAR(c.state().rate, 1.0 - 30e-6 + 500e-6, 1e-12);
  c.steer(2 * kSec, est_at(2 * kSec, -100 * kMs, -30.0));
  EXPECT_NEAR(c.state().rate, 1.0 - 30e-6 - 500e-6, 1e-12);
}

// A remote session that runs at +50 ppm and 1.234 s ahead; exact estimates.
TEST(SessionClock, ConvergesAndLocks) {
  SessionClock c;
  c.reset_to_local(0);
  const auto remote = [](Nanos l) { return 1.234e9 + static_cast<double>(l) * (1 + 50e-6); };
  Nanos l = kSec;
  for (int i = 0; i < 200; ++i, l += 50 * kMs) {
    c.steer(l, est_at(l, remote(l) - static_cast<double>(l), 50.0));
  }
  EXPECT_TRUE(c.locked());
  EXPECT_EQ(c.steps(), 1u);
  EXPECT_NEAR(static_cast<double>(c.session_at(l)), remote(l), 100.0);
  EXPECT_NEAR(c.drift_ppm(), 50.0, 1e-9);
}

TEST(SessionClock, LockNeedsConsecutiveGoodUpdatesAndAMatureEstimate) {
  SessionClockConfig cfg;
  cfg.lock_updates = 5;
  SessionClock c(cfg);
  c.reset_to_local(0);
  Nanos l = kSec;
  // Good error but an immature estimate (drift_sd 50 ppm > 3): no lock.
  for (int i = 0; i < 20; ++i, l += 50 * kMs) c.steer(l, est_at(l, 10 * kUs, 0, 50.0));
  EXPECT_FALSE(c.locked());
  for (int i = 0; i < 4; ++i, l += 50 * kMs) c.steer(l, est_at(l, 10 * kUs, 0, 1.0));
  EXPECT_FALSE(c.locked());
  c.steer(l, est_at(l, 900 * kUs, 0, 1.0));  // one bad update restarts the count
  l += 50 * kMs;
  for (int i = 0; i < 4; ++i, l += 50 * kMs) {
    const double cur = static_cast<double>(c.session_at(l) - l);
    c.steer(l, est_at(l, cur, 0, 1.0));
  }
  EXPECT_FALSE(c.locked());
  c.steer(l, est_at(l, static_cast<double>(c.session_at(l) - l), 0, 1.0));
  EXPECT_TRUE(c.locked());
}

SessionClock& locked_clock(SessionClock& c, Nanos& l) {
  c.reset_to_local(0);
  for (int i = 0; i < 20; ++i, l += 50 * kMs) {
    c.steer(l, est_at(l, static_cast<double>(c.session_at(l) - l), 10.0, 0.5));
  }
  EXPECT_TRUE(c.locked());
  return c;
}

TEST(SessionClock, LockedNeverStepsForModerateErrors) {
  SessionClock c;
  Nanos l = kSec;
  locked_clock(c, l);
  const std::uint64_t steps = c.steps();
  const Nanos before = c.session_at(l);
  const double off = static_cast<double>(before - l) + 10.0 * kMs;  // 10 ms off: slew
  c.steer(l, est_at(l, off, 10.0, 0.5));
  EXPECT_EQ(c.steps(), steps);
  EXPECT_EQ(c.session_at(l), before);
  EXPECT_TRUE(c.locked());
  EXPECT_NEAR(c.state().rate, 1.0 + 10e-6 + 500e-6, 1e-12);
  // 60 ms off: a new timeline. Unlock, step, and count it.
  l += 50 * kMs;
  const double far = static_cast<double>(c.session_at(l) - l) + 60.0 * kMs;
  c.steer(l, est_at(l, far, 10.0, 0.5));
  EXPECT_EQ(c.steps(), steps + 1);
  EXPECT_EQ(c.steps_while_locked(), 1u);
  EXPECT_FALSE(c.locked());
  EXPECT_NEAR(static_cast<double>(c.session_at(l) - l), far, 1.0);
}

TEST(SessionClock, HoldKeepsTheDriftAndContinuity) {
  SessionClock c;
  Nanos l = kSec;
  locked_clock(c, l);
  // Leave a slew term in the rate.
  c.steer(l, est_at(l, static_cast<double>(c.session_at(l) - l) + 100 * kUs, 10.0, 0.5));
  EXPECT_GT(c.state().rate, 1.0 + 10e-6 + 1e-6);
  l += 10 * kMs;
  const Nanos before = c.session_at(l);
  c.hold(l);
  EXPECT_EQ(c.session_at(l), before);
  EXPECT_DOUBLE_EQ(c.state().rate, 1.0 + 10e-6);  // the slew term is dropped
  EXPECT_DOUBLE_EQ(c.drift_ppm(), 10.0);
  EXPECT_EQ(c.session_at(l + kSec), before + kSec + 10 * kUs);
  c.hold(l + kSec, true);
  EXPECT_EQ(c.session_at(l + kSec), before + kSec + 10 * kUs);
  EXPECT_EQ(c.state().rate, 1.0);
  EXPECT_EQ(c.drift_ppm(), 0.0);
}

// Locked, an estimate whose drift is far less certain than the one in use
// (a freshly reset estimator) barely moves the drift or the timeline.
TEST(SessionClock, LockedIgnoresImmatureEstimates) {
  SessionClock c;
  Nanos l = kSec;
  locked_clock(c, l);
  const Nanos before = c.session_at(l + kSec);
  c.steer(l, est_at(l, static_cast<double>(c.session_at(l) - l) + 300 * kUs, 900.0, 1000.0));
  EXPECT_NEAR(c.drift_ppm(), 10.0, 0.01);
  EXPECT_LT(std::abs(static_cast<double>(c.session_at(l + kSec) - before)), 1000.0);
  // A mature estimate is taken as is.
  c.steer(l + kMs,
          est_at(l + kMs, static_cast<double>(c.session_at(l + kMs) - (l + kMs)), 12.0, 0.4));
  EXPECT_DOUBLE_EQ(c.drift_ppm(), 12.0);
}

TEST(SessionClock, KeepsNsPrecisionOverHours) {
  SessionClock c;
  c.reset_to_local(0);
  c.steer(kSec, est_at(kSec, 5 * kSec, 100.0));  // step; rate 1 + 100 ppm
  // 1e13 ns (2.8 h) later: exactly 1e9 ns gained.
  EXPECT_EQ(c.session_at(kSec + 10'000 * kSec), 6 * kSec + 10'000 * kSec + kSec);
  for (Nanos d = -10'000 * kSec; d <= 10'000 * kSec; d += 777'777'777'777) {
    const Nanos s = c.session_at(kSec + d);
    EXPECT_LE(std::abs(c.local_at(s) - (kSec + d)), 1);
  }
}

// Readers on other threads see whole states. The writer re-anchors along one
// exact line (rate 1.001, anchors every 1000 local ns), so every published
// state satisfies anchor_session - S0 == (anchor_local - L0) * 1001 / 1000.
TEST(SessionClock, ReadersNeverSeeATornState) {
  SessionClock c;
  c.reset_to_local(0);
  c.steer(0, est_at(0, 0.0, 1000.0));  // unlocked, |error| 0: slew with rate 1 + 1000 ppm
  ASSERT_NEAR(c.state().rate, 1.0 + 1000e-6, 1e-15);
  const SessionClockState s0 = c.state();
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const SessionClockState s = c.state();
        const Nanos dl = s.anchor_local - s0.anchor_local;
        if (dl % 1000 != 0 || s.anchor_session - s0.anchor_session != dl / 1000 * 1001 ||
            s.rate != s0.rate) {
          bad.fetch_add(1);
        }
        if (c.session_at(5'000'000) != 5'005'000) bad.fetch_add(1);
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  Nanos l = 0;
  while (std::chrono::steady_clock::now() < until || reads.load() < 1000) {
    for (int i = 0; i < 1000; ++i) {
      l += 1000;
      c.hold(l);
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
}

}  // namespace
}  // namespace jamnet::sync
