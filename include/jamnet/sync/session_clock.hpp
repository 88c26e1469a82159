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
// once the error stays under lock_threshold_ns for lock_updates updates (with
// an estimate mature enough, see lock_drift_sd_ppm), and
// stays locked (and never steps again) unless the error exceeds
// unlock_threshold_ns (a partition that merged with another master), which is
// counted as a relock. A master calls hold(): it keeps its current rate, so a
// follower that becomes master continues the timeline without a jump.
//
// Details:
//  * The drift the rate is steered with is the estimate's drift, except while
//    locked when the estimate's drift is much less certain than the one in use
//    (ClockEstimate::drift_sd_ppm, e.g. just after the estimator was reset for
//    a new master): then it is blended in by inverse variance, so a young
//    estimate's noisy slope cannot throw a locked clock off. The drift in use
//    is trusted a little less as time passes (0.05 ppm/sqrt(s)). Unlocked,
//    stepping, or with drift_sd_ppm == 0 the estimate's drift is taken as is.
//  * Likewise, while locked the error term's gain is scaled by
//    (lock_drift_sd_ppm / drift_sd_ppm)^2 when the estimate is less mature
//    than a lockable one, so a young estimate's offset noise is followed only
//    gently (a step still happens beyond unlock_threshold_ns).
//  * hold() keeps that drift (rate = 1 + drift_ppm() * 1e-6): the transient
//    slew term is dropped, as it corrects an error a master no longer measures.
//  * reset_to_local() unlocks (the next steer may step) and zeroes the drift.
#pragma once

#include <atomic>
#include <cstdint>

#include "jamnet/core/clock.hpp"
#include "jamnet/sync/clock_estimator.hpp"

namespace jamnet::sync {

struct SessionClockConfig {
  double max_slew_ppm = 500;
  Nanos time_constant_ns = 2'000'000'000;
  Nanos step_threshold_ns = 2'000'000;  // unlocked: step when further off than this
  Nanos lock_threshold_ns = 500'000;
  int lock_updates = 10;
  Nanos unlock_threshold_ns = 50'000'000;  // locked: this far off means a new timeline
  // Locking also needs a mature estimate: ClockEstimate::drift_sd_ppm at most
  // this (ignored when the estimate leaves it 0). Until then the timeline is
  // followed (stepped or slewed) but not declared locked.
  double lock_drift_sd_ppm = 10;
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
  std::uint64_t steps() const noexcept {
    return steps_.load(std::memory_order_relaxed);
  }  // jumps taken
  std::uint64_t steps_while_locked() const noexcept {
    return steps_locked_.load(std::memory_order_relaxed);
  }
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
  // Updater thread only: uncertainty of drift_ (ppm) and when it was set.
  double drift_sd_ = 0;
  Nanos drift_sd_at_ = 0;
  bool drift_known_ = false;
  double choose_drift(Nanos local_now, const ClockEstimate& est, bool adopt);
};

}  // namespace jamnet::sync
