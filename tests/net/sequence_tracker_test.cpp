#include "jamnet/net/sequence_tracker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace jamnet::net {
namespace {

using V = SequenceTracker::Verdict;

TEST(SequenceTracker, InOrderStreamHasNoLoss) {
  SequenceTracker t;
  for (std::uint32_t s = 100; s < 1100; ++s) ASSERT_EQ(t.on_frame(s), V::kNew);
  EXPECT_EQ(t.counts().received, 1000u);
  EXPECT_EQ(t.counts().lost, 0u);
  EXPECT_EQ(t.counts().reordered, 0u);
}

TEST(SequenceTracker, GapsCountAsLostUntilTheyArrive) {
  SequenceTracker t;
  t.on_frame(1);
  t.on_frame(2);
  t.on_frame(5);  // 3 and 4 missing
  EXPECT_EQ(t.counts().lost, 2u);
  EXPECT_EQ(t.on_frame(3), V::kNew);  // late arrival fills a gap
  EXPECT_EQ(t.counts().lost, 1u);
  EXPECT_EQ(t.counts().reordered, 1u);
  EXPECT_EQ(t.counts().received, 4u);
  EXPECT_EQ(t.counts().expected(), 5u);
}

TEST(SequenceTracker, DuplicatesAreDetectedAndNotDelivered) {
  SequenceTracker t;
  for (std::uint32_t s = 0; s < 10; ++s) t.on_frame(s);
  EXPECT_EQ(t.on_frame(9), V::kDuplicate);
  EXPECT_EQ(t.on_frame(3), V::kDuplicate);
  EXPECT_EQ(t.counts().duplicated, 2u);
  EXPECT_EQ(t.counts().received, 10u);
}

TEST(SequenceTracker, WrapsAroundThe32BitSpace) {
  SequenceTracker t;
  for (std::uint32_t i = 0; i < 20; ++i) ASSERT_EQ(t.on_frame(0xFFFFFFF6u + i), V::kNew);
  EXPECT_EQ(t.counts().lost, 0u);
  EXPECT_EQ(t.on_frame(0xFFFFFFFFu), V::kDuplicate);
  EXPECT_EQ(t.on_frame(2), V::kDuplicate);
}

TEST(SequenceTracker, FramesBehindTheWindowAreDroppedAsTooOld) {
  SequenceTracker t;
  for (std::uint32_t s = 0; s < SequenceTracker::kWindow + 100; ++s) t.on_frame(s);
  EXPECT_EQ(t.on_frame(10), V::kTooOld);
  EXPECT_EQ(t.counts().too_old, 1u);
}

TEST(SequenceTracker, SenderRestartWithNewRandomStartResyncs) {
  SequenceTracker t;
  for (std::uint32_t s = 1000; s < 1050; ++s) t.on_frame(s);
  EXPECT_EQ(t.on_frame(0x80000000u), V::kNew);
  EXPECT_EQ(t.on_frame(0x80000001u), V::kNew);
  EXPECT_EQ(t.counts().resyncs, 1u);
  EXPECT_EQ(t.counts().lost, 0u);
  EXPECT_EQ(t.counts().received, 52u);
  EXPECT_EQ(t.on_frame(1049), V::kNew) << "old numbering is far away again: another resync";
}

TEST(SequenceTracker, RandomLossDuplicationAndReorderingAreAccountedExactly) {
  std::mt19937 rng(7);
  std::vector<std::uint32_t> arrivals;
  std::uint64_t dropped = 0;
  const std::uint32_t start = 0xFFFFF000u;  // crosses the wrap
  const std::uint32_t n = 20000;
  for (std::uint32_t i = 0; i < n - 1; ++i) {
    if (i > 0 && rng() % 10 == 0) {
      ++dropped;
      continue;
    }
    arrivals.push_back(start + i);
    if (rng() % 20 == 0) arrivals.push_back(start + i);  // duplicate
  }
  arrivals.push_back(start + n - 1);
  // Local reordering: swap neighbours now and then (never the last frame).
  for (std::size_t i = 1; i + 2 < arrivals.size(); ++i) {
    if (rng() % 15 == 0) std::swap(arrivals[i], arrivals[i + 1]);
  }
  SequenceTracker t;
  std::vector<bool> delivered(n, false);
  for (auto s : arrivals) {
    if (t.on_frame(s) == V::kNew) {
      const std::uint32_t idx = s - start;
      ASSERT_FALSE(delivered[idx]) << "delivered twice: " << idx;
      delivered[idx] = true;
    }
  }
  EXPECT_EQ(t.counts().received, n - dropped);
  EXPECT_EQ(t.counts().lost, dropped);
  EXPECT_GT(t.counts().duplicated, 0u);
  EXPECT_GT(t.counts().reordered, 0u);
}

}  // namespace
}  // namespace jamnet::net
