// Deterministic simulation (virtual time, no threads, no sleeping) of a
// session: one master and two followers whose crystals are offset and skewed.
// Followers ping the master at 20 Hz over a jittery, lossy network, feed a
// ClockEstimator and steer a SessionClock; we measure how closely their
// session timelines follow the master's. The bounds asserted here are the
// acceptance bounds for the estimator and the session clock defaults.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "jamnet/sync/clock_estimator.hpp"
#include "jamnet/sync/clock_source.hpp"
#include "jamnet/sync/session_clock.hpp"

namespace jamnet::sync {
namespace {

constexpr Nanos kMs = 1'000'000;
constexpr Nanos kSec = 1'000'000'000;
constexpr Nanos kUs = 1'000;

struct Peer {
  TestClock crystal;  // local clock as a function of true time m
  SessionClock clock;
  ClockEstimator est;
  int server = 0;  // peer this one pings (followers)
  bool pinging = false;
  Peer(Nanos offset, double skew_ppm) : crystal(offset, skew_ppm, 0) {}
  Nanos local(Nanos m) const { return crystal.from_monotonic(m); }
  Nanos session(Nanos m) const { return clock.session_at(local(m)); }
};

struct FollowerTrace {
  std::vector<Nanos> t;     // true time of each measurement
  std::vector<double> err;  // session error against the old master, ns
  std::vector<bool> locked;
  double max_steer_jump_ns = 0;  // |session(t4) after steer - before| while locked
  double max_linear_dev_ns = 0;  // 10 ms linearity deviation while locked
  double max_drift_err_ppm = 0;  // estimator drift vs truth after 60 s (no handoff)
  double max_clock_drift_err_ppm = 0;
  std::uint64_t steps_at_handoff = 0;
};

struct SimResult {
  FollowerTrace f[2];
  std::uint64_t steps[2] = {0, 0};
  std::uint64_t steps_locked[2] = {0, 0};
  bool locked_end[2] = {false, false};
};

enum class Kind { kPing, kPingArrive, kPongArrive, kMeasure, kHandoff };
struct Event {
  Nanos at;
  std::uint64_t seq;
  Kind kind;
  int peer = 0;    // follower index (1 or 2) for ping / pong
  int server = 0;  // peer answering
  SyncSample s;
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
};
Event ev(Nanos at, Kind kind, int peer = 0, int server = 0) {
  Event e{};
  e.at = at;
  e.kind = kind;
  e.peer = peer;
  e.server = server;
  return e;
}

SimResult simulate(std::uint32_t seed, bool handoff) {
  constexpr Nanos kEnd = 120 * kSec;
  constexpr Nanos kHandoffAt = 60 * kSec;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(-0.5 * kMs, 0.5 * kMs);
  std::uniform_real_distribution<double> proc(20.0 * kUs, 80.0 * kUs);
  std::bernoulli_distribution lost(0.10);
  const auto one_way = [&] { return kMs + static_cast<Nanos>(std::llround(jitter(rng))); };

  // peers[0]: master; [1], [2]: followers.
  std::deque<Peer> peers;  // SessionClock is not movable
  peers.emplace_back(3 * kSec, 100.0);
  peers.emplace_back(-2 * kSec, -100.0);
  peers.emplace_back(7 * kSec, 0.0);
  peers[0].clock.reset_to_local(peers[0].local(0));
  peers[0].clock.hold(peers[0].local(0));
  for (int i = 1; i <= 2; ++i) {
    peers[i].clock.reset_to_local(peers[i].local(0));
    peers[i].server = 0;
    peers[i].pinging = true;
  }
  const auto master_truth = [&](Nanos m) { return peers[0].session(m); };
  const auto drift_truth = [&](int i) {
    return ((1.0 + peers[0].crystal.skew_ppm() * 1e-6) /
                (1.0 + peers[i].crystal.skew_ppm() * 1e-6) -
            1.0) *
           1e6;
  };

  std::priority_queue<Event, std::vector<Event>, std::greater<>> q;
  std::uint64_t seq = 0;
  const auto push = [&](Event e) {
    e.seq = seq++;
    q.push(e);
  };
  push(ev(7 * kMs, Kind::kPing, 1));
  push(ev(23 * kMs, Kind::kPing, 2));
  push(ev(0, Kind::kMeasure));
  if (handoff) push(ev(kHandoffAt, Kind::kHandoff));

  SimResult r;
  Nanos prev_measure = -1;
  Nanos prev_session[3] = {0, 0, 0};
  double prev_rate[3] = {1, 1, 1};
  bool gone0 = false;

  while (!q.empty()) {
    const Event e = q.top();
    q.pop();
    if (e.at > kEnd) break;
    const Nanos m = e.at;
    switch (e.kind) {
      case Kind::kPing: {
        Peer& f = peers[e.peer];
        if (!f.pinging) break;
        push(ev(m + 50 * kMs, Kind::kPing, e.peer));
        if (lost(rng)) break;
        Event a = ev(m + one_way(), Kind::kPingArrive, e.peer, f.server);
        a.s.t1 = f.local(m);
        push(a);
        break;
      }
      case Kind::kPingArrive: {
        if (e.server == 0 && gone0) break;  // the old master has left
        const Peer& srv = peers[e.server];
        Event p = e;
        p.kind = Kind::kPongArrive;
        p.s.t2 = srv.session(m);
        const Nanos sent = m + static_cast<Nanos>(std::llround(proc(rng)));
        p.s.t3 = srv.session(sent);
        if (lost(rng)) break;
        p.at = sent + one_way();
        push(p);
        break;
      }
      case Kind::kPongArrive: {
        Peer& f = peers[e.peer];
        if (!f.pinging || e.server != f.server) break;  // stale answer
        SyncSample s = e.s;
        s.t4 = f.local(m);
        if (!f.est.add(s)) break;
        const auto est = f.est.estimate();
        if (!est) break;
        const bool was_locked = f.clock.locked();
        const Nanos before = f.clock.session_at(s.t4);
        const std::uint64_t steps_before = f.clock.steps();
        f.clock.steer(s.t4, *est);
        const Nanos after = f.clock.session_at(s.t4);
        FollowerTrace& tr = r.f[e.peer - 1];
        if (was_locked && f.clock.steps() == steps_before) {
          tr.max_steer_jump_ns =
              std::max(tr.max_steer_jump_ns, std::abs(static_cast<double>(after - before)));
        }
        if (!handoff && m >= 60 * kSec) {
          const double truth = drift_truth(e.peer);
          tr.max_drift_err_ppm = std::max(tr.max_drift_err_ppm, std::abs(est->drift_ppm - truth));
          tr.max_clock_drift_err_ppm =
              std::max(tr.max_clock_drift_err_ppm, std::abs(f.clock.drift_ppm() - truth));
        }
        break;
      }
      case Kind::kMeasure: {
        push(ev(m + 10 * kMs, Kind::kMeasure));
        const Nanos ms = master_truth(m);
        for (int i = 1; i <= 2; ++i) {
          const Peer& f = peers[i];
          FollowerTrace& tr = r.f[i - 1];
          const Nanos sess = f.session(m);
          tr.t.push_back(m);
          tr.err.push_back(static_cast<double>(sess - ms));
          tr.locked.push_back(f.clock.locked());
          if (prev_measure >= 0 && f.clock.locked()) {
            const double dl = static_cast<double>(f.local(m) - f.local(prev_measure));
            const double dev = static_cast<double>(sess - prev_session[i]) - dl * prev_rate[i];
            tr.max_linear_dev_ns = std::max(tr.max_linear_dev_ns, std::abs(dev));
          }
          prev_session[i] = sess;
          prev_rate[i] = f.clock.state().rate;
        }
        prev_measure = m;
        break;
      }
      case Kind::kHandoff: {
        gone0 = true;
        Peer& f1 = peers[1];
        f1.clock.hold(f1.local(m));  // the elected successor continues the timeline
        f1.pinging = false;
        Peer& f2 = peers[2];
        f2.est.reset();
        f2.server = 1;
        for (int i = 0; i < 2; ++i) r.f[i].steps_at_handoff = peers[i + 1].clock.steps();
        break;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    r.steps[i] = peers[i + 1].clock.steps();
    r.steps_locked[i] = peers[i + 1].clock.steps_while_locked();
    r.locked_end[i] = peers[i + 1].clock.locked();
  }
  return r;
}

// First measurement from which the follower stays locked with |error| < 100 µs
// for a full second; nullopt if never.
std::optional<std::size_t> convergence_index(const FollowerTrace& tr) {
  constexpr std::size_t kRun = 100;  // 1 s of 10 ms measurements
  std::size_t run = 0;
  for (std::size_t i = 0; i < tr.t.size(); ++i) {
    if (tr.locked[i] && std::abs(tr.err[i]) < 100'000.0) {
      if (++run > kRun) return i - kRun;
    } else {
      run = 0;
    }
  }
  return std::nullopt;
}

double percentile_abs(const FollowerTrace& tr, std::size_t from, std::size_t to, double p) {
  std::vector<double> v;
  for (std::size_t i = from; i < to; ++i) v.push_back(std::abs(tr.err[i]));
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(k, v.size() - 1)];
}

double max_abs(const FollowerTrace& tr, std::size_t from, std::size_t to) {
  double m = 0;
  for (std::size_t i = from; i < to; ++i) m = std::max(m, std::abs(tr.err[i]));
  return m;
}

constexpr std::uint32_t kSeeds[] = {1, 2, 3};

TEST(ClockSim, FollowersTrackTheMaster) {
  for (const std::uint32_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const SimResult r = simulate(seed, false);
    for (int i = 0; i < 2; ++i) {
      SCOPED_TRACE("follower " + std::to_string(i + 1));
      const FollowerTrace& tr = r.f[i];
      const auto conv = convergence_index(tr);
      ASSERT_TRUE(conv.has_value());
      const double conv_s = static_cast<double>(tr.t[*conv]) * 1e-9;
      const double p99 = percentile_abs(tr, *conv, tr.t.size(), 0.99);
      const double worst = max_abs(tr, *conv, tr.t.size());
      std::printf(
          "[ClockSim] seed %u follower %d: converged %.2f s, p99 |err| %.1f us, max |err| %.1f us, "
          "drift err %.3f ppm (clock %.3f ppm), max steer jump %.0f ns, max 10 ms dev %.0f ns, "
          "steps %llu\n",
          seed, i + 1, conv_s, p99 * 1e-3, worst * 1e-3, tr.max_drift_err_ppm,
          tr.max_clock_drift_err_ppm, tr.max_steer_jump_ns, tr.max_linear_dev_ns,
          static_cast<unsigned long long>(r.steps[i]));
      const std::string key = "seed" + std::to_string(seed) + "_f" + std::to_string(i + 1);
      RecordProperty(key + "_converged_s", std::to_string(conv_s));
      RecordProperty(key + "_p99_us", std::to_string(p99 * 1e-3));
      RecordProperty(key + "_drift_err_ppm", std::to_string(tr.max_drift_err_ppm));
      EXPECT_LT(conv_s, 30.0);
      EXPECT_LT(p99, 100'000.0);
      EXPECT_LT(tr.max_drift_err_ppm, 1.0);
      EXPECT_LT(tr.max_clock_drift_err_ppm, 1.0);
      EXPECT_EQ(r.steps_locked[i], 0u);
      EXPECT_TRUE(r.locked_end[i]);
      EXPECT_LE(tr.max_steer_jump_ns, 1.0);  // re-anchoring is continuous (rounding only)
      EXPECT_LT(tr.max_linear_dev_ns, 1'000.0);
    }
  }
}

TEST(ClockSim, HandoffKeepsTheTimeline) {
  for (const std::uint32_t seed : kSeeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const SimResult r = simulate(seed, true);
    const FollowerTrace& f1 = r.f[0];
    const FollowerTrace& f2 = r.f[1];
    const auto conv2 = convergence_index(f2);
    ASSERT_TRUE(conv2.has_value());
    std::size_t h = 0;
    while (h < f2.t.size() && f2.t[h] < 60 * kSec) ++h;
    ASSERT_LT(*conv2, h);
    const double f2_max_after = max_abs(f2, h, f2.t.size());
    const double f2_p99_after = percentile_abs(f2, h, f2.t.size(), 0.99);
    const double f1_max_after = max_abs(f1, h, f1.t.size());
    std::printf(
        "[ClockSim] handoff seed %u: follower 2 vs old master after handoff max |err| %.1f us "
        "(p99 %.1f us); new master (follower 1) drifts to %.1f us; f2 steps %llu -> %llu, "
        "locked at end %d\n",
        seed, f2_max_after * 1e-3, f2_p99_after * 1e-3, f1_max_after * 1e-3,
        static_cast<unsigned long long>(f2.steps_at_handoff),
        static_cast<unsigned long long>(r.steps[1]), static_cast<int>(r.locked_end[1]));
    RecordProperty("handoff_seed" + std::to_string(seed) + "_f2_max_us",
                   std::to_string(f2_max_after * 1e-3));
    EXPECT_LT(f2_max_after, 200'000.0);
    EXPECT_EQ(r.steps_locked[1], 0u);
    EXPECT_EQ(r.steps[1], f2.steps_at_handoff);  // no step after the handoff
    EXPECT_TRUE(r.locked_end[1]);
    EXPECT_EQ(r.steps_locked[0], 0u);
    EXPECT_LE(f2.max_steer_jump_ns, 1.0);
  }
}

}  // namespace
}  // namespace jamnet::sync
