// Offset and drift of a remote clock against ours, from NTP-style exchanges
// (t1 local send, t2 remote receive, t3 remote send, t4 local receive).
//
//   offset  theta = ((t2 - t1) + (t3 - t4)) / 2   (remote - local)
//   delay   delta = (t4 - t1) - (t3 - t2)
//
// A sample's offset error is at most delta/2 and is zero when both directions
// take equally long, so samples near the minimum delay are the trustworthy
// ones (min-RTT filtering). The estimator keeps `window_ns` of samples (by
// local_mid, relative to the newest) and fits theta against local time, the
// fit centred on the newest sample's local_mid (ref_local): intercept =
// offset now, slope = drift. Samples with an impossible delay (negative, or
// > max_delay_ns) are rejected.
//
// Two fits are made over the window:
//  * Least squares over the min-RTT samples: those whose delay is within
//    max(delay_margin_ns, adaptive) of the window's minimum, where the
//    adaptive margin is the window's 20th-percentile delay less the minimum
//    (so at least a fifth of the samples is kept however wide the jitter),
//    each weighted by 1 / (delay - min + 50 µs)^2. It gives residual_ns,
//    drift_sd_ppm and quality, and is the estimate when the bounds fit below
//    cannot be made.
//  * The delay-floor (bounds) fit, which gives offset_ns and drift_ppm: each
//    sample bounds theta from above at t1 (t2 - t1 = theta + forward delay)
//    and from below at t4 (t3 - t4 = theta - return delay). The line with the
//    widest equal clearance from both sets (the centre of the band between
//    the two delay floors; an exact LP solved on the convex hulls) is the
//    estimate. It uses each direction's floor separately, which a jittery
//    network reaches far more often than both at once, so it is several times
//    more precise than least squares on the RTT floor (the session-clock
//    simulation's bounds rely on it). Like any NTP-style estimate it assumes
//    the two directions' minimum delays are equal. It is skipped (least
//    squares used) when the band is empty or steeper than 2000 ppm
//    (inconsistent samples, e.g. a remote clock step inside the window) or
//    has no maximum (too few samples).
// The estimate is computed on demand and cached until the next add().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "jamnet/core/clock.hpp"

namespace jamnet::sync {

struct SyncSample {
  Nanos t1 = 0, t2 = 0, t3 = 0, t4 = 0;
  Nanos offset() const noexcept { return ((t2 - t1) + (t3 - t4)) / 2; }
  Nanos delay() const noexcept { return (t4 - t1) - (t3 - t2); }
  Nanos local_mid() const noexcept { return t1 + (t4 - t1) / 2; }
};

struct ClockEstimate {
  Nanos ref_local = 0;     // local time the fit is centred on
  double offset_ns = 0;    // remote - local at ref_local
  double drift_ppm = 0;    // d(remote - local)/d(local) * 1e6
  double residual_ns = 0;  // RMS of the kept (min-RTT) samples about the estimate
  Nanos min_delay_ns = 0;
  std::size_t used = 0;  // samples kept by the min-RTT filter
  double quality = 0;    // 0..1 (see below)
  // Standard error of the least-squares drift from its scatter and time span
  // (large while the kept samples span little time; an upper bound for the
  // bounds fit's). 0 means unknown/exact (a hand-made estimate).
  double drift_sd_ppm = 0;
  // remote time at local time `local`
  double remote_at(Nanos local) const noexcept {
    return static_cast<double>(local) + offset_ns +
           drift_ppm * 1e-6 * static_cast<double>(local - ref_local);
  }
};

struct ClockEstimatorConfig {
  Nanos window_ns = 60'000'000'000;  // fit over this much history
  Nanos delay_margin_ns = 150'000;   // keep samples this close to the min delay (at least)
  Nanos max_delay_ns = 2'000'000'000;
  std::size_t min_samples = 4;     // before an estimate exists
  std::size_t max_samples = 4096;  // memory bound (oldest dropped)
};

// quality = min(1, used / 32) / (1 + (se / 25 us)^2) / (1 + (drift_sd_ppm / 2)^2)
//           / (1 + min_delay_ns / 50 ms), in 0..1, where se = residual_ns /
// sqrt(used) is the offset's standard error: 0.5 means about 25 us expected
// error or 2 ppm drift uncertainty.
class ClockEstimator {
 public:
  explicit ClockEstimator(ClockEstimatorConfig config = {});
  // False when rejected (impossible delay, t4 < t1, or not after the last t1).
  bool add(const SyncSample& s);
  std::optional<ClockEstimate> estimate() const;  // nullopt until min_samples are kept
  std::size_t size() const noexcept { return samples_.size(); }
  void reset();

 private:
  ClockEstimatorConfig config_;
  std::deque<SyncSample> samples_;
  mutable std::optional<ClockEstimate> cached_;
  mutable bool cache_valid_ = false;  // cached_ (even nullopt) is up to date
};

}  // namespace jamnet::sync
