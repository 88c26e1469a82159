#include "jamnet/sync/session_clock.hpp"

#include "jamnet/core/cpu_relax.hpp"

#include <algorithm>
#include <cmath>

namespace jamnet::sync {

namespace {

// How fast the drift in use loses trust: its standard deviation grows by this
// much per sqrt(second) (crystal wander), so a newer estimate takes over.
constexpr double kDriftWanderPpmPerSqrtS = 0.05;

Nanos eval(const SessionClockState& s, Nanos local) noexcept {
  const Nanos dl = sat_sub(local, s.anchor_local);
  // rate - 1 is exact in double (Sterbenz), so the product keeps ns precision
  // over hours.
  const long double extra = static_cast<long double>(dl) * static_cast<long double>(s.rate - 1.0);
  return sat_add(sat_add(s.anchor_session, dl), static_cast<Nanos>(std::llroundl(extra)));
}

}  // namespace

SessionClock::SessionClock(SessionClockConfig config) : config_(config) {
  if (config_.time_constant_ns <= 0) config_.time_constant_ns = 1;
  if (!(config_.max_slew_ppm >= 0)) config_.max_slew_ppm = 0;
}

void SessionClock::publish(const SessionClockState& s) noexcept {
  const std::uint64_t q = seq_.load(std::memory_order_relaxed);
  seq_.store(q + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  anchor_local_.store(s.anchor_local, std::memory_order_relaxed);
  anchor_session_.store(s.anchor_session, std::memory_order_relaxed);
  rate_.store(s.rate, std::memory_order_relaxed);
  seq_.store(q + 2, std::memory_order_release);
}

SessionClockState SessionClock::state() const noexcept {
  for (;;) {
    const std::uint64_t s1 = seq_.load(std::memory_order_acquire);
    if (s1 & 1U) {
      cpu_relax();
      continue;
    }
    SessionClockState s{anchor_local_.load(std::memory_order_relaxed),
                        anchor_session_.load(std::memory_order_relaxed),
                        rate_.load(std::memory_order_relaxed)};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq_.load(std::memory_order_relaxed) == s1) return s;
  }
}

Nanos SessionClock::session_at(Nanos local) const noexcept {
  return eval(state(), local);
}

Nanos SessionClock::local_at(Nanos session) const noexcept {
  const SessionClockState s = state();
  const Nanos ds = sat_sub(session, s.anchor_session);  // `session` may come from the wire
  // ds / rate = ds - ds * (rate - 1) / rate
  const long double r1 = static_cast<long double>(s.rate - 1.0);
  const long double corr = static_cast<long double>(ds) * r1 / (1.0L + r1);
  return sat_sub(sat_add(s.anchor_local, ds), static_cast<Nanos>(std::llroundl(corr)));
}

double SessionClock::drift_ppm() const noexcept {
  return drift_.load(std::memory_order_relaxed);
}

double SessionClock::choose_drift(Nanos local_now, const ClockEstimate& est, bool adopt) {
  const double est_sd = est.drift_sd_ppm;
  const auto take = [&] {
    drift_sd_ = std::max(est_sd, 0.0);
    drift_sd_at_ = local_now;
    drift_known_ = true;
    return est.drift_ppm;
  };
  if (adopt || !drift_known_ || !(est_sd > 0)) return take();
  const double dt_s = std::max<double>(0.0, static_cast<double>(local_now - drift_sd_at_) * 1e-9);
  const double p2 =
      drift_sd_ * drift_sd_ + kDriftWanderPpmPerSqrtS * kDriftWanderPpmPerSqrtS * dt_s;
  const double r2 = est_sd * est_sd;
  if (r2 <= p2) return take();
  const double cur = drift_.load(std::memory_order_relaxed);
  return cur + p2 / (p2 + r2) * (est.drift_ppm - cur);
}

double SessionClock::steer(Nanos local_now, const ClockEstimate& est) {
  const SessionClockState cur = state();
  const Nanos session_now = eval(cur, local_now);
  // est.remote_at(local_now) - session_now, keeping ns precision.
  const long double remote_minus_local = static_cast<long double>(est.offset_ns) +
                                         static_cast<long double>(est.drift_ppm) * 1e-6L *
                                             static_cast<long double>(local_now - est.ref_local);
  const long double err_l = static_cast<long double>(local_now - session_now) + remote_minus_local;
  const double err = static_cast<double>(err_l);
  const bool was_locked = locked_.load(std::memory_order_relaxed);
  const double abs_err = std::abs(err);
  const bool step = was_locked ? abs_err > static_cast<double>(config_.unlock_threshold_ns)
                               : abs_err > static_cast<double>(config_.step_threshold_ns);
  const double drift = choose_drift(local_now, est, !was_locked || step);
  if (step) {
    publish(
        {local_now, session_now + static_cast<Nanos>(std::llroundl(err_l)), 1.0 + drift * 1e-6});
    steps_.fetch_add(1, std::memory_order_relaxed);
    if (was_locked) {
      steps_locked_.fetch_add(1, std::memory_order_relaxed);
      locked_.store(false, std::memory_order_relaxed);
    }
    good_updates_ = 0;
  } else {
    const double max_slew = config_.max_slew_ppm * 1e-6;
    // Locked, an immature estimate (e.g. just after the estimator was reset
    // for a new master) is followed only gently: the correction's gain falls
    // with the square of how much less certain it is than a lockable one.
    double gain = 1.0;
    if (was_locked && est.drift_sd_ppm > config_.lock_drift_sd_ppm &&
        config_.lock_drift_sd_ppm > 0) {
      const double r = config_.lock_drift_sd_ppm / est.drift_sd_ppm;
      gain = r * r;
    }
    const double slew =
        std::clamp(gain * err / static_cast<double>(config_.time_constant_ns), -max_slew, max_slew);
    publish({local_now, session_now, 1.0 + drift * 1e-6 + slew});
    const bool mature = !(est.drift_sd_ppm > config_.lock_drift_sd_ppm);
    if (abs_err < static_cast<double>(config_.lock_threshold_ns) && (was_locked || mature)) {
      if (good_updates_ < config_.lock_updates) ++good_updates_;
      if (!was_locked && good_updates_ >= config_.lock_updates) {
        locked_.store(true, std::memory_order_relaxed);
      }
    } else {
      good_updates_ = 0;
    }
  }
  drift_.store(drift, std::memory_order_relaxed);
  last_error_.store(err, std::memory_order_relaxed);
  return err;
}

void SessionClock::hold(Nanos local_now, bool reset_rate) {
  const Nanos session_now = session_at(local_now);
  if (reset_rate) {
    drift_.store(0, std::memory_order_relaxed);
    drift_known_ = false;
  }
  publish({local_now, session_now, 1.0 + drift_.load(std::memory_order_relaxed) * 1e-6});
}

void SessionClock::reset_to_local(Nanos local_now) {
  publish({local_now, local_now, 1.0});
  drift_.store(0, std::memory_order_relaxed);
  last_error_.store(0, std::memory_order_relaxed);
  locked_.store(false, std::memory_order_relaxed);
  good_updates_ = 0;
  drift_known_ = false;
  drift_sd_ = 0;
}

}  // namespace jamnet::sync
