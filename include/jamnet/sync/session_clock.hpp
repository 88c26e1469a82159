// The session clock: session time as a function of the local clock,
//   session(local) = anchor_session + (local - anchor_local) * rate,
// piecewise linear and continuous once locked (never a jump; corrections are
// slewed by changing the rate, at most max_slew_ppm away from the estimated
// drift). Reads are lock-free (seqlock) from any thread, including the audio
// thread; updates come from one thread (the sync control thread).
//
// A follower calls steer() with the estimate of session-minus-local (from the
// master's pongs): while unlocked and off by more than step_threshold_ns it
// steps (that is how a new peer joins a session seconds away); otherwise it
// sets rate = 1 + drift + clamp(error / time_constant, +-max_slew). It locks
// once the error stays under lock_threshold_ns for lock_updates updates, and
// stays locked (and never steps again) unless the error exceeds
// unlock_threshold_ns (a partition that merged with another master), which is
// counted as a relock. A master calls hold(): it keeps its current rate, so a
// follower that becomes master continues the timeline without a jump.
#pragma once

#include <atomic>
#include <cstdint>

#include "jamnet/core/clock.hpp"
#include "jamnet/sync/clock_estimator.hpp"

namespace jamnet::sync {

struct SessionClockConfig {
  double max_slew_ppm = 500;
  Nanos time_constant_ns = 2'000'000'000;
  Nanos step_threshold_ns = 2'000'000;     // unlocked: step when further off than this
  Nanos lock_threshold_ns = 500'000;
  int lock_updates = 10;
  Nanos unlock_threshold_ns = 50'000'000;  // locked: this far off means a new timeline
};

struct SessionClockState {
  Nanos anchor_local = 0;
  Nanos anchor_session = 0;
  double rate = 1.0;  // session ns per local ns
};

class SessionClock {
 public:
  explicit SessionClock(SessionClockConfig config = {});

  Nanos session_at(Nanos local) const noexcept;  // lock-free, any thread
  Nanos local_at(Nanos session) const noexcept;
  SessionClockState state() const noexcept;

  // Follower: steer toward `est` (remote = session time). Returns the error
  // (estimated session - our session) at local_now, in ns.
  double steer(Nanos local_now, const ClockEstimate& est);
  // Master: keep the current rate (or, with reset_rate, 1.0 after a re-anchor at
  // local_now). Continuity is kept either way.
  void hold(Nanos local_now, bool reset_rate = false);
  // Start: the timeline equals the local clock (a lone peer is its own master).
  void reset_to_local(Nanos local_now);

  bool locked() const noexcept { return locked_.load(std::memory_order_relaxed); }
  std::uint64_t steps() const noexcept { return steps_.load(std::memory_order_relaxed); }  // jumps taken
  std::uint64_t steps_while_locked() const noexcept { return steps_locked_.load(std::memory_order_relaxed); }
  double drift_ppm() const noexcept;  // (rate - 1) * 1e6 as steered, without the slew term
  double last_error_ns() const noexcept { return last_error_.load(std::memory_order_relaxed); }

 private:
  void publish(const SessionClockState& s) noexcept;
  SessionClockConfig config_;
  mutable std::atomic<std::uint64_t> seq_{0};
  std::atomic<Nanos> anchor_local_{0}, anchor_session_{0};
  std::atomic<double> rate_{1.0};
  std::atomic<double> drift_{0};
  std::atomic<double> last_error_{0};
  std::atomic<bool> locked_{false};
  std::atomic<std::uint64_t> steps_{0}, steps_locked_{0};
  int good_updates_ = 0;  // updater thread only
};

}  // namespace jamnet::sync
