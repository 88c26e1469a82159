#include "jamnet/core/mpsc_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace jamnet {
namespace {

TEST(MpscQueue, CapacityRoundsUpToPowerOfTwoAtLeastTwo) {
  EXPECT_EQ(MpscQueue<int>(0).capacity(), 2u);
  EXPECT_EQ(MpscQueue<int>(1).capacity(), 2u);
  EXPECT_EQ(MpscQueue<int>(2).capacity(), 2u);
  EXPECT_EQ(MpscQueue<int>(5).capacity(), 8u);
  EXPECT_EQ(MpscQueue<int>(4097).capacity(), 8192u);
}

TEST(MpscQueue, FifoOrderFullAndEmpty) {
  MpscQueue<int> q(4);
  int out = -1;
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_EQ(out, -1);  // untouched when empty
  EXPECT_TRUE(q.empty_approx());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.try_push(i));
  EXPECT_FALSE(q.try_push(99));  // full: rejected, nothing overwritten
  EXPECT_EQ(q.size_approx(), 4u);
  ASSERT_TRUE(q.try_pop(out));
  EXPECT_EQ(out, 0);
  EXPECT_TRUE(q.try_push(4));  // one slot free again
  EXPECT_FALSE(q.try_push(100));
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(q.try_pop(out));
    EXPECT_EQ(out, i);
  }
  EXPECT_FALSE(q.try_pop(out));
  EXPECT_EQ(out, 4);
  EXPECT_EQ(q.size_approx(), 0u);
}

// A moved-in value leaves the producer holding nothing, so the consumer's
// drop is the last one; a refused move leaves the value with the producer.
TEST(MpscQueue, MovedValuesLeaveTheProducerOnlyWhenTaken) {
  MpscQueue<std::shared_ptr<int>> q(2);
  auto a = std::make_shared<int>(1), b = std::make_shared<int>(2), c = std::make_shared<int>(3);
  const std::weak_ptr<int> wa = a;
  ASSERT_TRUE(q.try_push(std::move(a)));
  EXPECT_EQ(a, nullptr);
  ASSERT_TRUE(q.try_push(std::move(b)));
  EXPECT_FALSE(q.try_push(std::move(c)));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(*c, 3);
  std::shared_ptr<int> out;
  ASSERT_TRUE(q.try_pop(out));
  EXPECT_EQ(wa.use_count(), 1);
  out.reset();
  EXPECT_TRUE(wa.expired());
}

TEST(MpscQueue, SmallestCapacityDoesNotOverwrite) {
  // With capacity 1 the sequence numbers for "free" and "full" would be the
  // same and a second push would overwrite the first: the queue rounds up to 2.
  MpscQueue<int> q(1);
  EXPECT_TRUE(q.try_push(1));
  EXPECT_TRUE(q.try_push(2));
  EXPECT_FALSE(q.try_push(3));
  int out = 0;
  ASSERT_TRUE(q.try_pop(out));
  EXPECT_EQ(out, 1);
  ASSERT_TRUE(q.try_pop(out));
  EXPECT_EQ(out, 2);
  EXPECT_FALSE(q.try_pop(out));
}

TEST(MpscQueue, WrapsAroundManyTimes) {
  MpscQueue<std::uint64_t> q(8);
  std::uint64_t next_in = 0, next_out = 0, out = 0;
  for (int round = 0; round < 1000; ++round) {
    const int n = 1 + round % 8;
    for (int i = 0; i < n; ++i) ASSERT_TRUE(q.try_push(next_in++));
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(q.try_pop(out));
      ASSERT_EQ(out, next_out++);
    }
  }
  EXPECT_FALSE(q.try_pop(out));
}

TEST(MpscQueue, ProducersRejectedWhileFullLoseNothing) {
  // Four producers race to fill a small queue that nobody drains: exactly
  // `capacity` pushes succeed, the rest fail, and nothing is overwritten.
  constexpr int kProducers = 4;
  constexpr std::uint32_t kPerProducer = 20'000;
  MpscQueue<std::uint64_t> q(16);
  std::atomic<std::uint64_t> accepted{0}, rejected{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        if (q.try_push((std::uint64_t(p) << 32) | i)) {
          accepted.fetch_add(1, std::memory_order_relaxed);
        } else {
          rejected.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::vector<std::int64_t> last(kProducers, -1);
  std::uint64_t popped = 0, out_of_order = 0;
  std::uint64_t out = 0;
  for (auto& t : producers) t.join();
  while (q.try_pop(out)) {
    const auto p = static_cast<std::size_t>(out >> 32);
    const auto i = static_cast<std::int64_t>(out & 0xFFFFFFFF);
    out_of_order += i <= last[p];
    last[p] = i;
    ++popped;
  }
  EXPECT_EQ(accepted + rejected, std::uint64_t{kProducers} * kPerProducer);
  EXPECT_EQ(popped, accepted.load());
  EXPECT_EQ(popped, q.capacity());  // nobody popped while they pushed: exactly full
  EXPECT_EQ(out_of_order, 0u);
}

TEST(MpscQueue, FourProducersEveryItemExactlyOnceInProducerOrder) {
  constexpr int kProducers = 4;
  constexpr std::uint32_t kPerProducer = 100'000;
  MpscQueue<std::uint64_t> q(1024);
  std::atomic<bool> go{false};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        const std::uint64_t item = (std::uint64_t(p) << 32) | i;
        while (!q.try_push(item)) std::this_thread::yield();  // full: wait for the consumer
      }
    });
  }
  go.store(true, std::memory_order_release);

  std::vector<std::uint32_t> next(kProducers, 0);  // per producer: the index expected next
  std::vector<std::uint8_t> seen(std::size_t{kProducers} * kPerProducer, 0);
  std::uint64_t received = 0, duplicates = 0, out_of_order = 0, garbage = 0;
  std::uint64_t item = 0;
  while (received < std::uint64_t{kProducers} * kPerProducer) {
    if (!q.try_pop(item)) {
      std::this_thread::yield();
      continue;
    }
    ++received;
    const auto p = static_cast<std::size_t>(item >> 32);
    const auto i = static_cast<std::uint32_t>(item & 0xFFFFFFFF);
    if (p >= std::size_t{kProducers} || i >= kPerProducer) {
      ++garbage;  // not ASSERT: returning here would leave the producers unjoined
      continue;
    }
    duplicates += seen[p * kPerProducer + i]++ != 0;
    out_of_order += i != next[p];
    next[p] = i + 1;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(garbage, 0u);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(out_of_order, 0u);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kPerProducer);
  EXPECT_FALSE(q.try_pop(item));  // nothing extra
  EXPECT_EQ(q.size_approx(), 0u);
}

}  // namespace
}  // namespace jamnet
