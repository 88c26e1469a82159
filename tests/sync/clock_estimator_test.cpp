#include "jamnet/sync/clock_estimator.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace jamnet::sync {
namespace {

constexpr Nanos kUs = 1'000;
constexpr Nanos kMs = 1'000'000;
constexpr Nanos kSec = 1'000'000'000;

// remote(local) = local + offset + drift * 1e-6 * local
struct Remote {
  Nanos offset = 0;
  double drift_ppm = 0;
  Nanos at(Nanos local) const {
    return local + offset +
           static_cast<Nanos>(std::llround(static_cast<double>(local) * drift_ppm * 1e-6));
  }
  double theta(Nanos local) const { return static_cast<double>(at(local) - local); }
};

// One exchange sent at local t1 with the given one-way delays (local ns).
SyncSample exchange(const Remote& r, Nanos t1, Nanos fwd, Nanos back, Nanos proc = 30 * kUs) {
  SyncSample s;
  s.t1 = t1;
  s.t2 = r.at(t1 + fwd);
  s.t3 = s.t2 + proc;
  s.t4 = t1 + fwd + proc + back;
  return s;
}

TEST(ClockEstimator, SampleFormulas) {
  SyncSample s{.t1 = 1000, .t2 = 5600, .t3 = 5700, .t4 = 2200};
  EXPECT_EQ(s.offset(), ((5600 - 1000) + (5700 - 2200)) / 2);
  EXPECT_EQ(s.delay(), 1200 - 100);
  EXPECT_EQ(s.local_mid(), 1600);
}

TEST(ClockEstimator, RejectsImpossibleSamples) {
  ClockEstimator est;
  EXPECT_FALSE(est.add({.t1 = 100, .t2 = 0, .t3 = 0, .t4 = 50}));      // t4 < t1
  EXPECT_FALSE(est.add({.t1 = 100, .t2 = 0, .t3 = 500, .t4 = 200}));   // negative delay
  EXPECT_FALSE(est.add({.t1 = 0, .t2 = 0, .t3 = 0, .t4 = 3 * kSec}));  // > max_delay_ns
  EXPECT_TRUE(est.add({.t1 = 100, .t2 = 150, .t3 = 160, .t4 = 200}));
  EXPECT_FALSE(est.add({.t1 = 100, .t2 = 150, .t3 = 160, .t4 = 200}));  // not after the last t1
  EXPECT_FALSE(est.add({.t1 = 99, .t2 = 150, .t3 = 160, .t4 = 300}));
  EXPECT_EQ(est.size(), 1u);
}

TEST(ClockEstimator, NeedsMinSamples) {
  ClockEstimator est;
  const Remote r{.offset = 5 * kSec, .drift_ppm = 0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(est.add(exchange(r, kSec + i * 50 * kMs, kMs, kMs)));
    EXPECT_FALSE(est.estimate().has_value());
  }
  ASSERT_TRUE(est.add(exchange(r, kSec + 3 * 50 * kMs, kMs, kMs)));
  EXPECT_TRUE(est.estimate().has_value());
  est.reset();
  EXPECT_EQ(est.size(), 0u);
  EXPECT_FALSE(est.estimate().has_value());
}

TEST(ClockEstimator, ExactWithSymmetricDelays) {
  ClockEstimator est;
  const Remote r{.offset = -7 * kSec, .drift_ppm = 123.0};
  Nanos t = 1000 * kSec;
  for (int i = 0; i < 200; ++i, t += 50 * kMs)
    ASSERT_TRUE(est.add(exchange(r, t, 800 * kUs, 800 * kUs)));
  const auto e = est.estimate();
  ASSERT_TRUE(e.has_value());
  EXPECT_NEAR(e->drift_ppm, 123.0, 0.001);
  for (Nanos l = t - 10 * kSec; l <= t + kSec; l += 100 * kMs) {
    EXPECT_NEAR(e->remote_at(l), static_cast<double>(r.at(l)), 5.0);
  }
  EXPECT_EQ(e->min_delay_ns, 1600 * kUs);
  EXPECT_LT(e->residual_ns, 5.0);
  EXPECT_GT(e->quality, 0.9);
  EXPECT_LE(e->quality, 1.0);
  EXPECT_EQ(e->ref_local, est.estimate()->ref_local);  // cached
}

// Delays that wander above a floor, independently in each direction: the
// estimate must lean on the floors, not on the average.
TEST(ClockEstimator, JitterAndAsymmetricQueuing) {
  ClockEstimator est;
  const Remote r{.offset = 3 * kSec, .drift_ppm = -60.0};
  std::mt19937 rng(11);
  std::uniform_int_distribution<Nanos> jitter(0, kMs);
  std::bernoulli_distribution congested(0.3);
  Nanos t = 50 * kSec;
  for (int i = 0; i < 1200; ++i, t += 50 * kMs) {  // 60 s at 20 Hz
    Nanos fwd = 500 * kUs + jitter(rng);
    const Nanos back = 500 * kUs + jitter(rng);
    if (congested(rng)) fwd += 5 * kMs;  // queuing on the way out only
    ASSERT_TRUE(est.add(exchange(r, t, fwd, back)));
  }
  const auto e = est.estimate();
  ASSERT_TRUE(e.has_value());
  EXPECT_NEAR(e->remote_at(t), static_cast<double>(r.at(t)), 20'000.0);
  EXPECT_NEAR(e->drift_ppm, -60.0, 0.5);
  EXPECT_LT(e->used, 1200u);
  EXPECT_GE(e->used, 200u);  // the adaptive margin keeps at least a fifth
  EXPECT_GT(e->drift_sd_ppm, 0.0);
  EXPECT_LT(e->drift_sd_ppm, 5.0);
}

TEST(ClockEstimator, DriftUncertaintyShrinksWithSpan) {
  ClockEstimator est;
  const Remote r{.offset = kSec, .drift_ppm = 20.0};
  std::mt19937 rng(5);
  std::uniform_int_distribution<Nanos> jitter(0, 400 * kUs);
  Nanos t = 10 * kSec;
  double sd_1s = 0, sd_20s = 0;
  for (int i = 0; i < 400; ++i, t += 50 * kMs) {
    ASSERT_TRUE(est.add(exchange(r, t, kMs + jitter(rng), kMs + jitter(rng))));
    if (i == 20) sd_1s = est.estimate()->drift_sd_ppm;
  }
  sd_20s = est.estimate()->drift_sd_ppm;
  EXPECT_GT(sd_1s, 10 * sd_20s);
}

TEST(ClockEstimator, WindowDropsOldSamples) {
  ClockEstimatorConfig cfg;
  cfg.window_ns = 10 * kSec;
  ClockEstimator est(cfg);
  const Remote r{.offset = kSec, .drift_ppm = 0};
  Nanos t = 0;
  for (int i = 0; i < 400; ++i, t += 100 * kMs) ASSERT_TRUE(est.add(exchange(r, t, kMs, kMs)));
  EXPECT_LE(est.size(), 101u);
  EXPECT_GE(est.size(), 100u);

  cfg.window_ns = 1000 * kSec;
  cfg.max_samples = 50;
  ClockEstimator small(cfg);
  t = 0;
  for (int i = 0; i < 400; ++i, t += 100 * kMs) ASSERT_TRUE(small.add(exchange(r, t, kMs, kMs)));
  EXPECT_EQ(small.size(), 50u);
}

// A remote clock that steps by 10 ms: while both timelines are in the window
// the samples contradict each other (no delay floor fits both); the estimate
// still exists, and once the window has passed it is the new timeline.
TEST(ClockEstimator, RecoversFromARemoteStep) {
  ClockEstimatorConfig cfg;
  cfg.window_ns = 5 * kSec;
  ClockEstimator est(cfg);
  Remote r{.offset = kSec, .drift_ppm = 10.0};
  Nanos t = 0;
  for (int i = 0; i < 220; ++i, t += 50 * kMs) {
    if (i == 100) r.offset += 10 * kMs;
    ASSERT_TRUE(est.add(exchange(r, t, kMs, kMs)));
    if (i >= 3) {
      ASSERT_TRUE(est.estimate().has_value());
    }
  }
  const auto e = est.estimate();
  EXPECT_NEAR(e->remote_at(t), static_cast<double>(r.at(t)), 100.0);
}

TEST(ClockEstimator, QualityGrowsWithSamples) {
  ClockEstimator est;
  const Remote r{.offset = 0, .drift_ppm = 0};
  std::mt19937 rng(3);
  std::uniform_int_distribution<Nanos> jitter(0, 100 * kUs);
  Nanos t = 0;
  double q4 = 0;
  for (int i = 0; i < 100; ++i, t += 50 * kMs) {
    ASSERT_TRUE(est.add(exchange(r, t, kMs + jitter(rng), kMs + jitter(rng))));
    if (i == 3) q4 = est.estimate()->quality;
  }
  const double q = est.estimate()->quality;
  EXPECT_GT(q, q4);
  EXPECT_GT(q, 0.3);
  EXPECT_LE(q, 1.0);
}

}  // namespace
}  // namespace jamnet::sync
