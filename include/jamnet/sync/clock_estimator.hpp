// Offset and drift of a remote clock against ours, from NTP-style exchanges
// (t1 local send, t2 remote receive, t3 remote send, t4 local receive).
//
//   offset  theta = ((t2 - t1) + (t3 - t4)) / 2   (remote - local)
//   delay   delta = (t4 - t1) - (t3 - t2)
//
// A sample's offset error is at most delta/2 and is zero when both directions
// take equally long, so samples near the minimum delay are the trustworthy
// ones (min-RTT filtering). The estimator keeps `window_ns` of samples, keeps
// those whose delay is within `delay_margin_ns` (or the adaptive margin, the
// larger) of the window's minimum, and fits theta against local time by
// least squares: intercept = offset now, slope = drift. Samples with an
// impossible delay (negative, or > max_delay_ns) are rejected.
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
  double residual_ns = 0;  // RMS of the kept samples about the fit
  Nanos min_delay_ns = 0;
  std::size_t used = 0;    // samples in the fit
  double quality = 0;      // 0..1 (see below)
  // remote time at local time `local`
  double remote_at(Nanos local) const noexcept {
    return static_cast<double>(local) + offset_ns +
           drift_ppm * 1e-6 * static_cast<double>(local - ref_local);
  }
};

struct ClockEstimatorConfig {
  Nanos window_ns = 30'000'000'000;  // fit over this much history
  Nanos delay_margin_ns = 150'000;   // keep samples this close to the min delay (at least)
  Nanos max_delay_ns = 2'000'000'000;
  std::size_t min_samples = 4;       // before an estimate exists
  std::size_t max_samples = 4096;    // memory bound (oldest dropped)
};

// quality = min(1, used / 32) * 1 / (1 + residual_ns / 50'000)
//           * 1 / (1 + min_delay_ns / 50'000'000), in 0..1.
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
};

}  // namespace jamnet::sync
