#include "jamnet/engine/click_track.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace jamnet::engine {
namespace {

constexpr std::uint32_t kRate = 48'000;

// Beat k's onset by the formula of the spec, computed here independently.
std::uint64_t onset(std::uint64_t origin, std::uint64_t k, double bpm, std::uint32_t rate = kRate) {
  return origin +
         static_cast<std::uint64_t>(std::llround(static_cast<double>(k) * 60.0 * rate / bpm));
}

// The expected output over [0, frames): at every sample, the latest onset at
// or before it plays its click table if still within it.
std::vector<float> expected_render(const ClickTrack& click, std::uint64_t origin, double bpm,
                                   int meter, std::size_t frames) {
  std::vector<float> out(frames, 0.0f);
  std::vector<std::pair<std::uint64_t, bool>> beats;
  for (std::uint64_t k = 0;; ++k) {
    const std::uint64_t f = onset(origin, k, bpm);
    if (f >= frames) break;
    beats.emplace_back(f, k % static_cast<std::uint64_t>(meter) == 0);
  }
  for (std::size_t b = 0; b < beats.size(); ++b) {
    const auto table = click.click_samples(beats[b].second);
    const std::uint64_t end = b + 1 < beats.size() ? beats[b + 1].first : frames;
    for (std::uint64_t f = beats[b].first; f < end && f - beats[b].first < table.size(); ++f) {
      out[f] = table[f - beats[b].first];
    }
  }
  return out;
}

std::vector<float> render_in_blocks(ClickTrack& click, std::size_t frames, std::size_t block) {
  std::vector<float> out(frames, 0.0f);
  for (std::size_t at = 0; at < frames; at += block) {
    const std::size_t n = std::min(block, frames - at);
    click.render(at, std::span<float>(out).subspan(at, n));
  }
  return out;
}

TEST(ClickTrack, ClickSoundsAreDistinctAndDecayToSilence) {
  const ClickTrack click(kRate);
  const auto accent = click.click_samples(true);
  const auto normal = click.click_samples(false);
  ASSERT_EQ(accent.size(), 960u);  // 20 ms at 48 kHz
  ASSERT_EQ(normal.size(), 960u);
  float peak_a = 0, peak_n = 0;
  for (float v : accent) peak_a = std::max(peak_a, std::abs(v));
  for (float v : normal) peak_n = std::max(peak_n, std::abs(v));
  EXPECT_GT(peak_a, peak_n);  // accent louder
  EXPECT_LE(peak_a, 1.0f);
  EXPECT_LT(std::abs(accent.back()), 1e-4f);
  // Higher pitch: count zero crossings in the first 5 ms.
  auto crossings = [](std::span<const float> t) {
    int n = 0;
    for (std::size_t i = 1; i < 240; ++i) n += (t[i - 1] < 0) != (t[i] < 0);
    return n;
  };
  EXPECT_GT(crossings(accent), crossings(normal));
}

TEST(ClickTrack, SeveralBeatsPerBlockEachAtItsExactSampleWithItsOwnDownbeat) {
  ClickTrack click(kRate);
  const double bpm = 2100.0;  // 1371.43 frames per beat: ~3 beats per 4096-frame block
  click.set_tempo(bpm);
  click.set_meter(4);
  constexpr std::uint32_t kBlock = 4096;
  std::array<ClickEvent, 16> events;
  std::uint64_t next_beat = 0;
  int blocks_with_several = 0;
  for (std::uint64_t start = 0; start < 200 * kBlock; start += kBlock) {
    const std::size_t n = click.beats_in(start, kBlock, events);
    if (n >= 2) ++blocks_with_several;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t want = onset(0, next_beat, bpm);
      ASSERT_EQ(events[i].beat_index, next_beat);
      ASSERT_EQ(start + events[i].offset, want) << "beat " << next_beat;
      ASSERT_EQ(events[i].downbeat, next_beat % 4 == 0) << "beat " << next_beat;
      ++next_beat;
    }
    ASSERT_EQ(onset(0, next_beat, bpm) >= start + kBlock, true);  // no beat skipped
  }
  EXPECT_GT(blocks_with_several, 150);
  // And the audio has them where the events say, accented on downbeats.
  std::vector<float> out = render_in_blocks(click, 50 * kBlock, kBlock);
  EXPECT_EQ(out, expected_render(click, 0, bpm, 4, out.size()));
}

TEST(ClickTrack, TwoThousandBpmIntegerGrid) {
  ClickTrack click(kRate);
  click.set_tempo(2000.0);  // exactly 1440 frames per beat
  click.set_meter(3);
  std::array<ClickEvent, 8> events;
  const std::size_t n = click.beats_in(4096, 4096, events);
  // Beats 3 (4320), 4 (5760), 5 (7200) lie in [4096, 8192); beat 3 is a downbeat in 3/4.
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(events[0].offset, 4320u - 4096u);
  EXPECT_EQ(events[0].beat_index, 3u);
  EXPECT_TRUE(events[0].downbeat);
  EXPECT_EQ(events[1].offset, 5760u - 4096u);
  EXPECT_FALSE(events[1].downbeat);
  EXPECT_EQ(events[2].offset, 7200u - 4096u);
  EXPECT_FALSE(events[2].downbeat);
  // Onset exactly on a block boundary belongs to the block it starts.
  EXPECT_EQ(click.beats_in(4320, 1, events), 1u);
  EXPECT_EQ(events[0].offset, 0u);
  EXPECT_EQ(click.beats_in(4319, 1, events), 0u);
  EXPECT_EQ(click.beats_in(4321, 1439, events), 0u);
  // A short output span truncates; asking again from the last offset + 1 goes on.
  std::array<ClickEvent, 2> two;
  EXPECT_EQ(click.beats_in(0, 8192, two), 2u);
  EXPECT_EQ(two[1].beat_index, 1u);
  EXPECT_EQ(click.beats_in(1441, 8192 - 1441, two), 2u);
  EXPECT_EQ(two[0].beat_index, 2u);
}

TEST(ClickTrack, SmallBlocksEqualOneBigBlockSampleExactly) {
  for (const double bpm : {60.0, 133.0, 2000.0, 4321.0, 10'000.0}) {
    ClickTrack click(kRate);
    click.set_tempo(bpm);
    click.set_meter(bpm > 1000 ? 5 : 4);
    click.set_origin(777);
    constexpr std::size_t kFrames = 5 * kRate;
    const auto big = render_in_blocks(click, kFrames, kFrames);
    const auto small = render_in_blocks(click, kFrames, 64);
    const auto odd = render_in_blocks(click, kFrames, 4093);
    ASSERT_EQ(big, small) << bpm;
    ASSERT_EQ(big, odd) << bpm;
    // 10000 bpm in one 5 s block: 833 beats, far more than render's event chunk.
    ASSERT_EQ(big, expected_render(click, 777, bpm, click.meter(), kFrames)) << bpm;
  }
}

TEST(ClickTrack, RandomBlockSizesEqualOneBlock) {
  ClickTrack click(44'100);
  click.set_tempo(187.5);
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::size_t> size(1, 3000);
  constexpr std::size_t kFrames = 400'000;
  std::vector<float> pieces(kFrames, 0.0f);
  for (std::size_t at = 0; at < kFrames;) {
    const std::size_t n = std::min(size(rng), kFrames - at);
    click.render(at, std::span<float>(pieces).subspan(at, n));
    at += n;
  }
  EXPECT_EQ(pieces, render_in_blocks(click, kFrames, kFrames));
}

TEST(ClickTrack, ClickCutByABlockEndGoesOnInTheNextBlock) {
  ClickTrack click(kRate);
  click.set_tempo(60.0);  // beats at 0, 48000, ...
  const auto accent = click.click_samples(true);
  const auto normal = click.click_samples(false);
  std::vector<float> block(64, 0.0f);
  // Beat 1 (48000, not a downbeat) starts 10 samples before this block.
  click.render(48'000 - 10, block, false);
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(block[i], 0.0f);
  for (std::size_t i = 10; i < 64; ++i) EXPECT_EQ(block[i], normal[i - 10]);
  click.render(48'000 + 54, block, false);
  for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(block[i], normal[54 + i]);
  // A block that starts in the middle of the downbeat's click (a seek) picks it up.
  click.render(4 * 48'000 + 500, block, false);
  for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(block[i], accent[500 + i]);
  // And after the click ends: silence.
  click.render(48'000 + 960, block, false);
  for (float v : block) EXPECT_EQ(v, 0.0f);
}

TEST(ClickTrack, AddMixesIntoTheBuffer) {
  ClickTrack click(kRate);
  std::vector<float> block(128, 0.25f);
  click.render(0, block, true);
  const auto accent = click.click_samples(true);
  for (std::size_t i = 0; i < block.size(); ++i) EXPECT_EQ(block[i], 0.25f + accent[i]);
}

TEST(ClickTrack, DisabledLeavesTheBufferOrWritesSilence) {
  ClickTrack click(kRate);
  click.set_enabled(false);
  EXPECT_FALSE(click.enabled());
  std::vector<float> block(256, 0.5f);
  click.render(0, block, true);
  for (float v : block) EXPECT_EQ(v, 0.5f);
  click.render(0, block, false);
  for (float v : block) EXPECT_EQ(v, 0.0f);
  // The grid is still there for whoever asks.
  std::array<ClickEvent, 4> events;
  EXPECT_EQ(click.beats_in(0, 256, events), 1u);
  click.set_enabled(true);
  click.render(0, block, false);
  EXPECT_NE(block[1], 0.0f);
}

TEST(ClickTrack, NothingBeforeTheOrigin) {
  ClickTrack click(kRate);
  click.set_origin(10'000);
  std::array<ClickEvent, 4> events;
  EXPECT_EQ(click.beats_in(0, 10'000, events), 0u);
  ASSERT_EQ(click.beats_in(0, 10'001, events), 1u);
  EXPECT_EQ(events[0].offset, 10'000u);
  EXPECT_TRUE(events[0].downbeat);
  std::vector<float> block(10'000, 1.0f);
  click.render(0, block, false);
  for (float v : block) ASSERT_EQ(v, 0.0f);
}

TEST(ClickTrack, TempoChangeMovesTheGrid) {
  ClickTrack click(kRate);
  click.set_tempo(120.0);
  EXPECT_EQ(click.beat_frame(3), 72'000u);
  click.set_tempo(90.0);
  EXPECT_EQ(click.tempo(), 90.0);
  EXPECT_EQ(click.beat_frame(3), 96'000u);
  std::array<ClickEvent, 4> events;
  ASSERT_EQ(click.beats_in(95'000, 2'000, events), 1u);
  EXPECT_EQ(events[0].beat_index, 3u);
  EXPECT_EQ(events[0].offset, 1'000u);
  // Clamped, NaN ignored.
  click.set_tempo(0.0);
  EXPECT_EQ(click.tempo(), ClickTrack::kMinBpm);
  click.set_tempo(1e9);
  EXPECT_EQ(click.tempo(), ClickTrack::kMaxBpm);
  click.set_tempo(std::nan(""));
  EXPECT_EQ(click.tempo(), ClickTrack::kMaxBpm);
  click.set_meter(0);
  EXPECT_EQ(click.meter(), 1);
}

TEST(ClickTrack, TempoChangeAtPlayheadKeepsTheBarPosition) {
  ClickTrack click(kRate);
  click.set_tempo(120.0);  // 24000 frames per beat
  click.set_meter(4);
  constexpr std::size_t kBlock = 256;
  std::vector<float> played(200'000, 0.0f);
  // Play 100 blocks (25600 frames: beats 0 and 1 at 0 and 24000), then speed
  // up to 240 bpm at the playhead: beat 2 stays at 48000, later beats 12000 apart.
  std::size_t at = 0;
  for (; at < 100 * kBlock; at += kBlock) {
    click.render(at, std::span<float>(played).subspan(at, kBlock));
  }
  click.set_tempo_at(240.0, at);
  EXPECT_EQ(click.beat_frame(2), 48'000u);
  EXPECT_EQ(click.beat_frame(3), 60'000u);
  EXPECT_EQ(click.beat_frame(4), 72'000u);
  for (; at + kBlock <= played.size(); at += kBlock) {
    click.render(at, std::span<float>(played).subspan(at, kBlock));
  }
  std::array<ClickEvent, 8> events;
  ASSERT_EQ(click.beats_in(40'000, 40'000, events), 3u);
  EXPECT_EQ(events[0].beat_index, 2u);
  EXPECT_FALSE(events[0].downbeat);
  EXPECT_EQ(events[2].beat_index, 4u);
  EXPECT_EQ(events[2].offset, 32'000u);
  EXPECT_TRUE(events[2].downbeat);  // bar 2 beat 1, where it belongs
  const auto accent = click.click_samples(true);
  const auto normal = click.click_samples(false);
  for (std::size_t i = 0; i < normal.size(); ++i) {
    ASSERT_EQ(played[48'000 + i], normal[i]);
    ASSERT_EQ(played[72'000 + i], accent[i]);
  }
}

TEST(ClickTrack, TempoChangeDuringAClickLetsItRingOn) {
  ClickTrack click(kRate);
  click.set_tempo(120.0);
  const auto normal = click.click_samples(false);
  std::vector<float> block(64, 0.0f);
  click.render(24'000, block, false);  // beat 1's click starts
  click.set_tempo_at(60.0, 24'064);
  click.render(24'064, block, false);
  for (std::size_t i = 0; i < 64; ++i) ASSERT_EQ(block[i], normal[64 + i]);
  EXPECT_EQ(click.beat_frame(2), 48'000u);  // the next beat keeps its frame
  EXPECT_EQ(click.beat_frame(3), 96'000u);
}

TEST(ClickTrack, OverlappingClicksCutThePreviousOne) {
  ClickTrack click(kRate);
  click.set_tempo(6000.0);  // 480 frames per beat, clicks are 960 long
  std::vector<float> block(1000, 0.0f);
  click.render(0, block, false);
  const auto accent = click.click_samples(true);
  const auto normal = click.click_samples(false);
  for (std::size_t i = 0; i < 480; ++i) ASSERT_EQ(block[i], accent[i]);
  for (std::size_t i = 480; i < 960; ++i) ASSERT_EQ(block[i], normal[i - 480]);
}

}  // namespace
}  // namespace jamnet::engine
