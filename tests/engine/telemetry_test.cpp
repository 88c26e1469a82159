#include "jamnet/engine/telemetry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace jamnet::engine {
namespace {

// Synthetic clocks throughout: the tests feed wake and end times directly, so
// timing logic is checked exactly, without sleeping.
constexpr Nanos kMs = 1'000'000;
constexpr Nanos kUs = 1'000;

static_assert(noexcept(std::declval<TelemetryRecorder&>().record_cycle(0, 0, DrainStats{}, 0, 0,
                                                                       0)),
              "called on the audio thread");
static_assert(noexcept(std::declval<TelemetryRecorder&>().set_period(0)));
static_assert(noexcept(std::declval<TelemetryRecorder&>().priority_latency()));
static_assert(std::is_trivially_copyable_v<TelemetrySnapshot>,
              "published by copy through a triple buffer, no allocation");
static_assert(!std::is_copy_constructible_v<TelemetryRecorder>);

void cycle(TelemetryRecorder& rec, Nanos wake, Nanos busy = 100 * kUs, const DrainStats& d = {},
           std::size_t pdepth = 0, std::size_t ndepth = 0, std::uint64_t xruns = 0) {
  rec.record_cycle(wake, wake + busy, d, pdepth, ndepth, xruns);
}

Nanos nearest_rank(std::vector<Nanos> v, double q) {
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

TEST(Telemetry, NothingPublishedBeforeTheFirstWindowEnds) {
  TelemetryRecorder rec(kMs);
  EXPECT_EQ(rec.latest().seq, 0u);
  for (int k = 0; k < 998; ++k) cycle(rec, k * kMs);
  EXPECT_EQ(rec.latest().seq, 0u);
  EXPECT_EQ(rec.latest().cycles, 0u);
}

TEST(Telemetry, OneLateTickGivesTheJitterMax) {
  // 1 ms ticks from t0; the tick due at 500 ms comes at 503 ms and the clock
  // carries on from there. One delta of 4 ms: a jitter of exactly 3000 us.
  const Nanos t0 = 7'000 * kMs;  // any origin: CLOCK_MONOTONIC is not zero-based
  TelemetryRecorder rec(kMs);
  std::uint64_t cycles = 0;
  for (Nanos t = 0; rec.latest().seq == 0; t += (t == 499 * kMs ? 4 : 1) * kMs) {
    ASSERT_LT(t, 2'000 * kMs);
    cycle(rec, t0 + t);
    ++cycles;
  }
  const TelemetrySnapshot& s = rec.latest();
  EXPECT_EQ(s.seq, 1u);
  EXPECT_EQ(s.window_start_ns, t0);
  EXPECT_EQ(s.window_ns, 1'000 * kMs);
  EXPECT_EQ(s.period_ns, kMs);
  EXPECT_EQ(s.cycles, cycles);
  EXPECT_EQ(s.cycles, 500u + 497u);  // 0..499 ms and 503..999 ms
  EXPECT_DOUBLE_EQ(s.tick_jitter_us_max, 3000.0);
  EXPECT_EQ(s.tick_jitter_us_p99, 0.0);  // one late tick in 996 deltas is above p99
  // 996 deltas spanning 0 .. 999 ms.
  EXPECT_NEAR(s.tick_delta_us_mean, 999'000.0 / 996.0, 1e-6);
  // The first cycle has no delta: the whole-run histogram holds cycles - 1.
  EXPECT_EQ(s.tick_jitter_total.count(), cycles - 1);
  EXPECT_EQ(s.tick_jitter_total.max(), 3 * kMs);
}

TEST(Telemetry, JitterP99MatchesTheDistribution) {
  // Jitter of up to 50 us on every tick, 200 us on 2 % of them and 700 us on
  // 0.5 %: p99 lands among the 200 us ones. Compared with the exact
  // nearest-rank p99 of the deltas the test fed, within one histogram bin.
  TelemetryRecorder rec(kMs);
  std::mt19937 rng(99);
  std::uniform_int_distribution<Nanos> small(-50 * kUs, 50 * kUs);
  std::vector<Nanos> jitters;
  Nanos wake = 0;
  for (int k = 0; rec.latest().seq == 0; ++k) {
    ASSERT_LT(k, 5'000);
    if (k > 0) {
      Nanos delta = kMs + small(rng);
      if (k % 50 == 0) delta = kMs + 200 * kUs;
      if (k % 200 == 7) delta = kMs - 700 * kUs;  // early ticks count as jitter too
      wake += delta;
      jitters.push_back(std::abs(delta - kMs));
    }
    cycle(rec, wake);
  }
  const TelemetrySnapshot& s = rec.latest();
  ASSERT_EQ(s.cycles, jitters.size() + 1);
  const double exact_p99_us = static_cast<double>(nearest_rank(jitters, 0.99)) / 1000.0;
  EXPECT_DOUBLE_EQ(exact_p99_us, 200.0);
  EXPECT_GE(s.tick_jitter_us_p99, exact_p99_us);
  EXPECT_LE(s.tick_jitter_us_p99, exact_p99_us * (1 + 1.0 / 32));
  EXPECT_DOUBLE_EQ(s.tick_jitter_us_max, 700.0);
}

TEST(Telemetry, WindowsPublishEveryWindowOfWakeTime) {
  TelemetryRecorder rec(kMs, 100 * kMs);
  std::uint64_t seen_seq = 0;
  for (int k = 0; k <= 1'050; ++k) {
    cycle(rec, k * kMs);
    const TelemetrySnapshot& s = rec.latest();
    if (s.seq != seen_seq) {
      // Published by the window's last cycle, the one whose successor is due
      // in the next window.
      EXPECT_EQ(s.seq, seen_seq + 1);
      EXPECT_EQ(k % 100, 99) << "published at " << k << " ms";
      EXPECT_EQ(s.window_start_ns, static_cast<Nanos>(seen_seq) * 100 * kMs);
      EXPECT_EQ(s.window_ns, 100 * kMs);
      EXPECT_EQ(s.cycles, 100u);
      EXPECT_EQ(s.tick_jitter_us_max, 0.0);
      seen_seq = s.seq;
    }
  }
  EXPECT_EQ(seen_seq, 10u);

  // The cycles stop for 450 ms (a stalled or restarted backend). The partial
  // window [1000, 1100) ms is published when they resume, and the stall shows
  // as jitter in the window that holds the resumed cycle.
  cycle(rec, 1'500 * kMs);
  EXPECT_EQ(rec.latest().seq, 11u);
  EXPECT_EQ(rec.latest().window_start_ns, 1'000 * kMs);
  EXPECT_EQ(rec.latest().cycles, 51u);
  for (int k = 1'501; rec.latest().seq == 11; ++k) {
    ASSERT_LT(k, 2'000);
    cycle(rec, k * kMs);
  }
  const TelemetrySnapshot& s = rec.latest();
  EXPECT_EQ(s.seq, 12u);
  EXPECT_EQ(s.window_start_ns, 1'500 * kMs);  // back on a window grid from the resumed cycle
  EXPECT_EQ(s.cycles, 100u);
  EXPECT_DOUBLE_EQ(s.tick_jitter_us_max, 449'000.0);
}

TEST(Telemetry, LoadCommandsDepthsAndLatencyAggregatePerWindow) {
  TelemetryRecorder rec(kMs, 10 * kMs);
  for (int k = 0; k < 10; ++k) {
    DrainStats d;
    d.priority = static_cast<std::size_t>(k);
    d.normal = 2;
    d.coalesced = 1;
    d.budget_hit = k == 3;
    // What drain() would record into the histogram it is given.
    for (int i = 0; i < 10; ++i) {
      const Nanos latency = (k == 5 && i == 0) ? 1'000 * kUs : 10 * kUs;
      rec.priority_latency().add(latency);
      d.max_priority_latency_ns = std::max(d.max_priority_latency_ns, latency);
    }
    const Nanos busy = k == 6 ? 900 * kUs : 250 * kUs;
    cycle(rec, k * kMs, busy, d, static_cast<std::size_t>(10 * k), 5,
          static_cast<std::uint64_t>(k / 2));
  }
  const TelemetrySnapshot& s = rec.latest();
  ASSERT_EQ(s.seq, 1u);
  EXPECT_EQ(s.cycles, 10u);
  EXPECT_NEAR(s.load_max, 0.9, 1e-12);
  EXPECT_NEAR(s.load_mean, (9 * 0.25 + 0.9) / 10, 1e-12);
  EXPECT_EQ(s.priority_cmds, 45u);
  EXPECT_EQ(s.normal_cmds, 20u);
  EXPECT_EQ(s.coalesced, 10u);
  EXPECT_EQ(s.budget_hits, 1u);
  EXPECT_EQ(s.priority_max_per_cycle, 9u);
  EXPECT_EQ(s.normal_max_per_cycle, 2u);
  EXPECT_EQ(s.priority_depth_max, 90u);
  EXPECT_EQ(s.normal_depth_max, 5u);
  EXPECT_EQ(s.xruns, 4u);  // the backend's total at the window's last cycle
  // 99 of 100 latencies are 10 us: p99 is one of them; the max is the 1 ms one.
  EXPECT_GE(s.priority_latency_us_p99, 10.0);
  EXPECT_LE(s.priority_latency_us_p99, 10.0 * (1 + 1.0 / 32));
  EXPECT_DOUBLE_EQ(s.priority_latency_us_max, 1'000.0);
  EXPECT_EQ(s.priority_latency_total.count(), 100u);

  // The next window starts from zero; the whole-run totals keep growing.
  DrainStats d;
  d.priority = 1;
  rec.priority_latency().add(20 * kUs);
  for (int k = 10; k < 20; ++k) cycle(rec, k * kMs, 100 * kUs, k == 10 ? d : DrainStats{});
  const TelemetrySnapshot& s2 = rec.latest();
  ASSERT_EQ(s2.seq, 2u);
  EXPECT_EQ(s2.priority_cmds, 1u);
  EXPECT_EQ(s2.normal_cmds, 0u);
  EXPECT_EQ(s2.budget_hits, 0u);
  EXPECT_EQ(s2.priority_depth_max, 0u);
  EXPECT_NEAR(s2.load_max, 0.1, 1e-12);
  EXPECT_NEAR(s2.priority_latency_us_max, 20.0, 1e-9);
  EXPECT_EQ(s2.priority_latency_total.count(), 101u);
  EXPECT_EQ(s2.priority_latency_total.max(), 1'000 * kUs);
  EXPECT_EQ(s2.tick_jitter_total.count(), 19u);
}

TEST(Telemetry, LatencyMaxComesFromDrainStatsWithoutAHistogram) {
  TelemetryRecorder rec(kMs, 5 * kMs);
  DrainStats d;
  d.priority = 1;
  d.max_priority_latency_ns = 333 * kUs;
  for (int k = 0; k < 5; ++k) cycle(rec, k * kMs, 100 * kUs, k == 2 ? d : DrainStats{});
  ASSERT_EQ(rec.latest().seq, 1u);
  EXPECT_DOUBLE_EQ(rec.latest().priority_latency_us_max, 333.0);
  EXPECT_EQ(rec.latest().priority_latency_us_p99, 0.0);  // no samples were recorded
}

TEST(Telemetry, SetPeriodChangesTheTargetAndSkipsTheDeltaAcrossIt) {
  TelemetryRecorder rec(kMs, 100 * kMs);
  Nanos t = 0;
  for (int k = 0; k < 20; ++k, t += kMs) cycle(rec, t);
  rec.set_period(2 * kMs);  // the backend doubled its buffer
  t += 5 * kMs;             // and took a while to restart: not jitter
  for (; rec.latest().seq == 0; t += 2 * kMs) {
    ASSERT_LT(t, 1'000 * kMs);
    cycle(rec, t, kMs);
  }
  const TelemetrySnapshot& s = rec.latest();
  EXPECT_EQ(s.period_ns, 2 * kMs);
  EXPECT_EQ(s.tick_jitter_us_max, 0.0);
  EXPECT_EQ(s.tick_jitter_total.count(), s.cycles - 2);  // first cycle and the one after the change
  EXPECT_NEAR(s.load_max, 0.5, 1e-12);                   // 1 ms busy of a 2 ms period
}

TEST(Telemetry, ResetTotalsStartsTheWholeRunHistogramsAgain) {
  TelemetryRecorder rec(kMs, 10 * kMs);
  int k = 0;
  for (; k < 10; ++k) {
    rec.priority_latency().add(5 * kUs);
    cycle(rec, k * kMs);
  }
  ASSERT_EQ(rec.latest().seq, 1u);
  EXPECT_EQ(rec.latest().tick_jitter_total.count(), 9u);
  EXPECT_EQ(rec.latest().priority_latency_total.count(), 10u);
  rec.reset_totals();  // a control thread, after a warm-up
  for (; k < 20; ++k) cycle(rec, k * kMs);
  const TelemetrySnapshot& s = rec.latest();
  ASSERT_EQ(s.seq, 2u);
  EXPECT_EQ(s.tick_jitter_total.count(), 10u);  // only the second window's deltas
  EXPECT_EQ(s.priority_latency_total.count(), 0u);
}

TEST(Telemetry, JsonIsOneLineWithEveryField) {
  TelemetryRecorder rec(kMs, 10 * kMs);
  for (int k = 0; k < 10; ++k) cycle(rec, (k < 5 ? k : k + 3) * kMs, 500 * kUs);
  const std::string json = TelemetryRecorder::to_json(rec.latest());
  ASSERT_FALSE(json.empty());
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_EQ(json.find('\n'), std::string::npos);
  for (const char* field : {"seq",
                            "window_start_ns",
                            "window_ns",
                            "cycles",
                            "period_ns",
                            "tick_delta_us_mean",
                            "tick_jitter_us_p99",
                            "tick_jitter_us_max",
                            "load_mean",
                            "load_max",
                            "priority_cmds",
                            "normal_cmds",
                            "coalesced",
                            "budget_hits",
                            "priority_max_per_cycle",
                            "normal_max_per_cycle",
                            "priority_depth_max",
                            "normal_depth_max",
                            "priority_latency_us_p99",
                            "priority_latency_us_max",
                            "xruns",
                            "tick_jitter_total_count",
                            "tick_jitter_total_us_p99",
                            "tick_jitter_total_us_max",
                            "priority_latency_total_count",
                            "priority_latency_total_us_p99",
                            "priority_latency_total_us_max"}) {
    EXPECT_NE(json.find(std::string("\"") + field + "\":"), std::string::npos) << field;
  }
  EXPECT_NE(json.find("\"seq\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"cycles\":7,"), std::string::npos) << json;  // 0..4 and 8..9 ms
  const auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["tick_jitter_us_max"], 3000.0) << json;
  EXPECT_EQ(j["load_max"], 0.5) << json;
  EXPECT_EQ(TelemetryRecorder::to_json(TelemetrySnapshot{}).find("\"seq\":0,"), 1u);
}

}  // namespace
}  // namespace jamnet::engine
