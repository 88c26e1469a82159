#include "jamnet/core/spsc_queue.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <thread>

namespace jamnet {
namespace {

TEST(SpscQueue, CapacityRoundsUpToPowerOfTwo) {
  EXPECT_EQ(SpscQueue<int>(0).capacity(), 1u);
  EXPECT_EQ(SpscQueue<int>(1).capacity(), 1u);
  EXPECT_EQ(SpscQueue<int>(5).capacity(), 8u);
  EXPECT_EQ(SpscQueue<int>(8).capacity(), 8u);
  EXPECT_EQ(SpscQueue<int>(4097).capacity(), 8192u);
}

TEST(SpscQueue, FifoOrderFullAndEmpty) {
  SpscQueue<int> q(4);
  int out = -1;
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_EQ(out, -1);  // untouched when empty
  EXPECT_TRUE(q.empty_approx());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.try_push(i));
  EXPECT_FALSE(q.try_push(99));  // full: rejected, nothing overwritten
  EXPECT_EQ(q.size_approx(), 4u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(q.try_pop(out));
    EXPECT_EQ(out, i);
  }
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_EQ(q.size_approx(), 0u);
}

TEST(SpscQueue, WrapsAroundManyTimes) {
  SpscQueue<std::uint64_t> q(8);
  std::uint64_t next_in = 0, next_out = 0, out = 0;
  for (int round = 0; round < 1000; ++round) {
    const int n = 1 + round % 8;  // varying fill levels cross the wrap point
    for (int i = 0; i < n; ++i) ASSERT_TRUE(q.try_push(next_in++));
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(q.try_pop(out));
      ASSERT_EQ(out, next_out++);
    }
  }
  EXPECT_FALSE(q.try_pop(out));
}

TEST(SpscQueue, MovesOnlyTypes) {
  SpscQueue<std::unique_ptr<int>> q(2);
  EXPECT_TRUE(q.try_push(std::make_unique<int>(7)));
  std::unique_ptr<int> out;
  ASSERT_TRUE(q.try_pop(out));
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, 7);
}

// One producer and one consumer thread through a small ring: every item
// arrives, once, in order. Run under TSan to check the memory orders.
TEST(SpscQueue, TwoThreadStressKeepsOrderAndLosesNothing) {
  constexpr std::uint64_t kItems = 1'000'000;
  SpscQueue<std::uint64_t> q(64);  // small, so both full and empty happen often
  std::uint64_t full_spins = 0;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kItems; ++i) {
      while (!q.try_push(i)) {
        ++full_spins;
        std::this_thread::yield();
      }
    }
  });
  std::uint64_t expected = 0, errors = 0, empty_spins = 0, value = 0;
  while (expected < kItems) {
    if (q.try_pop(value)) {
      if (value != expected) ++errors;
      expected = value + 1;
    } else {
      ++empty_spins;
      std::this_thread::yield();
    }
  }
  producer.join();
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(expected, kItems);
  EXPECT_FALSE(q.try_pop(value));
  RecordProperty("full_spins", static_cast<int>(full_spins));
  RecordProperty("empty_spins", static_cast<int>(empty_spins));
}

}  // namespace
}  // namespace jamnet
