#include "jamnet/core/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "jamnet/core/triple_buffer.hpp"

namespace jamnet {
namespace {

// Nearest rank, the definition Histogram::quantile promises to bound (`v` sorted).
Nanos exact_quantile(const std::vector<Nanos>& v, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

// Never below the exact quantile, and above it by less than a bin (1/32 of it).
void expect_within_bin(Nanos got, Nanos exact, double q) {
  EXPECT_GE(got, exact) << "q=" << q;
  EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * (1.0 + 1.0 / 32) + 1e-9)
      << "q=" << q << " exact=" << exact;
}

TEST(Histogram, IsSmallAndTriviallyCopyable) {
  static_assert(std::is_trivially_copyable_v<Histogram>);
  static_assert(sizeof(Histogram) <= 8 * 1024);
  TripleBuffer<Histogram> tb;  // the reason for both
  Histogram h;
  h.add(42);
  tb.write(h);
  EXPECT_EQ(tb.read().count(), 1u);
  EXPECT_EQ(tb.read().max(), 42);
}

TEST(Histogram, EmptyReadsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.quantile(0.5), 0);
  EXPECT_EQ(h.quantile(0.99), 0);
}

TEST(Histogram, BinsCoverEveryValueOnceAndAreNarrow) {
  // Adjacent bins meet without gaps or overlap, and every regular bin is at
  // most 1/32 of its lower edge wide (exact below 64 ns).
  for (std::size_t i = 0; i + 1 < Histogram::kOverflowBin; ++i) {
    ASSERT_EQ(Histogram::bin_highest(i) + 1, Histogram::bin_lowest(i + 1)) << i;
    const Nanos lo = Histogram::bin_lowest(i), hi = Histogram::bin_highest(i);
    ASSERT_EQ(Histogram::bin_of(lo), i);
    ASSERT_EQ(Histogram::bin_of(hi), i);
    if (lo < 64) {
      ASSERT_EQ(lo, hi);
    } else {
      ASSERT_LE(hi - lo + 1, lo / 32) << i;
    }
  }
  EXPECT_EQ(Histogram::bin_of(Histogram::kOverflowFrom), Histogram::kOverflowBin);
  EXPECT_GE(Histogram::kOverflowFrom, Nanos{10'000'000'000});  // ~10 s and more are binned
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (Nanos v = 0; v < 64; ++v) h.add(v);
  EXPECT_EQ(h.count(), 64u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 63);
  EXPECT_DOUBLE_EQ(h.mean(), 31.5);
  EXPECT_EQ(h.quantile(0.5), 31);  // rank 32 of 0..63
  EXPECT_EQ(h.quantile(1.0), 63);
  EXPECT_EQ(h.quantile(0.0), 0);  // rank 1: the minimum
}

TEST(Histogram, QuantilesMatchSortedDataWithinOneBin) {
  std::mt19937_64 rng(12345);
  // Log-uniform from 10 ns to 1 s, then a lognormal around 1 ms (a tick's jitter).
  std::uniform_real_distribution<double> exponent(1.0, 9.0);
  std::lognormal_distribution<double> jitter(std::log(1e6), 0.8);
  for (int dist = 0; dist < 2; ++dist) {
    Histogram h;
    std::vector<Nanos> values;
    for (int i = 0; i < 50'000; ++i) {
      const double x = dist == 0 ? std::pow(10.0, exponent(rng)) : jitter(rng);
      const auto v = static_cast<Nanos>(x);
      values.push_back(v);
      h.add(v);
    }
    ASSERT_EQ(h.count(), values.size());
    EXPECT_EQ(h.min(), *std::min_element(values.begin(), values.end()));
    EXPECT_EQ(h.max(), *std::max_element(values.begin(), values.end()));
    double sum = 0;
    for (Nanos v : values) sum += static_cast<double>(v);
    EXPECT_NEAR(h.mean(), sum / static_cast<double>(values.size()), 1e-9 * sum);
    std::sort(values.begin(), values.end());
    for (double q : {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
      expect_within_bin(h.quantile(q), exact_quantile(values, q), q);
    }
    EXPECT_EQ(h.quantile(1.0), h.max());  // the top bin's edge is clamped to the real max
  }
}

TEST(Histogram, RankBoundariesPickTheRightBin) {
  // 99 values of 1000 ns and one of 5 ms: p99 is rank 99 (1000), p99.1 is rank 100.
  Histogram h;
  for (int i = 0; i < 99; ++i) h.add(1000);
  h.add(5'000'000);
  expect_within_bin(h.quantile(0.99), 1000, 0.99);
  EXPECT_EQ(h.quantile(0.991), 5'000'000);
  EXPECT_EQ(h.quantile(0.01), h.quantile(0.5));  // both in the 1000 ns bin
  expect_within_bin(h.quantile(0.01), 1000, 0.01);
}

TEST(Histogram, NegativeValuesClampToZero) {
  Histogram h;
  h.add(-5);
  h.add(std::numeric_limits<Nanos>::min());
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.bin_count(0), 2u);
}

TEST(Histogram, OverflowKeepsCountAndExactMax) {
  Histogram h;
  h.add(100);
  h.add(20'000'000'000);  // 20 s: past the last regular octave
  h.add(std::numeric_limits<Nanos>::max());
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.bin_count(Histogram::kOverflowBin), 2u);
  EXPECT_EQ(h.max(), std::numeric_limits<Nanos>::max());
  EXPECT_EQ(h.min(), 100);
  EXPECT_EQ(h.quantile(1.0), std::numeric_limits<Nanos>::max());
  expect_within_bin(h.quantile(0.3), 100, 0.3);

  Histogram one;
  one.add(30'000'000'000);
  EXPECT_EQ(one.quantile(0.5), 30'000'000'000);  // the overflow bin reports the max
}

TEST(Histogram, MergeEqualsAddingEverythingToOne) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<Nanos> dist(0, 50'000'000);
  Histogram a, b, all;
  for (int i = 0; i < 10'000; ++i) {
    const Nanos v = dist(rng);
    (i % 3 == 0 ? a : b).add(v);
    all.add(v);
  }
  Histogram merged = a;
  merged.merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_NEAR(merged.mean(), all.mean(), 1e-6 * all.mean());
  for (std::size_t i = 0; i < Histogram::kBins; ++i)
    ASSERT_EQ(merged.bin_count(i), all.bin_count(i));
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(merged.quantile(q), all.quantile(q));

  // Merging an empty histogram changes nothing (its min sentinel must not leak).
  Histogram empty;
  merged.merge(empty);
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.count(), all.count());
  // Merging into an empty one copies.
  empty.merge(a);
  EXPECT_EQ(empty.count(), a.count());
  EXPECT_EQ(empty.min(), a.min());
  EXPECT_EQ(empty.max(), a.max());
}

TEST(Histogram, ResetForgetsEverything) {
  Histogram h;
  for (Nanos v = 1; v < 100'000; v *= 3) h.add(v);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.quantile(0.99), 0);
  for (std::size_t i = 0; i < Histogram::kBins; ++i) ASSERT_EQ(h.bin_count(i), 0u);
  h.add(500);
  EXPECT_EQ(h.min(), 500);  // the minimum starts again too
  EXPECT_EQ(h.max(), 500);
}

TEST(Histogram, QuantileArgumentOutOfRangeIsClamped) {
  Histogram h;
  h.add(10);
  h.add(20);
  EXPECT_EQ(h.quantile(-1.0), 10);
  EXPECT_EQ(h.quantile(2.0), 20);
  EXPECT_EQ(h.quantile(std::nan("")), 10);
}

}  // namespace
}  // namespace jamnet
