// ClockBridge (001 §4.1.1 GPUCPUSyncBridge): maps times between any two clocks
// with an estimated offset, drift and quality, and keeps a shared timeline
// according to a clock-master mode (001 §4.1.3).
//
// sample() reads b, a, b back to back and pairs a with the midpoint of the two
// b readings; the bracket's width is that pair's uncertainty, and wide
// brackets (a preempted read) are dropped. The fit is a least-squares line
// over the last `window` pairs, weighted by 1/uncertainty^2.
//
// Master modes, for the shared timeline T:
//   kGpu    T = a's time: the CPU side adapts to the GPU (default, 001 §4.1.3);
//   kCpu    T = b's time mapped onto a's scale: the GPU side adapts;
//   kHybrid T = halfway: both sides move by half the offset and half the drift
//           (Ableton Link style).
// T is continuous when the mode or the fit changes: a change is slewed in at
// most `max_slew_ppm`. The change instant is the newest pair's a time for a
// fit change, and a.now_ns() for set_clock_master / enable_drift_correction;
// T is a function of a's time (from b: T(b_to_a(b))).
//
// Before the first pair the bridge maps b = a (and the first pair's fit is
// taken at once, not slewed). With drift correction off the
// model is b = a + off (drift fixed at 0): off is the weighted mean of b - a.
// Quality = min(1, n / min(window, 8)) / (1 + residual / 10 µs)
//           / (1 + mean bracket / (4 max_bracket_ns)); locked needs
// n >= min(window, 8) pairs and quality >= 0.5. on_clock_drift_detected fires
// once when |drift| rises above drift_alert_ppm (with at least that many
// pairs) and re-arms when it falls back. Callbacks run on the caller's thread,
// outside the bridge's lock.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "jamnet/sync/clock_source.hpp"

namespace jamnet::sync {

enum class ClockMasterMode : std::uint8_t { kGpu, kCpu, kHybrid };
std::string_view to_string(ClockMasterMode m) noexcept;  // "gpu", "cpu", "hybrid"

struct ClockBridgeConfig {
  double sync_interval_ms = 50;   // how often the owner should call sample(): 1..1000
  std::size_t window = 64;        // pairs in the fit
  Nanos max_bracket_ns = 50'000;  // drop pairs whose b-a-b bracket is wider
  bool drift_correction = true;   // false: offset only (drift fixed at 0)
  ClockMasterMode master = ClockMasterMode::kGpu;
  double drift_alert_ppm = 50;  // on_drift_detected fires when |drift| crosses this
  double max_slew_ppm = 500;    // timeline changes (mode, fit) are slewed in at most this
};

// Used only by tests today; kept for the speech and GPU work that will use it.
class ClockBridge {
 public:
  ClockBridge(const ClockSource& a, const ClockSource& b, ClockBridgeConfig config = {});

  // One paired reading now; false when dropped (bracket too wide).
  bool sample();
  // A paired reading taken elsewhere (tests, or a device that pairs itself).
  void add_pair(Nanos a_time, Nanos b_time, Nanos uncertainty_ns);

  Nanos a_to_b(Nanos a) const;
  Nanos b_to_a(Nanos b) const;
  // 001 names: a is the GPU side, b the CPU side.
  Nanos gpu_time_to_cpu(Nanos gpu) const { return a_to_b(gpu); }
  Nanos cpu_time_to_gpu(Nanos cpu) const { return b_to_a(cpu); }

  // The shared timeline of the master mode, from either side.
  Nanos timeline_from_a(Nanos a) const;
  Nanos timeline_from_b(Nanos b) const;

  void set_sync_interval_ms(double ms);  // clamped to 1..1000
  double sync_interval_ms() const;
  void set_clock_master(ClockMasterMode m);
  ClockMasterMode clock_master() const;
  void enable_drift_correction(bool on);

  double current_offset_us() const;  // b - a at the latest pair, µs
  double current_drift_ppm() const;  // d(b - a)/da, ppm
  double sync_quality() const;       // 0..1: pair count, fit residual, bracket width
  bool locked() const;               // enough pairs and quality >= 0.5

  using SyncStateCallback = std::function<void(bool locked)>;
  using DriftCallback = std::function<void(double drift_ppm)>;
  void on_sync_state_changed(SyncStateCallback cb);
  void on_clock_drift_detected(DriftCallback cb);

 private:
  struct Pair {
    Nanos a, b, unc;
  };
  void refit_locked();
  const ClockSource& a_;
  const ClockSource& b_;
  ClockBridgeConfig config_;
  mutable std::mutex mu_;
  std::vector<Pair> pairs_;  // ring of config_.window
  std::size_t next_ = 0;
  // fit: b = a + off + drift * (a - ref), off = off_int_ + off_ (off_ small)
  Nanos ref_ = 0;
  double off_ = 0, drift_ = 0, residual_ns_ = 0;
  bool locked_ = false;
  bool drift_alerted_ = false;
  SyncStateCallback state_cb_;
  DriftCallback drift_cb_;

  // Implementation state (additive).
  Nanos off_int_ = 0;
  std::size_t count_ = 0;   // pairs in the ring
  double mean_unc_ns_ = 0;  // weighted mean bracket of the pairs in the fit
  double quality_ = 0;
  // Timeline correction: T(a) = target(a) + corr(a), corr decaying from corr0_
  // at corr_at_ toward 0 at max_slew_ppm.
  Nanos corr_at_ = 0;
  double corr0_ = 0;
  // Callback events raised under the lock, fired after it is released.
  bool pending_state_ = false, pending_drift_ = false;
  long double target_offset_locked(Nanos a) const;   // b - a by the fit (0 before any pair)
  long double timeline_delta_locked(Nanos a) const;  // T(a) - a
  Nanos b_to_a_locked(Nanos b) const;
  template <class Change>
  void retarget_locked(Nanos at, Change&& change);  // defined and used in the .cpp only
  void fire_pending(std::unique_lock<std::mutex>& lock);
};

using GPUCPUSyncBridge = ClockBridge;  // the name 001 uses

}  // namespace jamnet::sync
