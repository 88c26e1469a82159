#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "jamnet/media/jmid/burst.hpp"

namespace jamnet::media::jmid {
namespace {

using Verdict = BurstDeduper::Verdict;

double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// The formula by brute force: smallest k with p^k <= target, clamped.
int expected_k(double p, double target, int k_min, int k_max) {
  if (p <= 0.0) return k_min;
  if (p >= 1.0) return k_max;
  int k = 1;
  while (std::pow(p, k) > target && k < 64) ++k;
  return std::clamp(k, k_min, k_max);
}

// ---- BurstSender::schedule ------------------------------------------------

TEST(JmidBurstSender, ScheduleFirstAtNowRestDistinctSortedInsideWindow) {
  for (int k = 1; k <= kMaxBurst; ++k) {
    BurstConfig cfg;
    cfg.adaptive = false;
    cfg.k = k;
    cfg.window_ns = 500'000;
    BurstSender sender(cfg, 42 + static_cast<std::uint64_t>(k));
    std::array<ScheduledCopy, kMaxBurst> out{};
    for (int burst = 0; burst < 200; ++burst) {
      const Nanos now = 1'000'000'000 + burst * 1'000'000;
      const std::size_t n = sender.schedule(now, out);
      ASSERT_EQ(n, static_cast<std::size_t>(k));
      EXPECT_EQ(out[0].send_at_ns, now);
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(out[i].copy, i);
        EXPECT_EQ(out[i].k, k);
        EXPECT_LE(out[i].send_at_ns, now + cfg.window_ns);
        if (i > 0) {
          EXPECT_GT(out[i].send_at_ns, out[i - 1].send_at_ns) << "k=" << k << " copy " << i;
        }
      }
    }
  }
}

TEST(JmidBurstSender, TinyWindowStillGivesDistinctInstants) {
  BurstConfig cfg;
  cfg.adaptive = false;
  cfg.k = 8;
  cfg.window_ns = 0;  // less than one ns per copy: the window widens to k-1 ns
  BurstSender sender(cfg, 7);
  std::array<ScheduledCopy, kMaxBurst> out{};
  ASSERT_EQ(sender.schedule(100, out), 8u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(out[i].send_at_ns, 100 + static_cast<Nanos>(i));
}

TEST(JmidBurstSender, CopiesAreSpreadAcrossTheWindow) {
  // Stratified schedule: gap 0->1 averages half a slot, later gaps a whole
  // slot (window/(k-1)); each copy i averages (i - 1/2) slots after now.
  constexpr int kK = 5;
  constexpr Nanos kWindow = 800'000;
  constexpr double kSlot = static_cast<double>(kWindow) / (kK - 1);
  BurstConfig cfg;
  cfg.adaptive = false;
  cfg.k = kK;
  cfg.window_ns = kWindow;
  BurstSender sender(cfg, 1234);
  std::array<ScheduledCopy, kMaxBurst> out{};
  constexpr int kBursts = 20'000;
  std::array<double, kK> gap_sum{};
  std::array<double, kK> offset_sum{};
  Nanos min_span = kWindow;
  for (int b = 0; b < kBursts; ++b) {
    sender.schedule(0, out);
    for (int i = 1; i < kK; ++i) {
      gap_sum[i] += static_cast<double>(out[i].send_at_ns - out[i - 1].send_at_ns);
      offset_sum[i] += static_cast<double>(out[i].send_at_ns);
    }
    min_span = std::min(min_span, out[kK - 1].send_at_ns);
  }
  // Uniform in a slot: sd slot/sqrt(12) per copy, sd of the mean ~ slot/490.
  const double tol = kSlot * 0.02;
  EXPECT_NEAR(gap_sum[1] / kBursts, kSlot / 2, tol);
  for (int i = 2; i < kK; ++i) EXPECT_NEAR(gap_sum[i] / kBursts, kSlot, tol) << "gap " << i;
  for (int i = 1; i < kK; ++i)
    EXPECT_NEAR(offset_sum[i] / kBursts, (i - 0.5) * kSlot, tol) << "copy " << i;
  // The last copy always lies in the last slot: no burst bunches up at `now`.
  EXPECT_GT(min_span, static_cast<Nanos>(kSlot * (kK - 2)));
}

TEST(JmidBurstSender, DeterministicForASeedDifferentAcrossSeeds) {
  BurstConfig cfg;
  cfg.adaptive = false;
  cfg.k = 4;
  auto run = [&](std::uint64_t seed) {
    BurstSender s(cfg, seed);
    std::vector<Nanos> times;
    times.push_back(static_cast<Nanos>(s.next_seq()));
    std::array<ScheduledCopy, kMaxBurst> out{};
    for (int b = 0; b < 50; ++b) {
      const std::size_t n = s.schedule(b * 1000, out);
      for (std::size_t i = 0; i < n; ++i) times.push_back(out[i].send_at_ns);
    }
    return times;
  };
  EXPECT_EQ(run(99), run(99));
  EXPECT_NE(run(99), run(100));
}

TEST(JmidBurstSender, SeqStartsAtRandom48BitValueThenCountsUp) {
  BurstConfig cfg;
  BurstSender a(cfg, 1);
  BurstSender b(cfg, 2);
  const std::uint64_t a0 = a.next_seq();
  const std::uint64_t b0 = b.next_seq();
  EXPECT_LT(a0, std::uint64_t{1} << 48);
  EXPECT_LT(b0, std::uint64_t{1} << 48);
  EXPECT_NE(a0, b0);
  // Two random starts are nearly always further apart than the receiver's
  // restart distance, which is what lets it tell a restart from a late copy.
  EXPECT_GT(a0 > b0 ? a0 - b0 : b0 - a0, BurstDeduper::kRestartDistance);
  EXPECT_EQ(a.next_seq(), a0 + 1);
  EXPECT_EQ(a.next_seq(), a0 + 2);
}

// ---- BurstSender::on_feedback --------------------------------------------

TEST(JmidBurstSender, KForLossMatchesFormula) {
  for (double target : {1e-4, 1e-3, 1e-2}) {
    BurstConfig cfg;
    cfg.k_min = 1;
    cfg.k_max = kMaxBurst;
    cfg.target_event_loss = target;
    BurstSender s(cfg, 1);
    for (double p : {0.0, 0.2, 0.5, 0.66, 0.9, 1.0}) {
      EXPECT_EQ(s.k_for_loss(p), expected_k(p, target, 1, kMaxBurst))
          << "p=" << p << " target=" << target;
    }
  }
  // Spot values at the default target 1e-4: 0.2^6 = 6.4e-5 <= 1e-4 < 0.2^5.
  BurstConfig cfg;
  cfg.k_max = kMaxBurst;
  BurstSender s(cfg, 1);
  EXPECT_EQ(s.k_for_loss(0.0), 1);
  EXPECT_EQ(s.k_for_loss(0.2), 6);
  EXPECT_EQ(s.k_for_loss(0.5), 14);          // 2^-14 = 6.1e-5
  EXPECT_EQ(s.k_for_loss(0.66), kMaxBurst);  // needs 23
  EXPECT_EQ(s.k_for_loss(0.9), kMaxBurst);
}

TEST(JmidBurstSender, FeedbackClampsToRange) {
  BurstConfig cfg;
  cfg.k = 3;
  cfg.k_min = 2;
  cfg.k_max = 5;
  BurstSender s(cfg, 1);
  EXPECT_EQ(s.k_for_loss(0.0), 2);
  EXPECT_EQ(s.k_for_loss(-0.5), 2);
  EXPECT_EQ(s.k_for_loss(0.9), 5);
  EXPECT_EQ(s.k_for_loss(1.0), 5);
  EXPECT_EQ(s.k_for_loss(3.0), 5);
  s.on_feedback(0.9);
  EXPECT_EQ(s.k(), 5);
  for (std::size_t i = 0; i < BurstSender::kHoldReports; ++i) s.on_feedback(0.0);
  EXPECT_EQ(s.k(), 2);

  // Out-of-range config is sanitised rather than trusted.
  BurstConfig bad;
  bad.k = 40;
  bad.k_min = 0;
  bad.k_max = 99;
  BurstSender t(bad, 1);
  EXPECT_EQ(t.config().k_min, 1);
  EXPECT_EQ(t.config().k_max, kMaxBurst);
  EXPECT_EQ(t.k(), kMaxBurst);
}

TEST(JmidBurstSender, FeedbackFollowsFormulaAfterHold) {
  BurstConfig cfg;
  cfg.k_max = kMaxBurst;
  for (double p : {0.0, 0.2, 0.5, 0.66, 0.9}) {
    BurstSender s(cfg, 1);
    for (std::size_t i = 0; i < BurstSender::kHoldReports; ++i) s.on_feedback(p);
    EXPECT_EQ(s.k(), expected_k(p, cfg.target_event_loss, 1, kMaxBurst)) << "p=" << p;
  }
}

TEST(JmidBurstSender, HysteresisUpAtOnceDownOnlyAfterConsistentReports) {
  BurstConfig cfg;
  cfg.k = 3;
  cfg.k_max = 10;
  cfg.target_event_loss = 1e-3;
  BurstSender s(cfg, 1);
  ASSERT_EQ(s.k_for_loss(0.05), 3);
  ASSERT_EQ(s.k_for_loss(0.2), 5);
  ASSERT_EQ(s.k_for_loss(0.01), 2);

  s.on_feedback(0.2);  // loss rose: protect at once
  EXPECT_EQ(s.k(), 5);
  for (std::size_t i = 0; i + 1 < BurstSender::kHoldReports; ++i) {
    s.on_feedback(0.01);
    EXPECT_EQ(s.k(), 5) << "dropped after " << i + 1 << " low reports";
  }
  s.on_feedback(0.01);
  EXPECT_EQ(s.k(), 2);

  // The start value counts as reported: a first low report changes nothing.
  BurstSender fresh(cfg, 1);
  fresh.on_feedback(0.0);
  EXPECT_EQ(fresh.k(), 3);

  // A noisy estimate around a threshold does not flap: k sits at the higher value.
  BurstSender noisy(cfg, 1);
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    noisy.on_feedback(i % 3 == 0 ? 0.11 : 0.09);  // k_for_loss: 4 / 3
    if (i >= 4) seen.insert(noisy.k());
  }
  EXPECT_EQ(seen, std::set<int>{4});
}

TEST(JmidBurstSender, FixedKIgnoresFeedback) {
  BurstConfig cfg;
  cfg.adaptive = false;
  cfg.k = 4;
  BurstSender s(cfg, 1);
  for (int i = 0; i < 10; ++i) s.on_feedback(0.9);
  EXPECT_EQ(s.k(), 4);
  for (int i = 0; i < 10; ++i) s.on_feedback(0.0);
  EXPECT_EQ(s.k(), 4);
}

// ---- BurstDeduper -----------------------------------------------------------

TEST(JmidBurstDeduper, FirstCopyDeliversRestAreDuplicates) {
  BurstDeduper d;
  EXPECT_EQ(d.on_copy(100, 3, 0), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(100, 3, 100), Verdict::kDuplicate);
  EXPECT_EQ(d.on_copy(100, 3, 200), Verdict::kDuplicate);
  EXPECT_EQ(d.stats().copies, 3u);
  EXPECT_EQ(d.stats().delivered, 1u);
  EXPECT_EQ(d.stats().duplicates, 2u);
}

TEST(JmidBurstDeduper, OutOfOrderBurstsEachDeliveredOnce) {
  BurstDeduper d;
  EXPECT_EQ(d.on_copy(12, 2, 0), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(11, 2, 10), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(12, 2, 20), Verdict::kDuplicate);
  EXPECT_EQ(d.on_copy(11, 2, 30), Verdict::kDuplicate);
  EXPECT_EQ(d.on_copy(10, 2, 40), Verdict::kDeliver);  // nothing forgotten yet: not too old
  EXPECT_EQ(d.stats().delivered, 3u);
}

TEST(JmidBurstDeduper, LateCopyAfterExpiryIsTooOld) {
  BurstDeduper::Config cfg;
  cfg.expiry_ns = 5'000'000;
  BurstDeduper d(cfg);
  EXPECT_EQ(d.on_copy(50, 3, 0), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(51, 3, 1'000'000), Verdict::kDeliver);
  EXPECT_EQ(d.remembered(), 2u);
  d.expire(5'500'000);  // 50 forgotten, 51 still remembered
  EXPECT_EQ(d.remembered(), 1u);
  EXPECT_EQ(d.on_copy(50, 3, 5'600'000), Verdict::kTooOld);
  EXPECT_EQ(d.on_copy(49, 3, 5'600'000), Verdict::kTooOld);  // below the floor, never seen
  EXPECT_EQ(d.on_copy(51, 3, 5'700'000), Verdict::kDuplicate);
  EXPECT_EQ(d.on_copy(51, 3, 7'000'000), Verdict::kTooOld);  // expired inside on_copy
  EXPECT_EQ(d.stats().too_old, 3u);
  EXPECT_EQ(d.stats().delivered, 2u);
}

TEST(JmidBurstDeduper, RememberedIdBelowFloorStillDedupes) {
  // 12 arrives (and expires) before 11: the floor rises above 12, yet 11 is
  // still remembered and must answer duplicate, and a fresh 11 was delivered.
  BurstDeduper::Config cfg;
  cfg.expiry_ns = 1000;
  BurstDeduper d(cfg);
  EXPECT_EQ(d.on_copy(12, 3, 0), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(11, 3, 600), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(11, 3, 1100), Verdict::kDuplicate);  // 12 expired at 1000
  EXPECT_EQ(d.on_copy(12, 3, 1100), Verdict::kTooOld);
  EXPECT_EQ(d.on_copy(11, 3, 1700), Verdict::kTooOld);
}

TEST(JmidBurstDeduper, CapacityBoundsMemoryAndRaisesFloor) {
  BurstDeduper::Config cfg;
  cfg.capacity = 16;
  cfg.expiry_ns = 1'000'000'000;  // nothing expires by time here
  BurstDeduper d(cfg);
  for (std::uint64_t s = 0; s < 1000; ++s) {
    EXPECT_EQ(d.on_copy(s, 1, static_cast<Nanos>(s)), Verdict::kDeliver);
    EXPECT_LE(d.remembered(), 16u);
  }
  EXPECT_EQ(d.remembered(), 16u);
  EXPECT_EQ(d.on_copy(983, 1, 2000), Verdict::kTooOld);  // pushed out by capacity
  EXPECT_EQ(d.on_copy(984, 1, 2000), Verdict::kDuplicate);
}

TEST(JmidBurstDeduper, RestartIsDetectedEitherWay) {
  BurstDeduper d;
  const std::uint64_t a = 5'000'000;
  EXPECT_EQ(d.on_copy(a, 2, 0), Verdict::kDeliver);
  // Exactly kRestartDistance away is still the same sender.
  EXPECT_EQ(d.on_copy(a + BurstDeduper::kRestartDistance, 2, 10), Verdict::kDeliver);
  EXPECT_EQ(d.stats().resyncs, 0u);
  // A restarted sender with a much higher start...
  const std::uint64_t b = a + 100 * BurstDeduper::kRestartDistance;
  EXPECT_EQ(d.on_copy(b, 2, 20), Verdict::kDeliver);
  EXPECT_EQ(d.stats().resyncs, 1u);
  EXPECT_EQ(d.remembered(), 1u);
  EXPECT_EQ(d.on_copy(b, 2, 30), Verdict::kDuplicate);
  EXPECT_EQ(d.on_copy(b + 1, 2, 40), Verdict::kDeliver);
  // ...and one with a much lower start (not mistaken for "too old").
  EXPECT_EQ(d.on_copy(7, 2, 50), Verdict::kDeliver);
  EXPECT_EQ(d.stats().resyncs, 2u);
  EXPECT_EQ(d.on_copy(7, 2, 60), Verdict::kDuplicate);
  EXPECT_EQ(d.on_copy(8, 2, 70), Verdict::kDeliver);
  EXPECT_EQ(d.stats().too_old, 0u);
}

TEST(JmidBurstDeduper, MinCopiesThreshold) {
  BurstDeduper::Config cfg;
  cfg.min_copies = 2;
  BurstDeduper d(cfg);
  EXPECT_EQ(d.on_copy(1, 3, 0), Verdict::kWaiting);
  EXPECT_EQ(d.on_copy(1, 3, 10), Verdict::kDeliver);
  EXPECT_EQ(d.on_copy(1, 3, 20), Verdict::kDuplicate);
  // A burst that was sent once can never show two copies: one is enough.
  EXPECT_EQ(d.on_copy(2, 1, 30), Verdict::kDeliver);
  // A single surviving copy of a k=3 burst is never delivered.
  EXPECT_EQ(d.on_copy(3, 3, 40), Verdict::kWaiting);
  EXPECT_EQ(d.stats().delivered, 2u);
}

TEST(JmidBurstDeduper, ZeroKFromTheWireCountsAsOne) {
  BurstDeduper::Config cfg;
  cfg.min_copies = 2;
  BurstDeduper d(cfg);
  EXPECT_EQ(d.on_copy(1, 0, 0), Verdict::kDeliver);
}

TEST(JmidBurstDeduper, LossEstimateOverExpiredBursts) {
  BurstDeduper::Config cfg;
  cfg.expiry_ns = 1000;
  BurstDeduper d(cfg);
  EXPECT_EQ(d.copy_loss_estimate(), 0.0);
  d.on_copy(1, 4, 0);
  d.on_copy(1, 4, 10);                     // 2 of 4 copies
  d.on_copy(2, 4, 20);                     // 1 of 4
  EXPECT_EQ(d.copy_loss_estimate(), 0.0);  // nothing expired yet
  d.expire(5000);
  EXPECT_DOUBLE_EQ(d.copy_loss_estimate(), 1.0 - 3.0 / 8.0);
  // Network-duplicated copies do not make the loss negative.
  d.on_copy(3, 2, 6000);
  d.on_copy(3, 2, 6001);
  d.on_copy(3, 2, 6002);
  d.expire(9000);
  EXPECT_DOUBLE_EQ(d.copy_loss_estimate(), 1.0 - 5.0 / 10.0);
}

TEST(JmidBurstDeduper, LossEstimateCountsBurstsThatVanishedEntirely) {
  BurstDeduper::Config cfg;
  cfg.expiry_ns = 1000;
  BurstDeduper d(cfg);
  d.on_copy(10, 3, 0);   // 1 of 3
  d.on_copy(13, 3, 10);  // 1 of 3; bursts 11 and 12 lost all 3 copies
  d.on_copy(12, 3, 20);  // ...no: 12 turns up late, out of order (1 of 3)
  d.expire(5000);
  // Sent: 10, 11, 12, 13 at k=3 = 12 copies; seen 3.
  EXPECT_DOUBLE_EQ(d.copy_loss_estimate(), 1.0 - 3.0 / 12.0);
}

struct Copy {
  Nanos arrive;
  std::uint64_t seq;
  std::uint8_t k;
};

// Random loss and reordering, many bursts: every surviving burst exactly once.
void run_random_loss(int k, double p, std::uint64_t seed) {
  constexpr int kBursts = 100'000;
  constexpr Nanos kGap = 1'000'000;     // one burst a millisecond
  constexpr Nanos kJitter = 3'000'000;  // copies reorder across ~3 bursts
  BurstConfig sc;
  sc.adaptive = false;
  sc.k = k;
  BurstSender sender(sc, seed);
  std::mt19937_64 rng(seed ^ 0x5eed);
  std::vector<Copy> copies;
  copies.reserve(static_cast<std::size_t>(kBursts * k));
  std::vector<std::uint8_t> survived(kBursts, 0);
  std::uint64_t first_seq = 0;
  std::array<ScheduledCopy, kMaxBurst> sched{};
  std::uint64_t sent = 0;
  for (int b = 0; b < kBursts; ++b) {
    const std::uint64_t seq = sender.next_seq();
    if (b == 0) first_seq = seq;
    const std::size_t n = sender.schedule(b * kGap, sched);
    for (std::size_t i = 0; i < n; ++i) {
      ++sent;
      if (uniform01(rng) < p) continue;
      const Nanos jitter = static_cast<Nanos>(uniform01(rng) * kJitter);
      copies.push_back({sched[i].send_at_ns + jitter, seq, sched[i].k});
      survived[static_cast<std::size_t>(b)] = 1;
    }
  }
  std::stable_sort(copies.begin(), copies.end(),
                   [](const Copy& a, const Copy& b) { return a.arrive < b.arrive; });

  BurstDeduper::Config dc;
  dc.capacity = 256;
  BurstDeduper d(dc);
  std::vector<int> delivered(kBursts, 0);
  std::size_t max_remembered = 0;
  for (const Copy& c : copies) {
    const Verdict v = d.on_copy(c.seq, c.k, c.arrive);
    ASSERT_NE(v, Verdict::kTooOld) << "expiry must outlast the reorder window";
    ASSERT_NE(v, Verdict::kWaiting);
    if (v == Verdict::kDeliver) ++delivered[c.seq - first_seq];
    max_remembered = std::max(max_remembered, d.remembered());
  }
  d.expire(kBursts * kGap + 1'000'000'000);
  EXPECT_LE(max_remembered, dc.capacity);
  EXPECT_EQ(d.remembered(), 0u);

  std::uint64_t delivered_total = 0;
  for (int b = 0; b < kBursts; ++b) {
    ASSERT_EQ(delivered[static_cast<std::size_t>(b)], survived[static_cast<std::size_t>(b)])
        << "burst " << b;
    delivered_total += static_cast<std::uint64_t>(delivered[static_cast<std::size_t>(b)]);
  }
  EXPECT_EQ(d.stats().delivered, delivered_total);
  EXPECT_EQ(d.stats().duplicates + d.stats().delivered, copies.size());

  // Delivered rate ~ 1 - p^k, within 5 binomial standard deviations.
  const double q = 1.0 - std::pow(p, k);
  const double sd = std::sqrt(kBursts * q * (1 - q));
  EXPECT_NEAR(static_cast<double>(delivered_total), kBursts * q, 5 * sd + 1) << "k=" << k;
  // Copy loss over the last few thousand copies (the estimate decays).
  EXPECT_NEAR(d.copy_loss_estimate(), p, 0.03) << "k=" << k << " sent " << sent;
}

TEST(JmidBurstDeduper, RandomLossAndReorderEveryBurstOnceK3) {
  run_random_loss(3, 0.3, 3);
}
TEST(JmidBurstDeduper, RandomLossAndReorderEveryBurstOnceK4) {
  run_random_loss(4, 0.5, 4);
}
TEST(JmidBurstDeduper, RandomLossAndReorderEveryBurstOnceK5) {
  run_random_loss(5, 0.6, 5);
}

}  // namespace
}  // namespace jamnet::media::jmid
