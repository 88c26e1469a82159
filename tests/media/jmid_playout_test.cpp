#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "jamnet/media/jmid/playout.hpp"

namespace jamnet::media::jmid {
namespace {

TEST(JmidPlayoutClock, ConvergesToTrueOffsetPlusMinimumJitter) {
  constexpr Nanos kTrueOffset = 123'456'789'000;  // local clock ahead of the sender's
  constexpr Nanos kBaseDelay = 1'500'000;         // the fastest the path ever is
  PlayoutClock clock(5'000'000, 2'000'000'000);
  EXPECT_FALSE(clock.ready());
  std::mt19937_64 rng(17);
  Nanos min_jitter = INT64_MAX;
  for (int i = 0; i < 1000; ++i) {
    const std::int64_t sender_ts = 1'000'000'000 + i * 1'000'000;
    const Nanos jitter = kBaseDelay + static_cast<Nanos>(rng() % 4'000'000);
    min_jitter = std::min(min_jitter, jitter);
    clock.observe(sender_ts, sender_ts + kTrueOffset + jitter);
    EXPECT_TRUE(clock.ready());
    EXPECT_EQ(clock.offset(), kTrueOffset + min_jitter);  // whole run fits in the window
  }
  EXPECT_LT(clock.offset() - (kTrueOffset + kBaseDelay), 50'000);

  // play_at: sender time + offset + latency; error vs. the ideal is only the
  // min-jitter estimate error, and no event plays before it could arrive.
  const std::int64_t ts = 5'000'000'000;
  EXPECT_EQ(clock.play_at(ts), ts + clock.offset() + 5'000'000);
  EXPECT_GE(clock.play_at(ts), ts + kTrueOffset + kBaseDelay + clock.latency());
}

TEST(JmidPlayoutClock, SetOffsetOverridesEstimate) {
  PlayoutClock clock(1'000, 1'000'000);
  clock.set_offset(42);
  EXPECT_TRUE(clock.ready());
  EXPECT_EQ(clock.offset(), 42);
  EXPECT_EQ(clock.play_at(100), 100 + 42 + 1'000);
  clock.observe(0, 5'000);
  EXPECT_EQ(clock.offset(), 42);
  clock.clear_offset();
  EXPECT_EQ(clock.offset(), 5'000);
}

TEST(JmidPlayoutClock, WindowSlidesAndForgetsOldLowSample) {
  constexpr Nanos kWindow = 1'000'000;
  PlayoutClock clock(0, kWindow);
  clock.observe(0, 100);        // a lucky, very fast packet: offset 100
  clock.observe(1'000, 1'900);  // 900
  clock.observe(2'000, 2'500);  // 500
  EXPECT_EQ(clock.offset(), 100);
  clock.observe(900'000, 900'700);  // 700; the low sample is still in the window
  EXPECT_EQ(clock.offset(), 100);
  clock.observe(1'001'000, 1'001'800);  // local 1'001'800: samples before 1'800 have left
  EXPECT_EQ(clock.offset(), 500);
  clock.observe(1'100'000, 1'100'900);  // the 500 sample (local 2'500) has left too
  EXPECT_EQ(clock.offset(), 700);
  clock.observe(2'000'000, 2'000'300);  // a new minimum replaces everything before it
  EXPECT_EQ(clock.offset(), 300);
}

TEST(JmidPlayoutClock, FollowsDrift) {
  // The sender's clock runs 100 ppm slow: the estimate follows within a window.
  constexpr Nanos kWindow = 200'000'000;
  PlayoutClock clock(0, kWindow);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20'000; ++i) {
    const Nanos local = static_cast<Nanos>(i) * 1'000'000;
    const Nanos true_offset = local / 10'000;  // grows 100 us per second
    const Nanos jitter = 1'000'000 + static_cast<Nanos>(rng() % 2'000'000);
    clock.observe(local - true_offset - jitter, local);
    if (i > 1000) {
      const Nanos error = clock.offset() - true_offset;  // ~ min jitter, 1 ms
      EXPECT_GE(error, 1'000'000 - 25'000) << i;         // less only by the drift inside one window
      EXPECT_LE(error, 1'000'000 + 150'000) << i;
    }
  }
}

protocol::jmid::Event numbered(std::uint64_t seq) {
  protocol::jmid::Event e;
  e.seq = seq;
  return e;
}

TEST(JmidPlayoutQueue, PopsDueEventsInTimeThenInsertionOrder) {
  PlayoutQueue<> q;
  EXPECT_FALSE(q.next_due().has_value());
  q.push(300, numbered(1));
  q.push(100, numbered(2));
  q.push(200, numbered(3));
  q.push(100, numbered(4));  // same time as 2: after it
  q.push(100, numbered(5));
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.next_due(), 100);
  std::vector<std::pair<Nanos, protocol::jmid::Event>> out;
  q.pop_due(99, out);
  EXPECT_TRUE(out.empty());
  q.pop_due(200, out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].second.seq, 2u);
  EXPECT_EQ(out[1].second.seq, 4u);
  EXPECT_EQ(out[2].second.seq, 5u);
  EXPECT_EQ(out[3].second.seq, 3u);
  EXPECT_EQ(out[3].first, 200);
  EXPECT_EQ(q.next_due(), 300);
  q.pop_due(1'000, out);
  EXPECT_EQ(out.size(), 5u);
  EXPECT_EQ(out[4].second.seq, 1u);
  EXPECT_EQ(q.size(), 0u);
}

TEST(JmidPlayoutQueue, ManyRandomItemsComeOutSortedAndStable) {
  PlayoutQueue<> q;
  std::mt19937_64 rng(5);
  for (std::uint64_t i = 0; i < 5000; ++i) q.push(static_cast<Nanos>(rng() % 500), numbered(i));
  std::vector<std::pair<Nanos, protocol::jmid::Event>> out;
  for (Nanos now = 0; now < 600; now += 37) q.pop_due(now, out);
  ASSERT_EQ(out.size(), 5000u);
  for (std::size_t i = 1; i < out.size(); ++i) {
    ASSERT_LE(out[i - 1].first, out[i].first);
    if (out[i - 1].first == out[i].first) {
      ASSERT_LT(out[i - 1].second.seq, out[i].second.seq);
    }
  }
}

}  // namespace
}  // namespace jamnet::media::jmid
