// Adaptive jitter buffer: scripted arrivals on a simulated clock (no sleeping,
// deterministic). A sender model produces packets; each test bends their
// arrival times (jitter, bursts, loss, reordering, duplicates, restarts), then
// a receiver pulls at a fixed period, pushing what has arrived before each
// pull, as the audio thread does.
#include "jamnet/media/jdat/jitter_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numbers>
#include <random>
#include <tuple>
#include <vector>

namespace jamnet::media::jdat {
namespace {

constexpr int kRate = 48000;
constexpr int kFrames = 64;
constexpr Nanos kMs = 1'000'000;
constexpr double kPeriodNs = 1e9 * kFrames / kRate;

struct Packet {
  Nanos arrival = 0;
  std::uint64_t first_frame = 0;  // header value
  std::int64_t sample = 0;        // the sender's true sample count (signal index)
  std::int64_t k = 0;             // packet number
};

// Audio as a function of the sender's sample count: per channel, a sine.
struct Signal {
  std::vector<double> hz{1000.0};
  double amplitude = 0.5;
  float at(std::int64_t sample, int ch) const {
    const double f = hz[static_cast<std::size_t>(ch) % hz.size()];
    return static_cast<float>(
        amplitude * std::sin(2.0 * std::numbers::pi * f * static_cast<double>(sample) / kRate));
  }
};

// Packets k = 0..count-1 of a sender whose sample clock runs at
// kRate * (1 + drift): packet k is complete (and sent) when its last frame is
// captured, and arrives `delay` later.
std::vector<Packet> sender(std::int64_t count, double drift_ppm = 0.0, Nanos delay = kMs,
                           std::uint64_t first_frame = 1'000'000) {
  std::vector<Packet> p(static_cast<std::size_t>(count));
  const double rate = kRate * (1.0 + drift_ppm * 1e-6);
  for (std::int64_t k = 0; k < count; ++k) {
    Packet& x = p[static_cast<std::size_t>(k)];
    x.k = k;
    x.sample = k * kFrames;
    x.first_frame = first_frame + static_cast<std::uint64_t>(k * kFrames);
    x.arrival = std::llround(1e9 * static_cast<double>((k + 1) * kFrames) / rate) + delay;
  }
  return p;
}

struct PullInfo {
  std::int64_t index = 0;
  Nanos now = 0;
  JitterBufferStats stats;
};

struct Receiver {
  int pull_frames = kFrames;
  Nanos phase = 300'000;  // pulls do not line up with arrivals
  Signal signal;
  std::vector<float> out;  // everything pulled, interleaved
  std::vector<PullInfo> pulls;

  Nanos pull_time(std::int64_t m) const {
    return phase + std::llround(static_cast<double>(m) * pull_frames * 1e9 / kRate);
  }

  // Runs pulls until `until` (simulated ns); packets are pushed in arrival
  // order (stable: equal arrivals keep the scripted order) before the first
  // pull at or after their arrival.
  void run(JitterBuffer& jb, std::vector<Packet> packets, Nanos until, int channels = 1,
           const std::function<void(JitterBuffer&, Nanos)>& before_pull = {}) {
    // Ties keep their scripted order. (Not std::stable_sort: this binary
    // replaces the global operator delete, which its nothrow-new scratch
    // buffer would not match under ASan.)
    std::vector<std::size_t> order(packets.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return packets[a].arrival != packets[b].arrival ? packets[a].arrival < packets[b].arrival
                                                      : a < b;
    });
    std::vector<Packet> sorted;
    sorted.reserve(packets.size());
    for (const std::size_t i : order) sorted.push_back(packets[i]);
    packets = std::move(sorted);
    std::vector<float> buf(static_cast<std::size_t>(kFrames * channels));
    std::vector<float> block(static_cast<std::size_t>(pull_frames * channels));
    std::size_t next = 0;
    for (std::int64_t m = 0;; ++m) {
      const Nanos now = pull_time(m);
      if (now > until) break;
      while (next < packets.size() && packets[next].arrival <= now) {
        const Packet& p = packets[next++];
        for (int i = 0; i < kFrames; ++i) {
          for (int ch = 0; ch < channels; ++ch) {
            buf[static_cast<std::size_t>(i * channels + ch)] = signal.at(p.sample + i, ch);
          }
        }
        jb.push(p.first_frame, buf, p.arrival);
      }
      if (before_pull) before_pull(jb, now);
      jb.pull(block, now);
      out.insert(out.end(), block.begin(), block.end());
      pulls.push_back({m, now, jb.stats()});
    }
  }

  // Index in `out` (frames) of the first pull after `t`.
  std::size_t frame_at(Nanos t) const {
    for (const PullInfo& p : pulls) {
      if (p.now >= t) return static_cast<std::size_t>(p.index * pull_frames);
    }
    return out.size();
  }
};

JitterBufferConfig mono() {
  JitterBufferConfig c;
  c.channels = 1;
  c.frames_per_packet = kFrames;
  c.sample_rate = kRate;
  return c;
}

// Largest |x[n] - x[n-1]| over out[from, to) of one channel.
double max_step(const std::vector<float>& out, std::size_t from, std::size_t to, int channels = 1,
                int ch = 0) {
  double m = 0.0;
  for (std::size_t i = std::max<std::size_t>(from, 1); i < to; ++i) {
    const auto a = static_cast<std::size_t>(channels) * i + static_cast<std::size_t>(ch);
    m = std::max(
        m, std::abs(static_cast<double>(out[a]) - out[a - static_cast<std::size_t>(channels)]));
  }
  return m;
}

// The slope bound of a sine: 2 pi f / rate * amplitude.
double sine_step(double hz, double amplitude) {
  return 2.0 * std::numbers::pi * hz / kRate * amplitude;
}

// First output frame carrying audio.
std::size_t first_sound(const std::vector<float>& out, int channels = 1) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] != 0.0f) return i / static_cast<std::size_t>(channels);
  }
  return out.size();
}

// The output frame at which the stream's first frame plays, found by
// matching 256 output frames from `probe` against the signal: -1 if no lag
// up to max_lag matches.
std::int64_t find_lag(const std::vector<float>& out, const Signal& s, std::size_t probe,
                      std::int64_t max_lag = 8000, int channels = 1) {
  for (std::int64_t lag = 0; lag <= max_lag; ++lag) {
    bool match = true;
    for (std::size_t n = probe; n < probe + 256 && match; ++n) {
      for (int ch = 0; ch < channels && match; ++ch) {
        const float got =
            out[n * static_cast<std::size_t>(channels) + static_cast<std::size_t>(ch)];
        match = std::abs(got - s.at(static_cast<std::int64_t>(n) - lag, ch)) < 1e-3f;
      }
    }
    if (match) return lag;
  }
  return -1;
}

// The stats as they were after the last pull at or before t.
JitterBufferStats stats_at(const std::vector<PullInfo>& pulls, Nanos t) {
  JitterBufferStats st;
  for (const PullInfo& p : pulls) {
    if (p.now > t) break;
    st = p.stats;
  }
  return st;
}

// Largest |out[n] - signal(n - lag)| over output frames [from, to).
double max_error(const std::vector<float>& out, const Signal& s, std::int64_t lag, std::size_t from,
                 std::size_t to, int channels = 1) {
  double m = 0.0;
  for (std::size_t n = from; n < to; ++n) {
    for (int ch = 0; ch < channels; ++ch) {
      const float want = s.at(static_cast<std::int64_t>(n) - lag, ch);
      m = std::max(
          m,
          std::abs(static_cast<double>(
              out[n * static_cast<std::size_t>(channels) + static_cast<std::size_t>(ch)] - want)));
    }
  }
  return m;
}

Nanos percentile(std::vector<Nanos> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

// Several sines below the resampler's passband edge (80 % of Nyquist).
Signal band_limited() {
  Signal s;
  s.hz = {441.0, 2500.0, 9000.0};
  s.amplitude = 0.3;
  return s;
}

// ---------------------------------------------------------------------------

// With matched clocks and no jitter, the correction stays exactly 0 and the
// output is the input delayed: the converter runs at ratio 1 (integer phase),
// so only its passband ripple remains (about 1e-6 for content below 80 % of
// Nyquist).
TEST(JitterBuffer, SteadyStreamIsTheInputDelayed) {
  for (const int channels : {1, 2}) {
    SCOPED_TRACE(channels);
    JitterBufferConfig cfg = mono();
    cfg.channels = channels;
    JitterBuffer jb(cfg);
    Receiver rx;
    rx.signal = band_limited();
    const auto packets = sender(1500);
    rx.run(jb, packets, 2 * 1'000'000'000LL - 10 * kMs, channels);
    const JitterBufferStats& st = jb.stats();
    EXPECT_TRUE(st.playing);
    EXPECT_EQ(st.missing_packets, 0u);
    EXPECT_EQ(st.concealed_frames, 0u);
    EXPECT_EQ(st.underruns, 0u);
    EXPECT_EQ(st.late, 0u);
    EXPECT_EQ(st.correction_ppm, 0.0);
    EXPECT_GT(st.played, 1400u);

    const std::int64_t lag = find_lag(rx.out, rx.signal, kRate, 8000, channels);
    ASSERT_GE(lag, 0);
    // Silence before the stream's first frame (only the resampler's filter
    // reaches a few frames ahead of it) ...
    EXPECT_GT(first_sound(rx.out, channels) + 40, static_cast<std::size_t>(lag));
    // ... and from there on, the input.
    const std::size_t frames = rx.out.size() / static_cast<std::size_t>(channels);
    EXPECT_LT(
        max_error(rx.out, rx.signal, lag, static_cast<std::size_t>(lag) + 64, frames, channels),
        2e-5);
    // Depth on target, no drift seen.
    EXPECT_NEAR(static_cast<double>(st.depth_ns), static_cast<double>(st.target_ns), 0.2e6);
    EXPECT_EQ(st.drift_ppm, 0.0);
  }
}

TEST(JitterBuffer, HoldsSilenceUntilTheTargetIsReached) {
  JitterBuffer jb(mono());
  Receiver rx;
  auto packets = sender(200);
  rx.run(jb, packets, 100 * kMs);
  // Before the first arrival plus the target, nothing plays.
  const Nanos first_arrival = packets[0].arrival;
  for (const PullInfo& p : rx.pulls) {
    if (p.now < first_arrival + p.stats.target_ns - 2 * kMs) {
      EXPECT_FALSE(p.stats.playing) << p.now;
    }
  }
  EXPECT_TRUE(jb.stats().playing);
  EXPECT_GT(jb.stats().target_ns, 0);
}

TEST(JitterBuffer, ReorderedPacketsPlayInOrder) {
  struct Pattern {
    const char* name;
    std::vector<int> order;  // arrival order within each group
  };
  for (const Pattern& pat : {Pattern{"swap pairs", {1, 0}}, Pattern{"shuffle of 3", {2, 0, 1}},
                             Pattern{"reversed 3", {2, 1, 0}}}) {
    SCOPED_TRACE(pat.name);
    JitterBuffer jb(mono());
    Receiver rx;
    auto packets = sender(1500);
    const auto g = static_cast<std::int64_t>(pat.order.size());
    // Each group arrives when its last packet would have, in the scripted order.
    std::vector<Packet> shuffled;
    for (std::int64_t base = 0; base + g <= static_cast<std::int64_t>(packets.size()); base += g) {
      const Nanos at = packets[static_cast<std::size_t>(base + g - 1)].arrival;
      for (int i : pat.order) {
        Packet p = packets[static_cast<std::size_t>(base + i)];
        p.arrival = at;
        shuffled.push_back(p);
      }
    }
    rx.run(jb, shuffled, 1'900 * kMs);
    const JitterBufferStats& st = jb.stats();
    EXPECT_EQ(st.missing_packets, 0u);
    EXPECT_EQ(st.late, 0u);
    EXPECT_EQ(st.concealed_frames, 0u);
    EXPECT_EQ(st.underruns, 0u);
    EXPECT_GT(st.played, 1350u);
    // A block out of order would be a jump of 64 samples in the sine.
    const std::size_t start = first_sound(rx.out);
    EXPECT_LT(max_step(rx.out, start, rx.out.size()), 1.5 * sine_step(1000, 0.5));
    // The reordering shows as jitter: up to (group - 1) periods.
    EXPECT_GE(st.jitter_ns, static_cast<Nanos>((g - 1) * kPeriodNs) - 1000);
  }
}

// Packets held back by the network and then delivered at once. Nothing is
// lost: an underrun holds the playout (concealing meanwhile) instead of
// skipping audio, so the first burst turns into delay at once. The target
// follows the measured jitter quantile up at once (it rises as soon as the
// bursts are more than 5 % of the window), and once the bursts stop it falls
// no faster than fall_ns_per_s; the depth follows it down by resampling.
TEST(JitterBuffer, BurstsRaiseTheTargetAtOnceAndItFallsSlowly) {
  JitterBufferConfig cfg = mono();
  cfg.window_ns = 1'000'000'000;
  JitterBuffer jb(cfg);
  Receiver rx;
  auto packets = sender(16 * 750);  // 16 s
  constexpr Nanos kHold = 12 * kMs;
  const Nanos burst_from = 3'000 * kMs, burst_to = 6'000 * kMs;
  for (Packet& p : packets) {
    if (p.arrival < burst_from || p.arrival >= burst_to) continue;
    // Every 100 ms the link stalls for kHold, then delivers the backlog.
    const Nanos cycle = (p.arrival - burst_from) % (100 * kMs);
    if (cycle < kHold) p.arrival += kHold - cycle;
  }
  rx.run(jb, packets, 17'000 * kMs);
  const JitterBufferStats& st = jb.stats();
  // No audio lost: every packet played, none late, none concealed as missing.
  EXPECT_EQ(st.late, 0u);
  EXPECT_EQ(st.missing_packets, 0u);
  EXPECT_EQ(st.overflow, 0u);
  EXPECT_EQ(st.played, packets.size());

  Nanos max_depth = 0;
  for (std::size_t i = 0; i < rx.pulls.size(); ++i) {
    const PullInfo& p = rx.pulls[i];
    // Up at once: never below what the current jitter quantile asks for.
    EXPECT_GE(p.stats.target_ns, std::min(p.stats.jitter_ns + cfg.margin_ns, cfg.max_target_ns))
        << p.now;
    if (i > 0) {
      // Down slowly.
      const Nanos dt = p.now - rx.pulls[i - 1].now;
      const Nanos fall = rx.pulls[i - 1].stats.target_ns - p.stats.target_ns;
      EXPECT_LE(fall, cfg.fall_ns_per_s * dt / 1'000'000'000 + 1) << p.now;
    }
    if (p.now < packets.back().arrival) max_depth = std::max(max_depth, p.stats.depth_ns);
  }
  const JitterBufferStats before = stats_at(rx.pulls, burst_from);
  const JitterBufferStats at_4s = stats_at(rx.pulls, burst_from + 1'000 * kMs);
  const JitterBufferStats at_6s = stats_at(rx.pulls, burst_to);
  EXPECT_LT(before.target_ns, 2'500'000);
  // Within a second of bursts the target has risen to cover most of them.
  EXPECT_GT(at_4s.target_ns, 7 * kMs);
  // After that, underruns only trim the last fraction of a millisecond the
  // controller keeps winning back (20 bursts of 12 ms: under 5 ms held in all).
  EXPECT_LT(at_6s.inserted_frames - at_4s.inserted_frames, 5u * kRate / 1000u);
  // The delay never ran away: at most the burst plus the target's mechanics.
  EXPECT_LT(max_depth, kHold + 4 * kMs);
  // Ten seconds after the bursts, target and depth are back near where they began.
  const JitterBufferStats late_on = stats_at(rx.pulls, 15'900 * kMs);
  EXPECT_LT(late_on.target_ns, before.target_ns + 100'000);
  EXPECT_LT(late_on.depth_ns, before.target_ns + 1'500'000);
  // It took at least (drop / fall rate) to get there.
  const Nanos back_at = [&] {
    for (const PullInfo& p : rx.pulls) {
      if (p.now > burst_to && p.stats.target_ns <= before.target_ns + 100'000) return p.now;
    }
    return Nanos{0};
  }();
  EXPECT_GE(back_at - burst_to,
            (at_6s.target_ns - before.target_ns - 100'000) * 1'000'000'000 / cfg.fall_ns_per_s);
}

// One 20 ms hold-up of the link. By default the underrun holds the playout:
// nothing is lost, the delay grows by the hold and is wound back by
// resampling. With hold_on_underrun = false the missing packets are concealed
// and skipped: the delay and the stream's timing stay, the held packets are
// late.
TEST(JitterBuffer, UnderrunHoldsThePlayoutOrMovesOn) {
  for (const bool hold : {true, false}) {
    SCOPED_TRACE(hold);
    JitterBufferConfig cfg = mono();
    cfg.hold_on_underrun = hold;
    JitterBuffer jb(cfg);
    Receiver rx;
    rx.signal = band_limited();
    auto packets = sender(2250);  // 3 s
    const Nanos from = 1'000 * kMs, until = 1'020 * kMs;
    for (Packet& p : packets) {
      if (p.arrival >= from && p.arrival < until) p.arrival = until;
    }
    rx.run(jb, packets, packets.back().arrival - 5 * kMs);
    const JitterBufferStats& st = jb.stats();
    const JitterBufferStats before = stats_at(rx.pulls, from);
    const JitterBufferStats after = stats_at(rx.pulls, until + 50 * kMs);
    EXPECT_GT(st.underruns, 0u);
    EXPECT_EQ(st.resyncs + st.reanchors, 0u);
    const std::int64_t lag = find_lag(rx.out, rx.signal, kRate / 2);
    ASSERT_GE(lag, 0);
    if (hold) {
      EXPECT_EQ(st.late, 0u);
      EXPECT_EQ(st.missing_packets, 0u);
      // Held for the part of the 20 ms the buffer did not cover.
      const double held_ms = 1e3 * static_cast<double>(st.inserted_frames) / kRate;
      EXPECT_NEAR(held_ms, 20.0 - before.depth_ns / 1e6, 1.5);
      EXPECT_GT(after.depth_ns, before.depth_ns + 15 * kMs);
      // ... and wound back, at no more than max_correction_ppm.
      EXPECT_LT(st.depth_ns, after.depth_ns - 1 * kMs);
      EXPECT_LE(st.correction_ppm, cfg.max_correction_ppm);
    } else {
      EXPECT_EQ(st.inserted_frames, 0u);
      EXPECT_GE(st.late, 13u);
      EXPECT_EQ(st.missing_packets, st.late);
      EXPECT_NEAR(static_cast<double>(after.depth_ns), static_cast<double>(before.depth_ns), 0.2e6);
      // The stream keeps its timing: same lag after the gap, exactly.
      const auto resumed =
          static_cast<std::size_t>(lag + (until + 5 * kMs) * kRate / 1'000'000'000);
      EXPECT_LT(max_error(rx.out, rx.signal, lag, resumed, rx.out.size()), 2e-5);
    }
  }
}

TEST(JitterBuffer, LostPacketIsConcealedOnce) {
  JitterBuffer jb(mono());
  Receiver rx;
  rx.signal = band_limited();
  auto packets = sender(1000);
  const std::int64_t lost = 400;
  packets.erase(packets.begin() + lost);
  rx.run(jb, packets, packets.back().arrival - 5 * kMs);
  const JitterBufferStats& st = jb.stats();
  EXPECT_EQ(st.missing_packets, 1u);
  // Exactly one packet's worth of audio was predicted (at its deadline the
  // buffer first waits a little, as the packet might only be late; that wait
  // counts towards the packet's frames, so the stream keeps its place).
  EXPECT_EQ(st.concealed_frames, static_cast<std::uint64_t>(kFrames));
  EXPECT_LE(st.underruns, 1u);
  EXPECT_EQ(st.late, 0u);
  EXPECT_GE(st.played, 999u - 10u);
  // Everything outside the lost packet (widened by the concealer's crossfade
  // back and the resampler's filter, 20 frames each way) is the input
  // delayed, with no shift.
  const std::int64_t lag = find_lag(rx.out, rx.signal, 10'000);
  ASSERT_GE(lag, 0);
  const std::size_t hole = static_cast<std::size_t>(lag + lost * kFrames);
  EXPECT_LT(max_error(rx.out, rx.signal, lag, static_cast<std::size_t>(lag) + 64, hole - 24), 2e-5);
  EXPECT_LT(max_error(rx.out, rx.signal, lag, hole + kFrames + 48 + 24, rx.out.size()), 2e-5);
  EXPECT_GT(max_error(rx.out, rx.signal, lag, hole, hole + kFrames), 1e-3);  // it was not there
  // The concealed block is not silence (PNBTR predicted something).
  EXPECT_GT(max_error(rx.out, Signal{{0.0}, 0.0}, 0, hole, hole + kFrames), 0.05);
}

TEST(JitterBuffer, VeryLatePacketIsDroppedAndCountedLate) {
  JitterBuffer jb(mono());
  Receiver rx;
  auto packets = sender(1000);
  packets[400].arrival += 100 * kMs;
  rx.run(jb, packets, packets.back().arrival - 5 * kMs);
  const JitterBufferStats& st = jb.stats();
  EXPECT_EQ(st.missing_packets, 1u);
  EXPECT_EQ(st.late, 1u);
  EXPECT_EQ(st.resyncs, 0u);
  EXPECT_LE(st.underruns, 1u);
  EXPECT_EQ(st.concealed_frames, static_cast<std::uint64_t>(kFrames));
  EXPECT_GE(st.played, 999u - 10u);
}

TEST(JitterBuffer, MarkLostConcealsAndAnArrivalAfterwardsStillPlays) {
  JitterBuffer jb(mono());
  Receiver rx;
  auto packets = sender(600);
  // 300 never comes and is marked lost at its due time; 310 is marked lost
  // but arrives in time after all.
  packets.erase(packets.begin() + 300);
  bool marked = false;
  rx.run(jb, packets, packets.back().arrival - 5 * kMs, 1, [&](JitterBuffer& b, Nanos now) {
    if (!marked && now > 300 * kPeriodNs) {
      b.mark_lost(1'000'000 + 300 * kFrames);
      b.mark_lost(1'000'000 + 310 * kFrames);
      marked = true;
    }
  });
  const JitterBufferStats& st = jb.stats();
  EXPECT_EQ(st.missing_packets, 1u);
  EXPECT_EQ(st.concealed_frames, static_cast<std::uint64_t>(kFrames));
  EXPECT_EQ(st.underruns, 0u);  // known lost: concealed without waiting for it
  EXPECT_EQ(st.late, 0u);
  EXPECT_GE(st.played, 599u - 10u);
}

// Pulls on a regular grid: with aligned_pulls the buffer waits only for the
// next pull after a packet is ready, not a whole pull for an unknown phase.
// At every phase between arrivals and pulls the stream plays whole (nothing
// concealed, output = input delayed) and never later than without alignment;
// over the phases it is half a pull earlier on average.
TEST(JitterBuffer, AlignedPullsWaitOnlyForTheNextPull) {
  const Nanos pull = kFrames * 1'000'000'000LL / kRate;
  double saved = 0;
  int runs = 0;
  for (Nanos phase = 0; phase < pull; phase += pull / 8) {
    SCOPED_TRACE(phase);
    Nanos target[2] = {};
    for (const bool aligned : {false, true}) {
      JitterBufferConfig cfg = mono();
      cfg.aligned_pulls = aligned;
      JitterBuffer jb(cfg);
      Receiver rx;
      rx.phase = phase;
      rx.signal = band_limited();
      rx.run(jb, sender(1500), 1'900 * kMs);
      const JitterBufferStats& st = jb.stats();
      EXPECT_EQ(st.missing_packets, 0u);
      EXPECT_EQ(st.underruns, 0u);
      EXPECT_EQ(st.late, 0u);
      EXPECT_GT(st.played, 1400u);
      const std::int64_t lag = find_lag(rx.out, rx.signal, kRate);
      ASSERT_GE(lag, 0);
      EXPECT_LT(
          max_error(rx.out, rx.signal, lag, static_cast<std::size_t>(lag) + 64, rx.out.size()),
          2e-5);
      EXPECT_NEAR(static_cast<double>(st.depth_ns), static_cast<double>(st.target_ns), 0.2e6);
      target[aligned ? 1 : 0] = st.target_ns;
    }
    EXPECT_LE(target[1], target[0] + 1000);
    saved += static_cast<double>(target[0] - target[1]);
    ++runs;
  }
  // Half a pull on average, less the margin kept before a pull.
  EXPECT_GT(saved / runs, 0.3 * static_cast<double>(pull));
}

// The sender's sample clock runs 100 ppm fast or slow for 60 s: the resampler
// absorbs it without clicks, underruns or lost packets. With pulls of unknown
// phase (aligned_pulls = false) the depth holds on its target, neither growing
// nor draining, and the controller's integral converges to the drift. With
// aligned pulls the target follows the phase between arrivals and pulls,
// which drift slides: it steps by one pull when that phase wraps, and the
// depth follows (by resampling), so it may be up to a pull off its target
// just after a step.
class JitterBufferDrift : public ::testing::TestWithParam<std::tuple<double, bool>> {};

TEST_P(JitterBufferDrift, ResamplingHoldsTheDepthWithoutClicks) {
  const auto [drift, aligned] = GetParam();
  JitterBufferConfig cfg = mono();
  cfg.aligned_pulls = aligned;
  JitterBuffer jb(cfg);
  Receiver rx;
  constexpr Nanos kSeconds = 60;
  auto packets = sender(kSeconds * kRate / kFrames, drift);
  std::mt19937 rng(7);
  std::uniform_int_distribution<Nanos> jitter(0, 300'000);  // a little jitter too
  for (Packet& p : packets) p.arrival += jitter(rng);
  rx.run(jb, packets, (kSeconds - 1) * 1'000 * kMs);
  const JitterBufferStats& st = jb.stats();
  // Aligned: 100 ppm slides the phase a whole pull every 13 s, and one step
  // in the run may come before the depth has grown (a held, concealed pull).
  EXPECT_LE(st.underruns, aligned ? 1u : 0u);
  EXPECT_EQ(st.missing_packets, 0u);
  EXPECT_EQ(st.late, 0u);
  EXPECT_EQ(st.resyncs + st.reanchors, 0u);
  Nanos worst = 0, lo = 1'000'000'000, hi = 0;
  for (const PullInfo& p : rx.pulls) {
    if (p.now < 10'000 * kMs) continue;
    worst = std::max(worst, std::abs(p.stats.depth_ns - p.stats.target_ns));
    lo = std::min(lo, p.stats.buffered_ns);
    hi = std::max(hi, p.stats.buffered_ns);
  }
  const Nanos pull = kFrames * 1'000'000'000LL / kRate;
  EXPECT_NEAR(st.drift_ppm, drift, 20.0);
  if (aligned) {
    EXPECT_LT(worst, pull + 500'000);
    EXPECT_LT(hi - lo, pull + 3 * kMs);
  } else {
    EXPECT_LT(worst, 500'000);
    EXPECT_LT(hi - lo, 3 * kMs);  // no growing or draining
    EXPECT_NEAR(st.correction_ppm, drift, 30.0);
  }
  const std::size_t start = first_sound(rx.out);
  EXPECT_LT(max_step(rx.out, start, rx.out.size()), 1.5 * sine_step(1000, 0.5));
  std::printf(
      "drift %+.0f ppm, aligned %d: estimate %+.1f ppm, correction %+.1f ppm, |depth-target| <= "
      "%.0f us\n",
      drift, aligned ? 1 : 0, st.drift_ppm, st.correction_ppm, worst / 1e3);
}

INSTANTIATE_TEST_SUITE_P(PlusMinus100ppm, JitterBufferDrift,
                         ::testing::Combine(::testing::Values(100.0, -100.0), ::testing::Bool()));

TEST(JitterBuffer, DuplicatesAreDroppedAndCounted) {
  JitterBuffer jb(mono());
  Receiver rx;
  rx.signal = band_limited();
  auto packets = sender(1000);
  std::vector<Packet> doubled = packets;
  for (const Packet& p : packets) {
    Packet copy = p;
    copy.arrival += 200'000;  // right behind: still in the buffer
    doubled.push_back(copy);
    if (p.k % 10 == 0) {
      copy.arrival += 50 * kMs;  // long after: already played
      doubled.push_back(copy);
    }
  }
  const Nanos end = packets.back().arrival;
  rx.run(jb, doubled, end + 60 * kMs);  // all copies in
  const JitterBufferStats& st = jb.stats();
  EXPECT_EQ(st.duplicates, 1100u);
  EXPECT_EQ(st.late, 0u);
  EXPECT_EQ(st.packets, 1000u);
  EXPECT_EQ(st.played, 1000u);
  EXPECT_EQ(st.missing_packets, 0u);
  EXPECT_EQ(stats_at(rx.pulls, end).underruns, 0u);
  const std::int64_t lag = find_lag(rx.out, rx.signal, 10'000);
  ASSERT_GE(lag, 0);
  EXPECT_LT(max_error(rx.out, rx.signal, lag, static_cast<std::size_t>(lag) + 64,
                      static_cast<std::size_t>(lag) + 1000 * kFrames),
            2e-5);
}

// The sender restarts (its frame counter jumps): the buffer follows it to the
// new timeline once, and plays the new stream at the target depth.
TEST(JitterBuffer, SenderRestartResyncs) {
  struct Jump {
    const char* name;
    std::uint64_t new_first;
  };
  const std::uint64_t old_first = 50'000'000;
  for (const Jump& j : {Jump{"back to 0", 0}, Jump{"far ahead", old_first + 100'000'000},
                        Jump{"off the grid", old_first + 3 * kRate + 12'345},
                        Jump{"just behind playout", old_first + 1500 * kFrames - 20 * kFrames}}) {
    SCOPED_TRACE(j.name);
    JitterBuffer jb(mono());
    Receiver rx;
    auto packets = sender(3000, 0.0, kMs, old_first);
    for (std::size_t k = 1500; k < packets.size(); ++k) {
      packets[k].first_frame = j.new_first + (k - 1500) * kFrames;
    }
    rx.run(jb, packets, packets.back().arrival - 5 * kMs);
    const JitterBufferStats& st = jb.stats();
    EXPECT_EQ(st.resyncs, 1u);
    EXPECT_TRUE(st.playing);
    // Only the packets that told us about the jump are lost.
    EXPECT_GE(st.played, 3000u - 30u);
    EXPECT_NEAR(static_cast<double>(st.depth_ns), static_cast<double>(st.target_ns), 0.3e6);
    // Playing again within a few ms of the jump.
    for (const PullInfo& p : rx.pulls) {
      if (p.now > packets[1500].arrival + 30 * kMs) {
        EXPECT_TRUE(p.stats.playing) << p.now;
      }
    }
  }
}

TEST(JitterBuffer, FrameCounterWrapIsNotAJump) {
  JitterBuffer jb(mono());
  Receiver rx;
  rx.signal = band_limited();
  // Starts 300 packets before the 64-bit counter wraps.
  auto packets = sender(1000, 0.0, kMs, std::uint64_t{0} - 300 * kFrames);
  rx.run(jb, packets, packets.back().arrival - 5 * kMs);
  const JitterBufferStats& st = jb.stats();
  EXPECT_EQ(st.resyncs, 0u);
  EXPECT_EQ(st.missing_packets, 0u);
  EXPECT_GE(st.played, 990u);
  const std::int64_t lag = find_lag(rx.out, rx.signal, 10'000);
  ASSERT_GE(lag, 0);
  EXPECT_LT(max_error(rx.out, rx.signal, lag, static_cast<std::size_t>(lag) + 64, rx.out.size()),
            2e-5);
}

// An underrun holds the playout; a short gap in the stream (packets lost, the
// sender's counter ran on) is then skipped to win the delay back, and a long
// one (beyond max_target_ns) re-anchors on the packets that come after it.
TEST(JitterBuffer, GapsInTheStreamDoNotLeaveExtraLatency) {
  for (const Nanos gap : {30 * kMs, 500 * kMs}) {
    SCOPED_TRACE(gap);
    JitterBuffer jb(mono());
    Receiver rx;
    auto packets = sender(2250);  // 3 s
    const Nanos from = 1'000 * kMs;
    std::erase_if(packets,
                  [&](const Packet& p) { return p.arrival >= from && p.arrival < from + gap; });
    rx.run(jb, packets, 3'000 * kMs);
    const JitterBufferStats& st = jb.stats();
    EXPECT_GT(st.underruns, 0u);
    EXPECT_EQ(st.reanchors, gap > jb.stats().target_ns + 200 * kMs ? 1u : 0u);
    EXPECT_EQ(st.late, 0u);
    // Shortly after the stream is back, the depth is on target again.
    for (const PullInfo& p : rx.pulls) {
      if (p.now > from + gap + 100 * kMs) {
        EXPECT_TRUE(p.stats.playing);
        EXPECT_NEAR(static_cast<double>(p.stats.depth_ns), static_cast<double>(p.stats.target_ns),
                    0.5e6)
            << p.now;
      }
    }
  }
}

// The latency the buffer adds with 1 ms +- 0.5 ms of uniform jitter on 64-frame
// packets. What it must add at least: the jitter range (1 ms) less this
// packet's own jitter (0.5 ms at the median), plus the resampler's look-ahead
// and up to one pull (the pull that first needs a packet starts before its
// playout): about 0.5 + 0.7 + 1.3 = 2.5 ms at the median in the worst pull
// phase. The target adds the quantile's and margin's share on top.
TEST(JitterBuffer, AddedLatencyIsNearTheMinimum) {
  JitterBuffer jb(mono());
  Receiver rx;
  auto packets = sender(15'000);  // 20 s
  std::mt19937 rng(11);
  std::uniform_int_distribution<Nanos> jitter(-500'000, 500'000);
  for (Packet& p : packets) p.arrival += jitter(rng);
  rx.run(jb, packets, 20'000 * kMs);
  const JitterBufferStats& st = jb.stats();
  EXPECT_EQ(st.late, 0u);
  EXPECT_EQ(st.missing_packets, 0u);
  EXPECT_EQ(st.underruns, 0u);
  const std::vector<Nanos> held = jb.held_ns_history();
  ASSERT_EQ(held.size(), 4096u);
  const Nanos p50 = percentile(held, 0.5), p99 = percentile(held, 0.99);
  const Nanos lowest = percentile(held, 0.0);
  std::printf(
      "held: p50 %.2f ms, p99 %.2f ms, min %.2f ms; target %.2f ms, jitter p95 %.2f ms, "
      "look-ahead %d frames\n",
      p50 / 1e6, p99 / 1e6, lowest / 1e6, st.target_ns / 1e6, st.jitter_ns / 1e6,
      jb.resampler_lookahead_frames());
  EXPECT_LT(p50, 3 * kMs);
  EXPECT_GT(lowest, 0);  // every packet was in before its playout
  EXPECT_LT(st.target_ns, 3'600'000);
}

// Everything at once, seeded: loss, reordering, duplicates, delay spikes and
// a sender restart. Every push is accounted for exactly once, the output
// stays finite and bounded, and no packet plays before it arrived.
TEST(JitterBuffer, RandomImpairmentsKeepTheBooks) {
  for (const std::uint32_t seed : {1u, 2u}) {
    SCOPED_TRACE(seed);
    JitterBuffer jb(mono());
    Receiver rx;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::uniform_int_distribution<Nanos> jitter(0, 3 * kMs);
    auto packets = sender(7'500);  // 10 s
    std::vector<Packet> sent;
    for (Packet& p : packets) {
      if (p.k >= 4500) p.first_frame = 777 + static_cast<std::uint64_t>(p.k - 4500) * kFrames;
      if (u(rng) < 0.05) continue;  // lost
      p.arrival += jitter(rng);
      if (u(rng) < 0.01) p.arrival += 30 * kMs;  // spike
      sent.push_back(p);
      if (u(rng) < 0.05) {
        Packet copy = p;
        copy.arrival += jitter(rng);
        sent.push_back(copy);
      }
    }
    std::size_t pushes = 0;
    for (const Packet& p : sent) pushes += p.arrival <= 10'500 * kMs ? 1 : 0;
    rx.run(jb, sent, 10'500 * kMs);
    const JitterBufferStats& st = jb.stats();
    EXPECT_EQ(st.packets + st.late + st.duplicates + st.overflow + st.misaligned + st.malformed -
                  st.resyncs,
              pushes);
    EXPECT_GE(st.resyncs, 1u);
    EXPECT_LE(st.played, st.packets);
    EXPECT_GT(st.played, 6'500u);
    EXPECT_TRUE(stats_at(rx.pulls, 9'900 * kMs).playing);
    for (const float x : rx.out) {
      ASSERT_TRUE(std::isfinite(x));
      ASSERT_LT(std::abs(x), 4.0f);
    }
    for (const Nanos h : jb.held_ns_history()) EXPECT_GE(h, 0);
  }
}

TEST(JitterBuffer, BadInputIsCountedNotFatal) {
  JitterBufferConfig cfg = mono();
  cfg.channels = 2;
  cfg.max_pull_frames = 32;
  JitterBuffer jb(cfg);
  std::vector<float> short_packet(10, 0.1f);
  jb.push(0, short_packet, 0);
  EXPECT_EQ(jb.stats().malformed, 1u);
  std::vector<float> ok(static_cast<std::size_t>(2 * kFrames), 0.25f);
  Nanos now = 0;
  for (int k = 0; k < 200; ++k) {
    jb.push(static_cast<std::uint64_t>(k * kFrames), ok, now);
    // Odd sizes: not a multiple of the channel count, larger than max_pull_frames.
    std::vector<float> out(static_cast<std::size_t>(2 * 100 + 1), -1.0f);
    jb.pull(out, now);
    EXPECT_EQ(out.back(), 0.0f);
    for (float v : out) EXPECT_TRUE(std::isfinite(v));
    now += 2'083'333;
  }
  EXPECT_TRUE(jb.stats().playing);
  EXPECT_EQ(jb.stats().packets, 200u);
  // A silly config is made sane rather than crashing.
  JitterBufferConfig silly;
  silly.channels = 0;
  silly.frames_per_packet = -3;
  silly.capacity_packets = 0;
  silly.quantile = std::nan("");
  JitterBuffer jb2(silly);
  std::vector<float> out(16);
  jb2.pull(out, 0);
  EXPECT_FALSE(jb2.stats().playing);
}

}  // namespace
}  // namespace jamnet::media::jdat
