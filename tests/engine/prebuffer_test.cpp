#include "jamnet/engine/prebuffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace jamnet::engine {
namespace {

using State = PlaybackState;
constexpr std::uint32_t kRate = 48'000;
constexpr Tier kAllTiers[] = {Tier::kHighEnd, Tier::kMidRange, Tier::kModest, Tier::kLowEnd,
                              Tier::kCpuOnly};

TEST(Prebuffer, TierThresholdsAreTheDocumentedNumbers) {
  const auto high = PrebufferConfig::for_tier(Tier::kHighEnd, kRate);
  EXPECT_EQ(high.start_frames, 960u);  // 20 ms
  EXPECT_EQ(high.pause_frames, 240u);  // 5 ms
  const auto mid = PrebufferConfig::for_tier(Tier::kMidRange, kRate);
  EXPECT_EQ(mid.start_frames, 1'920u);
  EXPECT_EQ(mid.pause_frames, 480u);
  const auto modest = PrebufferConfig::for_tier(Tier::kModest, kRate);
  EXPECT_EQ(modest.start_frames, 3'840u);
  EXPECT_EQ(modest.pause_frames, 960u);
  const auto low = PrebufferConfig::for_tier(Tier::kLowEnd, 44'100);
  EXPECT_EQ(low.start_frames, 5'292u);  // 120 ms at 44.1 kHz
  EXPECT_EQ(low.pause_frames, 1'323u);
  const auto cpu = PrebufferConfig::for_tier(Tier::kCpuOnly, kRate);
  EXPECT_EQ(cpu.start_frames, 9'600u);
  EXPECT_EQ(cpu.pause_frames, 2'400u);
}

TEST(Prebuffer, WeakerTiersBufferMore) {
  PrebufferConfig prev{0, 0};
  for (Tier t : kAllTiers) {
    const auto c = PrebufferConfig::for_tier(t, kRate);
    EXPECT_GT(c.start_frames, prev.start_frames);
    EXPECT_GT(c.pause_frames, prev.pause_frames);
    EXPECT_GT(c.start_frames, c.pause_frames);  // hysteresis
    prev = c;
  }
}

TEST(Prebuffer, ThresholdsExactlyAtTheBoundaryForAllTiers) {
  for (Tier t : kAllTiers) {
    const auto c = PrebufferConfig::for_tier(t, kRate);
    const PrebufferManager m(c);
    EXPECT_TRUE(m.should_start_playback(c.start_frames));
    EXPECT_FALSE(m.should_start_playback(c.start_frames - 1));
    EXPECT_TRUE(m.should_start_playback(c.start_frames + 1));
    EXPECT_FALSE(m.should_pause_playback(c.pause_frames));
    EXPECT_TRUE(m.should_pause_playback(c.pause_frames - 1));
    EXPECT_TRUE(m.should_pause_playback(0));
    EXPECT_FALSE(m.should_start_playback(0));
  }
}

TEST(Prebuffer, LowLatencyStartsAtTwoPeriods) {
  const auto c = PrebufferConfig::low_latency(256);
  EXPECT_EQ(c.start_frames, 512u);
  EXPECT_EQ(c.pause_frames, 256u);
  const auto zero = PrebufferConfig::low_latency(0);
  EXPECT_EQ(zero.start_frames, 2u);
}

TEST(Prebuffer, FromMsRoundsAndRejectsNonsense) {
  const auto c = PrebufferConfig::from_ms(10.01, 2.5, kRate);
  EXPECT_EQ(c.start_frames, 480u);  // 480.48
  EXPECT_EQ(c.pause_frames, 120u);
  const auto bad = PrebufferConfig::from_ms(-5.0, std::nan(""), kRate);
  EXPECT_EQ(bad.start_frames, 0u);
  EXPECT_EQ(bad.pause_frames, 0u);
}

TEST(Prebuffer, ConfigIsNormalised) {
  const PrebufferManager zero(PrebufferConfig{0, 0});
  EXPECT_EQ(zero.config().start_frames, 1u);  // never "start" with nothing to play
  const PrebufferManager inverted(PrebufferConfig{100, 300});
  EXPECT_EQ(inverted.config().start_frames, 300u);  // starting must not pause at once
  EXPECT_EQ(inverted.config().pause_frames, 300u);
}

TEST(Prebuffer, EveryTransition) {
  PrebufferManager m(PrebufferConfig{100, 20});
  EXPECT_EQ(m.state(), State::kIdle);
  EXPECT_EQ(m.update(0), State::kIdle);
  EXPECT_EQ(m.update(1), State::kBuffering);  // idle -> buffering
  EXPECT_EQ(m.update(99), State::kBuffering);
  EXPECT_EQ(m.update(100), State::kPlaying);     // buffering -> playing, at the threshold
  EXPECT_EQ(m.update(20), State::kPlaying);      // at the pause threshold: still playing
  EXPECT_EQ(m.update(19), State::kRebuffering);  // playing -> rebuffering
  EXPECT_EQ(m.stats().rebuffers, 1u);
  EXPECT_EQ(m.update(0), State::kRebuffering);
  EXPECT_EQ(m.update(99), State::kRebuffering);     // hysteresis: 20..99 is not enough
  EXPECT_EQ(m.update(100), State::kPlaying);        // rebuffering -> playing
  EXPECT_EQ(m.update(50, true), State::kDraining);  // playing -> draining
  EXPECT_EQ(m.update(10, true), State::kDraining);  // below the pause threshold: still draining
  EXPECT_EQ(m.update(10, false), State::kDraining);
  EXPECT_EQ(m.update(0, true), State::kIdle);  // draining -> idle
  const auto s = m.stats();
  EXPECT_EQ(s.transitions, 6u);
  EXPECT_EQ(s.rebuffers, 1u);
  EXPECT_EQ(s.streams_completed, 1u);
  // And a new stream starts over.
  EXPECT_EQ(m.update(5), State::kBuffering);
}

TEST(Prebuffer, EndOfStreamWhileWaitingPlaysOutWhatThereIs) {
  PrebufferManager m(PrebufferConfig{100, 20});
  EXPECT_EQ(m.update(30), State::kBuffering);
  EXPECT_EQ(m.update(30, true), State::kDraining);  // buffering -> draining
  EXPECT_EQ(m.update(0, true), State::kIdle);

  PrebufferManager r(PrebufferConfig{100, 20});
  r.update(100);
  EXPECT_EQ(r.update(5), State::kRebuffering);
  EXPECT_EQ(r.update(5, true), State::kDraining);  // rebuffering -> draining

  PrebufferManager e(PrebufferConfig{100, 20});
  e.update(100);
  e.update(5);
  EXPECT_EQ(e.update(0, true), State::kIdle);  // rebuffering, empty, ended -> idle
  EXPECT_EQ(e.stats().streams_completed, 1u);

  PrebufferManager b(PrebufferConfig{100, 20});
  b.update(10);
  EXPECT_EQ(b.update(0, true), State::kIdle);  // buffering, empty, ended -> idle
}

TEST(Prebuffer, OneUpdateSettlesSeveralSteps) {
  PrebufferManager m(PrebufferConfig{100, 20});
  EXPECT_EQ(m.update(500), State::kPlaying);  // idle -> buffering -> playing
  EXPECT_EQ(m.stats().transitions, 2u);
  EXPECT_EQ(m.update(0, true), State::kIdle);  // playing -> draining -> idle
  EXPECT_EQ(m.stats().transitions, 4u);
  EXPECT_EQ(m.update(50, true), State::kDraining);  // idle -> buffering -> draining
  EXPECT_EQ(m.update(0, true), State::kIdle);
  EXPECT_EQ(m.stats().streams_completed, 2u);
  EXPECT_EQ(m.update(0, true), State::kIdle);  // ended and empty: stays idle
}

TEST(Prebuffer, ResetReturnsToIdle) {
  PrebufferManager m(PrebufferConfig{10, 2});
  m.update(10);
  ASSERT_EQ(m.state(), State::kPlaying);
  m.reset();
  EXPECT_EQ(m.state(), State::kIdle);
  EXPECT_EQ(m.stats().transitions, 3u);
}

TEST(Prebuffer, StateNames) {
  EXPECT_EQ(std::string(to_string(State::kIdle)), "idle");
  EXPECT_EQ(std::string(to_string(State::kBuffering)), "buffering");
  EXPECT_EQ(std::string(to_string(State::kPlaying)), "playing");
  EXPECT_EQ(std::string(to_string(State::kRebuffering)), "rebuffering");
  EXPECT_EQ(std::string(to_string(State::kDraining)), "draining");
  EXPECT_TRUE(PrebufferManager::is_playing(State::kDraining));
  EXPECT_FALSE(PrebufferManager::is_playing(State::kRebuffering));
}

std::vector<float> ramp(std::size_t n, float first) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = first + static_cast<float>(i);
  return v;
}

TEST(Prebuffer, PullPlaysFromTheFifoOnlyWhilePlaying) {
  constexpr std::size_t kPeriod = 64;
  AudioFifo fifo(1, 4096, kRate);
  PrebufferManager m(PrebufferConfig{100, kPeriod});
  std::vector<float> out(kPeriod, 9.0f);

  fifo.write(ramp(50, 0.0f));
  EXPECT_EQ(m.pull(fifo, out), 0u);  // buffering: silence, nothing consumed
  EXPECT_EQ(m.state(), State::kBuffering);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(fifo.buffered_frames(), 50u);

  fifo.write(ramp(60, 50.0f));  // 110 >= 100
  EXPECT_EQ(m.pull(fifo, out), kPeriod);
  EXPECT_EQ(m.state(), State::kPlaying);
  EXPECT_EQ(out, ramp(kPeriod, 0.0f));

  // 46 left, less than a period: rebuffer instead of playing 46 and a gap.
  EXPECT_EQ(m.pull(fifo, out), 0u);
  EXPECT_EQ(m.state(), State::kRebuffering);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  fifo.write(ramp(100, 110.0f));  // 146
  EXPECT_EQ(m.pull(fifo, out), kPeriod);
  EXPECT_EQ(out, ramp(kPeriod, 64.0f));  // nothing lost while rebuffering

  // End of stream with 82 left: a full period, then 18 and silence, then idle.
  EXPECT_EQ(m.pull(fifo, out, true), kPeriod);
  EXPECT_EQ(m.state(), State::kDraining);
  EXPECT_EQ(out, ramp(kPeriod, 128.0f));
  EXPECT_EQ(m.pull(fifo, out, true), 18u);
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 18), ramp(18, 192.0f));
  for (std::size_t i = 18; i < kPeriod; ++i) EXPECT_EQ(out[i], 0.0f);
  EXPECT_EQ(m.pull(fifo, out, true), 0u);
  EXPECT_EQ(m.state(), State::kIdle);

  // The FIFO never ran dry under the reader: no underrun, no crackle.
  EXPECT_EQ(fifo.stats().underrun_events, 0u);
  EXPECT_EQ(fifo.stats().frames_read, 210u);
  EXPECT_EQ(m.stats().rebuffers, 1u);
  EXPECT_EQ(m.stats().silent_cycles, 3u);
}

TEST(Prebuffer, BurstyProducerGivesWholeCyclesOfAudioOrSilence) {
  // A producer that delivers in random bursts at about the consumption rate:
  // with the pause threshold at one period, every cycle is either a full
  // period of stream audio or a full period of silence (a clean gap, not a
  // crackle), and the audio is the stream in order with nothing skipped.
  constexpr std::size_t kPeriod = 128;
  constexpr std::uint32_t kCh = 2;
  AudioFifo fifo(kCh, 1 << 14, kRate);
  PrebufferManager m(PrebufferConfig{4 * kPeriod, kPeriod});
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> burst(0, 5);
  float next_in = 0.0f, next_out = 0.0f;
  std::vector<float> out(kPeriod * kCh);
  std::size_t silent = 0, full = 0;
  for (int cycle = 0; cycle < 20'000; ++cycle) {
    // On average one period per cycle, in clumps of 0..5 periods (with gaps).
    const int periods = cycle % 7 == 0 ? 0 : burst(rng) / 2;
    const auto in = ramp(static_cast<std::size_t>(periods) * kPeriod * kCh, next_in);
    ASSERT_EQ(fifo.write(in) * kCh, in.size());
    next_in += static_cast<float>(in.size());
    const std::size_t got = m.pull(fifo, out);
    if (got == 0) {
      ++silent;
      for (float v : out) ASSERT_EQ(v, 0.0f);
    } else {
      ASSERT_EQ(got, kPeriod) << "cycle " << cycle;
      ++full;
      for (float v : out) ASSERT_EQ(v, next_out++) << "cycle " << cycle;
    }
  }
  EXPECT_GT(silent, 0u);
  EXPECT_GT(full, 0u);
  EXPECT_GT(m.stats().rebuffers, 0u);
  EXPECT_EQ(fifo.stats().underrun_events, 0u);
}

}  // namespace
}  // namespace jamnet::engine
