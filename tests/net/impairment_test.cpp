#include "jamnet/net/impairment.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace jamnet::net {
namespace {

constexpr Nanos kMs = 1'000'000;
constexpr int kPackets = 100'000;
constexpr Nanos kSpacing = 1 * kMs;  // one packet per millisecond

TEST(Impairment, IdentityPassesEverythingAtOnce) {
  ImpairmentModel m(Impairment{}, 1);
  EXPECT_TRUE(Impairment{}.is_identity());
  for (int i = 0; i < 1000; ++i) {
    const Fate f = m.decide(100, i * kSpacing);
    ASSERT_FALSE(f.dropped());
    ASSERT_EQ(f.copies, 1);
    ASSERT_EQ(f.release_after[0], 0);
    ASSERT_FALSE(f.corrupt);
    ASSERT_FALSE(f.reordered);
  }
}

TEST(Impairment, IndependentLossRate) {
  Impairment s;
  s.loss = 0.1;
  ImpairmentModel m(s, 7);
  int lost = 0;
  for (int i = 0; i < kPackets; ++i) {
    const Fate f = m.decide(100, i * kSpacing);
    if (f.dropped()) {
      EXPECT_EQ(f.drop, DropReason::kLoss);
      EXPECT_EQ(f.copies, 0);
      ++lost;
    }
  }
  EXPECT_NEAR(static_cast<double>(lost) / kPackets, 0.1, 0.005);
}

TEST(Impairment, GilbertElliottBurstLengthAndStationaryLoss) {
  Impairment s;
  s.ge_p = 0.05;
  s.ge_r = 0.5;
  ImpairmentModel m(s, 3);
  int lost = 0;
  int bursts = 0;
  bool in_burst = false;
  for (int i = 0; i < kPackets; ++i) {
    const bool d = m.decide(100, i * kSpacing).dropped();
    lost += d;
    if (d && !in_burst) ++bursts;
    in_burst = d;
  }
  const double loss = static_cast<double>(lost) / kPackets;
  EXPECT_NEAR(loss, 0.05 / (0.05 + 0.5), 0.01);                     // p / (p + r)
  EXPECT_NEAR(static_cast<double>(lost) / bursts, 1.0 / 0.5, 0.1);  // mean burst 1 / r
}

TEST(Impairment, GilbertElliottPartialLossInBadState) {
  Impairment s;
  s.ge_p = 0.1;
  s.ge_r = 0.1;  // half the time bad
  s.ge_loss_good = 0.02;
  s.ge_loss_bad = 0.5;
  ImpairmentModel m(s, 5);
  int lost = 0;
  for (int i = 0; i < kPackets; ++i) lost += m.decide(100, i * kSpacing).dropped();
  EXPECT_NEAR(static_cast<double>(lost) / kPackets, 0.5 * 0.02 + 0.5 * 0.5, 0.02);
}

TEST(Impairment, UniformJitterStaysInBounds) {
  Impairment s;
  s.delay = 20 * kMs;
  s.jitter = 5 * kMs;
  ImpairmentModel m(s, 11);
  Nanos lo = s.delay, hi = s.delay;
  double sum = 0;
  for (int i = 0; i < kPackets; ++i) {
    const Nanos d = m.decide(100, i * kSpacing).release_after[0];
    ASSERT_GE(d, 15 * kMs);
    ASSERT_LE(d, 25 * kMs);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    sum += static_cast<double>(d);
  }
  EXPECT_LT(lo, 15 * kMs + kMs / 10);  // the whole range is used
  EXPECT_GT(hi, 25 * kMs - kMs / 10);
  EXPECT_NEAR(sum / kPackets / kMs, 20.0, 0.05);
}

TEST(Impairment, NormalJitterStandardDeviation) {
  Impairment s;
  s.delay = 50 * kMs;
  s.jitter = 5 * kMs;  // 10 sigma above zero, so the clamp never bites
  s.jitter_dist = JitterDist::kNormal;
  ImpairmentModel m(s, 13);
  double sum = 0, sum2 = 0;
  for (int i = 0; i < kPackets; ++i) {
    const double d = static_cast<double>(m.decide(100, i * kSpacing).release_after[0]) / kMs;
    sum += d;
    sum2 += d * d;
  }
  const double mean = sum / kPackets;
  const double sd = std::sqrt(sum2 / kPackets - mean * mean);
  EXPECT_NEAR(mean, 50.0, 0.1);
  EXPECT_NEAR(sd, 5.0, 0.25);  // within 5%
}

TEST(Impairment, NormalJitterNeverNegative) {
  Impairment s;
  s.delay = 1 * kMs;
  s.jitter = 5 * kMs;
  s.jitter_dist = JitterDist::kNormal;
  ImpairmentModel m(s, 17);
  int zero = 0;
  for (int i = 0; i < 10'000; ++i) {
    const Nanos d = m.decide(100, i * kSpacing).release_after[0];
    ASSERT_GE(d, 0);
    zero += d == 0;
  }
  EXPECT_GT(zero, 0);  // P(N(1, 5) < 0) ~ 42%: clamped at zero
}

TEST(Impairment, DuplicateFraction) {
  Impairment s;
  s.duplicate = 0.05;
  s.delay = 3 * kMs;
  ImpairmentModel m(s, 19);
  int dup = 0;
  for (int i = 0; i < kPackets; ++i) {
    const Fate f = m.decide(100, i * kSpacing);
    if (f.copies == 2) {
      ++dup;
      EXPECT_EQ(f.release_after[1], 3 * kMs);
    }
  }
  EXPECT_NEAR(static_cast<double>(dup) / kPackets, 0.05, 0.003);
}

TEST(Impairment, CorruptionPicksABitInsideTheDatagram) {
  Impairment s;
  s.corrupt = 0.2;
  ImpairmentModel m(s, 23);
  int corrupted = 0;
  std::vector<int> byte_hits(7), bit_hits(8);
  for (int i = 0; i < kPackets; ++i) {
    const Fate f = m.decide(7, i * kSpacing);
    if (!f.corrupt) continue;
    ++corrupted;
    ASSERT_LT(f.corrupt_byte, 7u);
    ASSERT_LT(f.corrupt_bit, 8u);
    ++byte_hits[f.corrupt_byte];
    ++bit_hits[f.corrupt_bit];
  }
  EXPECT_NEAR(static_cast<double>(corrupted) / kPackets, 0.2, 0.005);
  for (int h : byte_hits) EXPECT_NEAR(h, corrupted / 7.0, corrupted / 7.0 * 0.1);
  for (int h : bit_hits) EXPECT_NEAR(h, corrupted / 8.0, corrupted / 8.0 * 0.1);
}

TEST(Impairment, EmptyDatagramIsNeverCorrupted) {
  Impairment s;
  s.corrupt = 1.0;
  ImpairmentModel m(s, 29);
  EXPECT_FALSE(m.decide(0, 0).corrupt);
  EXPECT_TRUE(m.decide(1, 0).corrupt);
}

TEST(Impairment, ReorderHoldsBackByTheGap) {
  Impairment s;
  s.reorder = 0.25;
  s.delay = 10 * kMs;
  s.reorder_gap = 2 * kMs;
  ImpairmentModel m(s, 31);
  int held = 0;
  for (int i = 0; i < kPackets; ++i) {
    const Fate f = m.decide(100, i * kSpacing);
    EXPECT_EQ(f.release_after[0], f.reordered ? 12 * kMs : 10 * kMs);
    held += f.reordered;
  }
  EXPECT_NEAR(static_cast<double>(held) / kPackets, 0.25, 0.005);
}

TEST(Impairment, RateLimitSpacesPacketsBySerialisationTime) {
  Impairment s;
  s.rate_kbps = 800;  // 1000 bytes = 8000 bits = 10 ms
  s.queue = 1000 * kMs;
  ImpairmentModel m(s, 1);
  // A burst of 20 arriving together leaves 10 ms apart.
  for (int i = 0; i < 20; ++i) {
    const Fate f = m.decide(1000, 0);
    ASSERT_FALSE(f.dropped());
    EXPECT_EQ(f.release_after[0], (i + 1) * 10 * kMs);
  }
  // Once the link is idle again a packet only pays its own serialisation.
  EXPECT_EQ(m.decide(1000, 10'000 * kMs).release_after[0], 10 * kMs);
}

TEST(Impairment, RateLimitDropsWhenTheQueueIsFull) {
  Impairment s;
  s.rate_kbps = 800;
  s.queue = 50 * kMs;  // five 10 ms packets
  s.delay = 5 * kMs;
  ImpairmentModel m(s, 1);
  int accepted = 0, queue_drops = 0;
  for (int i = 0; i < 10; ++i) {
    const Fate f = m.decide(1000, 0);
    if (f.drop == DropReason::kQueue) {
      ++queue_drops;
    } else {
      ++accepted;
      EXPECT_EQ(f.release_after[0], accepted * 10 * kMs + 5 * kMs);  // delay after the bottleneck
    }
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(queue_drops, 5);
  // Sent at the link rate, nothing is dropped.
  ImpairmentModel paced(s, 1);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(paced.decide(1000, i * 10 * kMs).dropped());
}

TEST(Impairment, RateLimitHugeDatagramOnIdleLinkPasses) {
  Impairment s;
  s.rate_kbps = 8;  // 65000 bytes take 65 s
  ImpairmentModel m(s, 1);
  EXPECT_FALSE(m.decide(65'000, 0).dropped());
  EXPECT_EQ(m.decide(10, kMs).drop, DropReason::kQueue);
}

std::vector<Fate> run_all(std::uint64_t seed, std::uint64_t stream = 0) {
  Impairment s;
  s.loss = 0.05;
  s.ge_p = 0.01;
  s.ge_r = 0.3;
  s.delay = 10 * kMs;
  s.jitter = 3 * kMs;
  s.jitter_dist = JitterDist::kNormal;
  s.reorder = 0.02;
  s.duplicate = 0.02;
  s.corrupt = 0.02;
  s.rate_kbps = 1000;
  ImpairmentModel m(s, seed, stream);
  std::vector<Fate> out;
  for (int i = 0; i < 5000; ++i) out.push_back(m.decide(100 + i % 900, i * kSpacing));
  return out;
}

bool same(const std::vector<Fate>& a, const std::vector<Fate>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Fate& x = a[i];
    const Fate& y = b[i];
    if (x.drop != y.drop || x.copies != y.copies || x.release_after != y.release_after ||
        x.reordered != y.reordered || x.corrupt != y.corrupt || x.corrupt_byte != y.corrupt_byte ||
        x.corrupt_bit != y.corrupt_bit) {
      return false;
    }
  }
  return true;
}

TEST(Impairment, SameSeedSameFates) {
  EXPECT_TRUE(same(run_all(42), run_all(42)));
  EXPECT_FALSE(same(run_all(42), run_all(43)));
  EXPECT_FALSE(same(run_all(42, 0), run_all(42, 1)));  // directions differ
}

TEST(Impairment, EnablingOneImpairmentKeepsTheOthersDecisions) {
  Impairment lossy;
  lossy.loss = 0.1;
  Impairment lossy_dup = lossy;
  lossy_dup.duplicate = 0.3;
  lossy_dup.delay = 7 * kMs;
  ImpairmentModel a(lossy, 9), b(lossy_dup, 9);
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(a.decide(100, i * kSpacing).dropped(), b.decide(100, i * kSpacing).dropped()) << i;
  }
}

}  // namespace
}  // namespace jamnet::net
