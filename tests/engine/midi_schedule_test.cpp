#include "jamnet/engine/midi_schedule.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>

namespace jamnet::engine {
namespace {

constexpr std::uint32_t kRate = 48'000;
constexpr std::uint32_t kFrames = 256;
constexpr Nanos kStart = 5'000'000'000;  // an arbitrary cycle start on the monotonic clock

// Usable in constant expressions (the audio thread can fold it where it wants).
static_assert(sample_offset_for(kStart + 1'000'000, kStart, kRate, kFrames) == 48);
static_assert(!due_in_cycle(kStart + 10'000'000, kStart, kRate, kFrames));

TEST(MidiSchedule, ExactOffsets) {
  EXPECT_EQ(sample_offset_for(kStart, kStart, kRate, kFrames), 0u);
  EXPECT_EQ(sample_offset_for(kStart + 1'000'000, kStart, kRate, kFrames), 48u);  // 1 ms
  EXPECT_EQ(sample_offset_for(kStart + 2'500'000, kStart, kRate, kFrames), 120u);
  EXPECT_EQ(sample_offset_for(kStart + 125'000, kStart, 8'000, 64), 1u);       // one frame at 8 kHz
  EXPECT_EQ(sample_offset_for(kStart + 1'000'000, kStart, 44'100, 512), 44u);  // 44.1
  bool late = true;
  EXPECT_EQ(sample_offset_for(kStart + 3'000'000, kStart, kRate, kFrames, &late), 144u);
  EXPECT_FALSE(late);
  EXPECT_TRUE(due_in_cycle(kStart + 3'000'000, kStart, kRate, kFrames));
}

TEST(MidiSchedule, RoundsToTheNearestFrameTiesLater) {
  // At 48 kHz a frame is 20833.3 ns; 1.5 frames is exactly 31250 ns.
  EXPECT_EQ(sample_offset_for(kStart + 31'249, kStart, kRate, kFrames), 1u);
  EXPECT_EQ(sample_offset_for(kStart + 31'250, kStart, kRate, kFrames), 2u);    // tie: later
  EXPECT_EQ(sample_offset_for(kStart + 208'333, kStart, kRate, kFrames), 10u);  // 9.99998
  EXPECT_EQ(sample_offset_for(kStart + 197'916, kStart, kRate, kFrames), 9u);   // 9.49997
  EXPECT_EQ(sample_offset_for(kStart + 197'917, kStart, kRate, kFrames), 10u);  // 9.50002
  // 1 kHz: 1 ms per frame, tie at 0.5 ms.
  EXPECT_EQ(sample_offset_for(kStart + 499'999, kStart, 1'000, 16), 0u);
  EXPECT_EQ(sample_offset_for(kStart + 500'000, kStart, 1'000, 16), 1u);
}

TEST(MidiSchedule, LateEventsPlayAtOnce) {
  bool late = false;
  EXPECT_EQ(sample_offset_for(kStart - 1'000'000, kStart, kRate, kFrames, &late), 0u);
  EXPECT_TRUE(late);
  EXPECT_TRUE(due_in_cycle(kStart - 1'000'000, kStart, kRate, kFrames));
  // Half a frame (10416.7 ns) early still rounds onto frame 0: not late.
  EXPECT_EQ(sample_offset_for(kStart - 10'416, kStart, kRate, kFrames, &late), 0u);
  EXPECT_FALSE(late);
  EXPECT_EQ(sample_offset_for(kStart - 10'417, kStart, kRate, kFrames, &late), 0u);
  EXPECT_TRUE(late);
  EXPECT_EQ(sample_offset_for(kStart - 1, kStart, kRate, kFrames, &late), 0u);
  EXPECT_FALSE(late);
  // Seconds late.
  EXPECT_EQ(sample_offset_for(kStart - 4'000'000'000, kStart, kRate, kFrames, &late), 0u);
  EXPECT_TRUE(late);
}

TEST(MidiSchedule, EventsBeyondTheCycleAreClampedAndNotDue) {
  // 256 frames at 48 kHz: 5333333.3 ns; frame 255.5 is at 5322916.7 ns.
  bool late = true;
  EXPECT_EQ(sample_offset_for(kStart + 5'322'916, kStart, kRate, kFrames, &late), 255u);
  EXPECT_FALSE(late);
  EXPECT_TRUE(due_in_cycle(kStart + 5'322'916, kStart, kRate, kFrames));
  EXPECT_EQ(sample_offset_for(kStart + 5'322'917, kStart, kRate, kFrames, &late), 255u);
  EXPECT_FALSE(late);
  EXPECT_FALSE(due_in_cycle(kStart + 5'322'917, kStart, kRate, kFrames));
  EXPECT_EQ(sample_offset_for(kStart + 10'000'000, kStart, kRate, kFrames), 255u);
  EXPECT_FALSE(due_in_cycle(kStart + 10'000'000, kStart, kRate, kFrames));
  EXPECT_EQ(sample_offset_for(kStart + 3'600'000'000'000, kStart, kRate, kFrames), 255u);
}

TEST(MidiSchedule, EachEventBelongsToExactlyOneOfTwoAdjacentCycles) {
  // 480 frames at 48 kHz: cycles exactly 10 ms apart.
  constexpr std::uint32_t kCycle = 480;
  constexpr Nanos kCycleNs = 10'000'000;
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<Nanos> pick(0, 2 * kCycleNs - 1);
  for (int i = 0; i < 100'000; ++i) {
    const Nanos delta = pick(rng);
    const Nanos ev = kStart + delta;
    bool late0 = false, late1 = false;
    const std::uint32_t off0 = sample_offset_for(ev, kStart, kRate, kCycle, &late0);
    const std::uint32_t off1 = sample_offset_for(ev, kStart + kCycleNs, kRate, kCycle, &late1);
    const bool in0 = due_in_cycle(ev, kStart, kRate, kCycle) && !late0;
    const bool in1 = due_in_cycle(ev, kStart + kCycleNs, kRate, kCycle) && !late1;
    // The frame is round(delta * rate / 1e9), computed here exactly in integers.
    const std::int64_t want = (delta * kRate + 500'000'000) / 1'000'000'000;
    if (want >= 2 * kCycle) {
      // Rounds into the third cycle: due in neither of these two.
      ASSERT_FALSE(in0 || in1) << delta;
      continue;
    }
    ASSERT_NE(in0, in1) << delta;
    ASSERT_EQ(in0 ? off0 : kCycle + off1, want) << delta;
  }
}

TEST(MidiSchedule, ExtremeInputsNeitherOverflowNorMisplace) {
  constexpr Nanos kMin = std::numeric_limits<Nanos>::min();
  constexpr Nanos kMax = std::numeric_limits<Nanos>::max();
  constexpr std::uint32_t kHugeRate = std::numeric_limits<std::uint32_t>::max();
  bool late = false;
  EXPECT_EQ(sample_offset_for(kMax, kMin, kHugeRate, kHugeRate, &late), kHugeRate - 1);
  EXPECT_FALSE(late);
  EXPECT_FALSE(due_in_cycle(kMax, kMin, kHugeRate, kHugeRate));
  EXPECT_EQ(sample_offset_for(kMin, kMax, kHugeRate, kHugeRate, &late), 0u);
  EXPECT_TRUE(late);
  // Almost a second ahead at a huge rate and cycle: exact, no overflow.
  EXPECT_EQ(sample_offset_for(999'999'999, 0, 1'000'000'000, 1'000'000'000), 999'999'999u);
  EXPECT_EQ(sample_offset_for(500'000'000, 0, kHugeRate, kHugeRate),
            2'147'483'648u);  // 2147483647.5
  EXPECT_EQ(sample_offset_for(4'000'000'000, 0, kHugeRate, kHugeRate), kHugeRate - 1);
  // Degenerate cycles: nothing is due.
  EXPECT_FALSE(due_in_cycle(kStart, kStart, kRate, 0));
  EXPECT_EQ(sample_offset_for(kStart + 1000, kStart, kRate, 0), 0u);
  EXPECT_FALSE(due_in_cycle(kStart, kStart, 0, kFrames));
}

}  // namespace
}  // namespace jamnet::engine
