// ClockDriftArbiter: one peer's part in agreeing on the session timeline.
//
// - Elects the clock master with the other peers (election.hpp) from the
//   sync_status messages every peer broadcasts once a second, at once when
//   its role changes, and at once to a peer it has not heard before. A peer
//   listens for `listen_ns` after it starts before it may claim the master
//   role, and while it listens follows only a peer that already is master, so
//   a newcomer hears a running master and never unseats it.
// - Only pongs from a master that says it is master are used: a peer that is
//   itself still following someone has a timeline that may move.
// - A follower pings the master at `sync_hz` (1..100, default 20); each pong
//   is one NTP-style sample (t1/t4 on our local clock, t2/t3 on the master's
//   session clock) for the ClockEstimator (min-RTT filter + regression); the
//   SessionClock is steered after every pong (slewed; no jumps once locked).
// - Every peer answers pings with its session clock, timestamping the
//   receive with the kernel's receive time when the caller has it.
// - When the master leaves (goodbye, discovery timeout or no status for
//   `peer_timeout_ns`), the next peer by rank holds its session clock (keeps
//   its rate) and becomes master; the others switch to it. The timeline
//   continues without a jump.
//
// Network-agnostic: messages go out through the Send callback and come in
// through on_*(), so tests run it on a simulated network in virtual time.
// Send is called without the arbiter's lock held, but it must not call back
// into the same arbiter synchronously (queue the delivery instead).
// Thread-safe: on_*() may run on a receive thread while tick() runs on the
// control thread (one mutex; never on the audio thread). The session clock
// (session()) is lock-free for readers on any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "jamnet/core/uuid.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/clock_estimator.hpp"
#include "jamnet/sync/clock_source.hpp"
#include "jamnet/sync/election.hpp"
#include "jamnet/sync/session_clock.hpp"

namespace jamnet::sync {

struct ArbiterConfig {
  Uuid self;
  int priority = 0;           // higher is preferred as master
  bool force_master = false;  // configured master
  double sync_hz = 20;        // pings per second to the master: 1..100
  Nanos status_interval_ns = 1'000'000'000;
  Nanos listen_ns = 2'500'000'000;        // after start, before claiming the master role
  Nanos peer_timeout_ns = 3'500'000'000;  // no status this long: out of the election
  ClockEstimatorConfig estimator;
  SessionClockConfig session;
};

struct ArbiterStatus {
  std::optional<Uuid> master;
  bool is_master = false;
  bool locked = false;
  double offset_ns = 0;      // session - local, now
  double drift_ppm = 0;      // session rate against the local clock, as estimated
  double quality = 0;        // 0..1 (a master reports 1 while it holds)
  double last_error_ns = 0;  // estimate minus our session clock at the last pong
  double rtt_min_ns = 0;
  std::uint64_t pings_sent = 0, pongs_received = 0, pongs_used = 0, samples_rejected = 0;
  std::uint64_t steps = 0, steps_while_locked = 0;
  std::uint64_t master_changes = 0;
  std::int64_t locked_after_ns = -1;  // local time from start to first lock; -1: not yet
  std::size_t candidates = 0;         // peers in the election, us included
};

class ClockDriftArbiter {
 public:
  // to: the peer to send to; nullopt: every peer.
  using Send = std::function<void(const std::optional<Uuid>& to,
                                  const protocol::control::ControlMessage& msg)>;

  ClockDriftArbiter(ArbiterConfig config, const ClockSource& local, Send send);

  // Control thread, every few ms: pings, status, election.
  void tick();
  // `local_rx`: our local clock at receive (from the kernel timestamp when known).
  void on_ping(const protocol::control::SyncPingMsg& m, Nanos local_rx);
  void on_pong(const protocol::control::SyncPongMsg& m, Nanos local_rx);
  void on_status(const protocol::control::SyncStatusMsg& m);
  void peer_left(const Uuid& id);

  const SessionClock& session() const noexcept { return session_; }
  Nanos session_now() const noexcept { return session_.session_at(local_.now_ns()); }
  const ClockSource& local_clock() const noexcept { return local_; }
  ArbiterStatus status() const;
  const ArbiterConfig& config() const noexcept { return config_; }

 private:
  struct Candidate {
    int priority = 0;
    bool forced = false;
    bool claims = false;
    bool locked = false;
    Nanos last_heard = 0;  // local clock
  };
  void elect_locked(Nanos now);
  ArbiterStatus status_locked() const;

  ArbiterConfig config_;
  const ClockSource& local_;
  Send send_;
  SessionClock session_;
  ClockEstimator estimator_;
  mutable std::mutex mu_;
  Nanos started_ = 0;
  Nanos next_ping_ = 0, next_status_ = 0;
  std::uint64_t ping_id_ = 0;
  std::unordered_map<std::uint64_t, Nanos> outstanding_;  // ping id -> t1 (bounded)
  std::unordered_map<Uuid, Candidate, UuidHash> candidates_;
  // The election's candidate list, kept between ticks so that electing every
  // tick does not allocate once it has grown to the session's size.
  std::vector<MasterCandidate> election_;
  std::optional<Uuid> master_;
  bool is_master_ = false;
  ArbiterStatus counters_;
};

}  // namespace jamnet::sync
