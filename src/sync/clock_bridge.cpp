#include "jamnet/sync/clock_bridge.hpp"

#include <algorithm>
#include <cmath>

namespace jamnet::sync {

namespace {

constexpr double kResidualScaleNs = 10'000;  // residual that halves the quality
constexpr std::size_t kLockPairs = 8;

double clamp_interval(double ms) {
  if (!(ms >= 1)) return 1;  // also NaN
  return std::min(ms, 1000.0);
}

// Share of (b - a) the timeline takes on, by mode.
long double mode_share(ClockMasterMode m) {
  switch (m) {
    case ClockMasterMode::kGpu:
      return 0.0L;
    case ClockMasterMode::kCpu:
      return 1.0L;
    case ClockMasterMode::kHybrid:
      return 0.5L;
  }
  return 0.0L;
}

}  // namespace

std::string_view to_string(ClockMasterMode m) noexcept {
  switch (m) {
    case ClockMasterMode::kGpu:
      return "gpu";
    case ClockMasterMode::kCpu:
      return "cpu";
    case ClockMasterMode::kHybrid:
      return "hybrid";
  }
  return "unknown";
}

ClockBridge::ClockBridge(const ClockSource& a, const ClockSource& b, ClockBridgeConfig config)
    : a_(a), b_(b), config_(config) {
  config_.sync_interval_ms = clamp_interval(config_.sync_interval_ms);
  config_.window = std::max<std::size_t>(config_.window, 2);
  if (!(config_.max_slew_ppm > 0)) config_.max_slew_ppm = 500;
  pairs_.resize(config_.window);
}

template <class Change>
void ClockBridge::retarget_locked(Nanos at, Change&& change) {
  // Before the first pair the timeline is a placeholder (b = a): the first fit
  // takes over at once instead of being slewed in from it.
  const bool had_fit = count_ > 0;
  const long double before = timeline_delta_locked(at);
  change();
  corr0_ = 0;
  corr_at_ = at;
  if (!had_fit) return;
  const long double target = timeline_delta_locked(at);
  corr0_ = static_cast<double>(before - target);
}

bool ClockBridge::sample() {
  const Nanos b1 = b_.now_ns();
  const Nanos a = a_.now_ns();
  const Nanos b2 = b_.now_ns();
  const Nanos width = b2 - b1;
  if (width < 0 || width > config_.max_bracket_ns) return false;
  add_pair(a, b1 + width / 2, width);
  return true;
}

void ClockBridge::add_pair(Nanos a_time, Nanos b_time, Nanos uncertainty_ns) {
  if (uncertainty_ns < 0 || uncertainty_ns > config_.max_bracket_ns) return;
  std::unique_lock lock(mu_);
  retarget_locked(a_time, [&] {
    pairs_[next_] = Pair{a_time, b_time, uncertainty_ns};
    next_ = (next_ + 1) % pairs_.size();
    count_ = std::min(count_ + 1, pairs_.size());
    refit_locked();
  });
  fire_pending(lock);
}

void ClockBridge::refit_locked() {
  const bool was_locked = locked_;
  if (count_ == 0) {
    ref_ = 0;
    off_int_ = 0;
    off_ = drift_ = residual_ns_ = mean_unc_ns_ = quality_ = 0;
    locked_ = false;
  } else {
    const std::size_t newest = (next_ + pairs_.size() - 1) % pairs_.size();
    const Pair& pn = pairs_[newest];
    ref_ = pn.a;
    off_int_ = pn.b - pn.a;
    // Weighted least squares of y = (b - a) - off_int against x = a - ref.
    long double sw = 0, swx = 0, swy = 0, swu = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      const Pair& p = pairs_[i];
      const long double unc = std::max<long double>(static_cast<long double>(p.unc), 1.0L);
      const long double w = 1.0L / (unc * unc);
      const long double x = static_cast<long double>(p.a - ref_);
      const long double y = static_cast<long double>((p.b - p.a) - off_int_);
      sw += w;
      swx += w * x;
      swy += w * y;
      swu += w * unc;
    }
    const long double mx = swx / sw, my = swy / sw;
    long double sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      const Pair& p = pairs_[i];
      const long double unc = std::max<long double>(static_cast<long double>(p.unc), 1.0L);
      const long double w = 1.0L / (unc * unc);
      const long double x = static_cast<long double>(p.a - ref_) - mx;
      const long double y = static_cast<long double>((p.b - p.a) - off_int_) - my;
      sxx += w * x * x;
      sxy += w * x * y;
    }
    long double slope = 0;
    if (config_.drift_correction && count_ >= 2 && sxx > 0) slope = sxy / sxx;
    // Offset at ref (x = 0); offset-only model: the weighted mean.
    const long double icpt = config_.drift_correction ? my - slope * mx : my;
    off_ = static_cast<double>(icpt);
    drift_ = static_cast<double>(slope);
    long double sr2 = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      const Pair& p = pairs_[i];
      const long double x = static_cast<long double>(p.a - ref_);
      const long double y = static_cast<long double>((p.b - p.a) - off_int_);
      const long double r = y - (icpt + slope * x);
      sr2 += r * r;
    }
    residual_ns_ = static_cast<double>(std::sqrt(sr2 / static_cast<long double>(count_)));
    mean_unc_ns_ = static_cast<double>(swu / sw);
    const std::size_t need = std::min(config_.window, kLockPairs);
    const double count_f = std::min(1.0, static_cast<double>(count_) / static_cast<double>(need));
    const double res_f = 1.0 / (1.0 + residual_ns_ / kResidualScaleNs);
    const double br_f =
        1.0 / (1.0 + mean_unc_ns_ /
                         (4.0 * static_cast<double>(std::max<Nanos>(config_.max_bracket_ns, 1))));
    quality_ = count_f * res_f * br_f;
    locked_ = count_ >= need && quality_ >= 0.5;

    const double drift_ppm = drift_ * 1e6;
    if (count_ >= need && std::abs(drift_ppm) > config_.drift_alert_ppm) {
      if (!drift_alerted_) {
        drift_alerted_ = true;
        pending_drift_ = true;
      }
    } else if (std::abs(drift_ppm) <= config_.drift_alert_ppm) {
      drift_alerted_ = false;
    }
  }
  if (locked_ != was_locked) pending_state_ = true;
}

long double ClockBridge::target_offset_locked(Nanos a) const {
  if (count_ == 0) return 0.0L;
  return static_cast<long double>(off_int_) + static_cast<long double>(off_) +
         static_cast<long double>(drift_) * static_cast<long double>(a - ref_);
}

long double ClockBridge::timeline_delta_locked(Nanos a) const {
  long double corr = corr0_;
  if (a > corr_at_ && corr0_ != 0) {
    const long double left = std::abs(static_cast<long double>(corr0_)) -
                             static_cast<long double>(config_.max_slew_ppm) * 1e-6L *
                                 static_cast<long double>(a - corr_at_);
    corr = left <= 0 ? 0.0L : std::copysign(left, static_cast<long double>(corr0_));
  }
  return mode_share(config_.master) * target_offset_locked(a) + corr;
}

void ClockBridge::fire_pending(std::unique_lock<std::mutex>& lock) {
  const bool state = pending_state_, drift = pending_drift_;
  pending_state_ = pending_drift_ = false;
  if (!state && !drift) return;
  const bool now_locked = locked_;
  const double drift_ppm = drift_ * 1e6;
  const SyncStateCallback state_cb = state_cb_;
  const DriftCallback drift_cb = drift_cb_;
  lock.unlock();
  if (state && state_cb) state_cb(now_locked);
  if (drift && drift_cb) drift_cb(drift_ppm);
}

Nanos ClockBridge::a_to_b(Nanos a) const {
  std::lock_guard lock(mu_);
  return a + static_cast<Nanos>(std::llroundl(target_offset_locked(a)));
}

Nanos ClockBridge::b_to_a_locked(Nanos b) const {
  if (count_ == 0) return b;
  // b = a + off + drift (a - ref)  =>  a - ref = (b - ref - off) / (1 + drift)
  const Nanos u = b - ref_ - off_int_;
  const long double v = static_cast<long double>(u) - static_cast<long double>(off_);
  const long double d = drift_;
  return ref_ + static_cast<Nanos>(std::llroundl(v - v * d / (1.0L + d)));
}

Nanos ClockBridge::b_to_a(Nanos b) const {
  std::lock_guard lock(mu_);
  return b_to_a_locked(b);
}

Nanos ClockBridge::timeline_from_a(Nanos a) const {
  std::lock_guard lock(mu_);
  return a + static_cast<Nanos>(std::llroundl(timeline_delta_locked(a)));
}

Nanos ClockBridge::timeline_from_b(Nanos b) const {
  std::lock_guard lock(mu_);
  const Nanos a = b_to_a_locked(b);
  return a + static_cast<Nanos>(std::llroundl(timeline_delta_locked(a)));
}

void ClockBridge::set_sync_interval_ms(double ms) {
  std::lock_guard lock(mu_);
  config_.sync_interval_ms = clamp_interval(ms);
}

double ClockBridge::sync_interval_ms() const {
  std::lock_guard lock(mu_);
  return config_.sync_interval_ms;
}

void ClockBridge::set_clock_master(ClockMasterMode m) {
  const Nanos now = a_.now_ns();
  std::unique_lock lock(mu_);
  if (m == config_.master) return;
  retarget_locked(now, [&] { config_.master = m; });
}

ClockMasterMode ClockBridge::clock_master() const {
  std::lock_guard lock(mu_);
  return config_.master;
}

void ClockBridge::enable_drift_correction(bool on) {
  const Nanos now = a_.now_ns();
  std::unique_lock lock(mu_);
  if (on == config_.drift_correction) return;
  retarget_locked(now, [&] {
    config_.drift_correction = on;
    refit_locked();
  });
  fire_pending(lock);
}

double ClockBridge::current_offset_us() const {
  std::lock_guard lock(mu_);
  if (count_ == 0) return 0;
  return (static_cast<double>(off_int_) + off_) / 1000.0;
}

double ClockBridge::current_drift_ppm() const {
  std::lock_guard lock(mu_);
  return drift_ * 1e6;
}

double ClockBridge::sync_quality() const {
  std::lock_guard lock(mu_);
  return quality_;
}

bool ClockBridge::locked() const {
  std::lock_guard lock(mu_);
  return locked_;
}

void ClockBridge::on_sync_state_changed(SyncStateCallback cb) {
  std::lock_guard lock(mu_);
  state_cb_ = std::move(cb);
}

void ClockBridge::on_clock_drift_detected(DriftCallback cb) {
  std::lock_guard lock(mu_);
  drift_cb_ = std::move(cb);
}

}  // namespace jamnet::sync
