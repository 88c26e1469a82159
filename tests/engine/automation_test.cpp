#include "jamnet/engine/automation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace jamnet::engine {
namespace {

// The reference: deduplicate through a map (a later insert overwrites, so the
// last point given on a frame wins) and scan it linearly, as the old O(n)
// lookup did.
class ReferenceLane {
 public:
  ReferenceLane(const std::vector<AutomationPoint>& raw, float default_value)
      : default_value_(default_value) {
    for (const auto& p : raw) sorted_[p.frame] = p;
  }

  float value_at(std::uint64_t frame) const {
    if (sorted_.empty()) return default_value_;
    const AutomationPoint* prev = nullptr;
    for (const auto& [f, p] : sorted_) {
      if (f > frame) {
        if (prev == nullptr) return p.value;
        return AutomationLane::interpolate(*prev, p, frame);
      }
      prev = &p;
    }
    return prev->value;
  }

 private:
  std::map<std::uint64_t, AutomationPoint> sorted_;
  float default_value_;
};

std::vector<AutomationPoint> random_points(std::mt19937_64& rng, std::size_t n,
                                           std::uint64_t max_frame) {
  std::uniform_int_distribution<std::uint64_t> frame(0, max_frame);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::bernoulli_distribution step(0.3);
  std::vector<AutomationPoint> pts;
  for (std::size_t i = 0; i < n; ++i) {
    pts.push_back({frame(rng), value(rng), step(rng) ? Curve::kStep : Curve::kLinear});
  }
  return pts;
}

TEST(Automation, EmptyLaneHasDefaultValue) {
  const AutomationLane lane(0.75f);
  EXPECT_TRUE(lane.empty());
  EXPECT_EQ(lane.value_at(0), 0.75f);
  EXPECT_EQ(lane.value_at(123456789), 0.75f);
  AutomationCursor cursor(&lane);
  EXPECT_EQ(cursor.next(5), 0.75f);
  std::vector<float> out(16, -9.0f);
  cursor.fill(0, out);
  for (float v : out) EXPECT_EQ(v, 0.75f);
}

TEST(Automation, SortsAndLastDuplicateWins) {
  const AutomationLane lane({{300, 3.0f}, {100, 1.0f}, {200, 2.0f}, {100, 9.0f}, {200, 8.0f}});
  ASSERT_EQ(lane.size(), 3u);
  EXPECT_EQ(lane.points()[0].frame, 100u);
  EXPECT_EQ(lane.points()[0].value, 9.0f);
  EXPECT_EQ(lane.points()[1].frame, 200u);
  EXPECT_EQ(lane.points()[1].value, 8.0f);
  EXPECT_EQ(lane.points()[2].value, 3.0f);
}

TEST(Automation, LinearInterpolationAndEnds) {
  const AutomationLane lane({{100, 0.0f}, {200, 1.0f}, {400, -1.0f}});
  EXPECT_EQ(lane.value_at(0), 0.0f);  // before the first point: the first value
  EXPECT_EQ(lane.value_at(100), 0.0f);
  EXPECT_FLOAT_EQ(lane.value_at(125), 0.25f);
  EXPECT_FLOAT_EQ(lane.value_at(150), 0.5f);
  EXPECT_EQ(lane.value_at(200), 1.0f);  // exactly on a point: that point's value
  EXPECT_FLOAT_EQ(lane.value_at(300), 0.0f);
  EXPECT_FLOAT_EQ(lane.value_at(350), -0.5f);
  EXPECT_EQ(lane.value_at(400), -1.0f);
  EXPECT_EQ(lane.value_at(1'000'000'000'000), -1.0f);  // after the last: the last value
}

TEST(Automation, StepCurvesHoldUntilTheNextPoint) {
  const AutomationLane lane(
      {{0, 0.2f, Curve::kStep}, {10, 0.6f, Curve::kLinear}, {20, 1.0f, Curve::kStep}, {30, 0.0f}});
  for (std::uint64_t f = 0; f < 10; ++f) EXPECT_EQ(lane.value_at(f), 0.2f) << f;
  EXPECT_EQ(lane.value_at(10), 0.6f);
  EXPECT_FLOAT_EQ(lane.value_at(15), 0.8f);  // linear from 10 to 20
  for (std::uint64_t f = 20; f < 30; ++f) EXPECT_EQ(lane.value_at(f), 1.0f) << f;
  EXPECT_EQ(lane.value_at(30), 0.0f);
  EXPECT_EQ(lane.value_at(31), 0.0f);
}

TEST(Automation, SinglePointIsConstant) {
  const AutomationLane lane({{500, 0.3f}});
  EXPECT_EQ(lane.value_at(0), 0.3f);
  EXPECT_EQ(lane.value_at(500), 0.3f);
  EXPECT_EQ(lane.value_at(501), 0.3f);
}

TEST(Automation, LongSessionFramesInterpolateInDouble) {
  // Frames past 2^24 lose precision in float; the ramp must still be exact.
  const std::uint64_t base = std::uint64_t{1} << 40;
  const AutomationLane lane({{base, 0.0f}, {base + 1000, 1.0f}});
  EXPECT_FLOAT_EQ(lane.value_at(base + 1), 0.001f);
  EXPECT_FLOAT_EQ(lane.value_at(base + 999), 0.999f);
}

TEST(Automation, ValueAtMatchesLinearScanOnRandomLanes) {
  std::mt19937_64 rng(42);
  for (int lane_no = 0; lane_no < 60; ++lane_no) {
    const std::size_t n = static_cast<std::size_t>(lane_no * 7 % 97);
    // A small frame range forces many duplicates on some lanes.
    const std::uint64_t max_frame = lane_no % 3 == 0 ? 50 : 100'000;
    const auto raw = random_points(rng, n, max_frame);
    const AutomationLane lane(raw, 0.5f);
    const ReferenceLane reference(raw, 0.5f);
    std::uniform_int_distribution<std::uint64_t> q(0, max_frame + 100);
    for (int i = 0; i < 2000; ++i) {
      const std::uint64_t f = q(rng);
      ASSERT_EQ(lane.value_at(f), reference.value_at(f)) << "lane " << lane_no << " frame " << f;
    }
    // On and around every point, where off-by-ones live.
    for (const auto& p : raw) {
      for (std::uint64_t f : {p.frame == 0 ? 0 : p.frame - 1, p.frame, p.frame + 1}) {
        ASSERT_EQ(lane.value_at(f), reference.value_at(f));
      }
    }
  }
}

TEST(Automation, BinarySearchProbesAreLogarithmic) {
  std::mt19937_64 rng(7);
  for (std::size_t n : {1u, 2u, 3u, 7u, 8u, 100u, 1000u, 65536u, 100000u}) {
    std::vector<AutomationPoint> pts;
    for (std::size_t i = 0; i < n; ++i) pts.push_back({i * 10, static_cast<float>(i)});
    const AutomationLane lane(pts);
    const std::size_t bound = std::bit_width(n);  // floor(log2 n) + 1
    std::uniform_int_distribution<std::uint64_t> q(0, n * 10 + 10);
    std::size_t worst = 0;
    for (int i = 0; i < 2000; ++i) {
      std::size_t probes = 0;
      const std::uint64_t f = q(rng);
      const std::size_t idx = lane.segment_index(f, &probes);
      ASSERT_EQ(idx, f / 10 < n ? f / 10 : n - 1);
      worst = std::max(worst, probes);
    }
    EXPECT_LE(worst, bound) << "n=" << n;
    EXPECT_GE(worst, bound - 1) << "n=" << n;  // and it is a real search, not a shortcut
  }
}

TEST(Automation, CursorMatchesValueAtForMonotonicPlayhead) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 20; ++round) {
    const auto raw = random_points(rng, 1 + static_cast<std::size_t>(round) * 13, 20'000);
    const AutomationLane lane(raw, -2.0f);
    AutomationCursor cursor(&lane);
    for (std::uint64_t f = 0; f < 21'000; ++f) {
      ASSERT_EQ(cursor.next(f), lane.value_at(f)) << "round " << round << " frame " << f;
    }
  }
}

TEST(Automation, CursorAdvanceTouchesConstantPointsPerSample) {
  // 100k points, one every 8 frames; a sample-by-sample sweep must walk each
  // point once (amortised O(1)), searching only at the start.
  constexpr std::size_t kPoints = 100'000;
  std::vector<AutomationPoint> pts;
  for (std::size_t i = 0; i < kPoints; ++i) pts.push_back({i * 8, static_cast<float>(i % 17)});
  const AutomationLane lane(pts);
  AutomationCursor cursor(&lane);
  const std::uint64_t frames = kPoints * 8 + 100;
  for (std::uint64_t f = 0; f < frames; ++f) cursor.next(f);
  EXPECT_EQ(cursor.searches(), 1u);
  EXPECT_LE(cursor.linear_steps(), kPoints);
  EXPECT_GE(cursor.linear_steps(), kPoints - 1);

  // Dense points (several per sample step): each call walks at most
  // kMaxLinearSteps points before it binary searches the rest.
  AutomationCursor jumpy(&lane);
  std::uint64_t calls = 0;
  for (std::uint64_t f = 0; f < frames; f += 1000, ++calls) {
    ASSERT_EQ(jumpy.next(f), lane.value_at(f));
  }
  EXPECT_LE(jumpy.linear_steps(), calls * AutomationCursor::kMaxLinearSteps);
  EXPECT_LE(jumpy.searches(), calls);
}

TEST(Automation, CursorHandlesBackwardAndRandomJumps) {
  std::mt19937_64 rng(11);
  const auto raw = random_points(rng, 300, 50'000);
  const AutomationLane lane(raw);
  AutomationCursor cursor(&lane);
  std::uniform_int_distribution<std::uint64_t> q(0, 51'000);
  std::uniform_int_distribution<int> run(0, 40);
  std::uint64_t searches_before = 0;
  for (int i = 0; i < 3000; ++i) {
    std::uint64_t f = q(rng);
    // A jump, then a short monotonic run from there.
    const int len = run(rng);
    for (int k = 0; k < len; ++k, ++f) ASSERT_EQ(cursor.next(f), lane.value_at(f)) << f;
    searches_before = cursor.searches();
  }
  EXPECT_GT(searches_before, 0u);

  // A backward jump into an earlier segment must search, not walk on.
  const AutomationLane simple({{0, 0.0f}, {100, 1.0f}, {200, 0.0f}});
  AutomationCursor c(&simple);
  EXPECT_FLOAT_EQ(c.next(150), 0.5f);
  const auto s = c.searches();
  EXPECT_FLOAT_EQ(c.next(50), 0.5f);
  EXPECT_EQ(c.searches(), s + 1);
  EXPECT_FLOAT_EQ(c.next(150), 0.5f);
}

TEST(Automation, CursorFollowsALaneSwap) {
  const AutomationLane a({{0, 0.0f}, {100, 1.0f}});
  const AutomationLane b({{0, 5.0f}});
  AutomationCursor c(&a);
  EXPECT_FLOAT_EQ(c.next(50), 0.5f);
  c.set_lane(&b);
  EXPECT_EQ(c.next(50), 5.0f);
  c.set_lane(nullptr);
  EXPECT_EQ(c.next(50), 0.0f);
}

// The playhead of a block under a loop, computed independently of fill().
std::vector<std::uint64_t> playheads(std::uint64_t start, std::size_t n, LoopRegion loop) {
  std::vector<std::uint64_t> out;
  std::uint64_t p = start;
  const bool looping = loop.enabled && loop.start < loop.end && start < loop.end;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(p);
    p = (looping && p + 1 == loop.end) ? loop.start : p + 1;
  }
  return out;
}

TEST(Automation, FillWrapsALoopAtEveryOffsetInsideABlock) {
  const AutomationLane lane(
      {{0, 0.0f}, {1000, 1.0f}, {1030, -1.0f, Curve::kStep}, {1100, 0.25f}, {2000, 0.75f}});
  constexpr std::size_t kBlock = 64;
  for (std::uint64_t loop_start : {0u, 500u, 1010u, 1040u}) {
    for (std::size_t offset = 0; offset <= kBlock; ++offset) {
      // Three blocks per case; the loop end lands `offset` frames into the second.
      const std::uint64_t block0 = 1000;
      const LoopRegion loop{loop_start, block0 + kBlock + offset, true};
      AutomationCursor cursor(&lane);
      std::uint64_t playhead = block0;
      for (int b = 0; b < 3; ++b) {
        std::vector<float> out(kBlock);
        const auto expect_frames = playheads(playhead, kBlock, loop);
        const std::uint64_t next = cursor.fill(playhead, out, loop);
        for (std::size_t i = 0; i < kBlock; ++i) {
          ASSERT_EQ(out[i], lane.value_at(expect_frames[i]))
              << "loop_start " << loop_start << " offset " << offset << " block " << b << " sample "
              << i;
        }
        const std::uint64_t last = expect_frames.back();
        ASSERT_EQ(next, last + 1 == loop.end ? loop.start : last + 1);
        playhead = next;
      }
    }
  }
}

TEST(Automation, FillWithALoopShorterThanTheBlockWrapsRepeatedly) {
  const AutomationLane lane({{100, 0.0f}, {110, 1.0f}});
  const LoopRegion loop{100, 110, true};
  AutomationCursor cursor(&lane);
  std::vector<float> out(64);
  const std::uint64_t next = cursor.fill(95, out, loop);
  const auto frames = playheads(95, out.size(), loop);
  int wraps = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], lane.value_at(frames[i])) << i;
    if (i > 0 && frames[i] < frames[i - 1]) ++wraps;
  }
  EXPECT_EQ(wraps, 5);
  EXPECT_EQ(out[5], 0.0f);  // frame 100
  EXPECT_FLOAT_EQ(out[14], 0.9f);
  EXPECT_EQ(out[15], 0.0f);  // wrapped back to 100
  EXPECT_EQ(next, frames.back() + 1 == 110 ? 100u : frames.back() + 1);
}

TEST(Automation, FillIgnoresDisabledInvalidOrAlreadyPassedLoops) {
  const AutomationLane lane({{0, 0.0f}, {1000, 1.0f}});
  for (const LoopRegion loop : {LoopRegion{10, 20, false}, LoopRegion{20, 20, true},
                                LoopRegion{30, 10, true}, LoopRegion{0, 40, true}}) {
    AutomationCursor cursor(&lane);
    std::vector<float> out(32);
    // For the last one the playhead (50) is already past the loop's end.
    EXPECT_EQ(cursor.fill(50, out, loop), 82u);
    for (std::size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], lane.value_at(50 + i));
  }
}

TEST(Automation, FillWithRandomLoopsMatchesValueAt) {
  std::mt19937_64 rng(99);
  const auto raw = random_points(rng, 500, 10'000);
  const AutomationLane lane(raw);
  std::uniform_int_distribution<std::uint64_t> pos(0, 10'000);
  std::uniform_int_distribution<std::uint64_t> len(1, 700);
  std::uniform_int_distribution<std::size_t> block(1, 512);
  for (int round = 0; round < 100; ++round) {
    const std::uint64_t ls = pos(rng);
    const LoopRegion loop{ls, ls + len(rng), true};
    AutomationCursor cursor(&lane);
    std::uint64_t playhead = ls > 300 ? ls - 300 : 0;
    for (int b = 0; b < 20; ++b) {
      std::vector<float> out(block(rng));
      const auto frames = playheads(playhead, out.size(), loop);
      playhead = cursor.fill(playhead, out, loop);
      for (std::size_t i = 0; i < out.size(); ++i) {
        ASSERT_EQ(out[i], lane.value_at(frames[i])) << "round " << round << " block " << b;
      }
    }
  }
}

}  // namespace
}  // namespace jamnet::engine
