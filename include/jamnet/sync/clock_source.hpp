// Clocks the sync layer can read and relate (001 §4.1): the system monotonic
// clock, an audio device's sample counter, a GPU's timestamp counter mapped
// through calibrated timestamps, and a test clock with injected offset and
// skew (a crystal that runs fast or slow). All readings are in nanoseconds of
// that clock's own timeline; ClockBridge relates any two of them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "jamnet/core/clock.hpp"

namespace jamnet::sync {

enum class ClockKind : std::uint8_t { kMonotonic, kAudioDevice, kGpu, kTest };
std::string_view to_string(ClockKind k) noexcept;  // "monotonic", "audio", "gpu", "test"

class ClockSource {
 public:
  virtual ~ClockSource() = default;
  virtual ClockKind kind() const noexcept = 0;
  // Now, on this clock. Thread-safe and lock-free (the audio thread may call it).
  virtual Nanos now_ns() const noexcept = 0;
  // This clock's reading at the CLOCK_MONOTONIC instant `mono` (e.g. a kernel
  // receive timestamp), and the inverse. Exact for the test clock; for sampled
  // clocks, by the latest calibration.
  virtual Nanos from_monotonic(Nanos mono) const noexcept = 0;
  virtual Nanos to_monotonic(Nanos t) const noexcept = 0;
};

class MonotonicClock final : public ClockSource {
 public:
  ClockKind kind() const noexcept override { return ClockKind::kMonotonic; }
  Nanos now_ns() const noexcept override { return monotonic_ns(); }
  Nanos from_monotonic(Nanos mono) const noexcept override { return mono; }
  Nanos to_monotonic(Nanos t) const noexcept override { return t; }
};

// reading(mono) = mono + offset_ns + (mono - origin) * skew_ppm * 1e-6.
// A skew of +100 ppm gains 100 µs per second. Exact in both directions (the
// inverse rounds to the nearest ns), in long double, so hours away from the
// origin keep ns precision: with skew >= 0, to_monotonic(from_monotonic(m))
// == m for every m; a slow clock (skew < 0) has fewer readings than
// monotonic ns, so there from_monotonic(to_monotonic(t)) == t for every t and
// the other direction is within 1 ns.
class TestClock final : public ClockSource {
 public:
  TestClock(Nanos offset_ns, double skew_ppm, Nanos origin_mono = monotonic_ns()) noexcept;
  ClockKind kind() const noexcept override { return ClockKind::kTest; }
  Nanos now_ns() const noexcept override { return from_monotonic(monotonic_ns()); }
  Nanos from_monotonic(Nanos mono) const noexcept override;
  Nanos to_monotonic(Nanos t) const noexcept override;
  Nanos offset_ns() const noexcept { return offset_; }
  double skew_ppm() const noexcept { return skew_ppm_; }

 private:
  Nanos offset_;
  double skew_ppm_;
  Nanos origin_;
};

// An audio device's sample counter as a clock: reading = frames * 1e9 / rate,
// interpolated between cycles with the monotonic clock. The audio thread calls
// on_cycle() once per period with the frame count at the start of the period
// and the monotonic time of that frame (JACK: jack_last_frame_time and
// jack_frames_to_time); readers on other threads see a consistent pair
// (seqlock). Before the first cycle it reads as the monotonic clock.
class AudioDeviceClock final : public ClockSource {
 public:
  explicit AudioDeviceClock(std::uint32_t sample_rate) noexcept;
  ClockKind kind() const noexcept override { return ClockKind::kAudioDevice; }
  Nanos now_ns() const noexcept override { return from_monotonic(monotonic_ns()); }
  Nanos from_monotonic(Nanos mono) const noexcept override;
  Nanos to_monotonic(Nanos t) const noexcept override;
  void on_cycle(std::uint64_t frame, Nanos mono_at_frame) noexcept;  // audio thread; no locks
  std::uint32_t sample_rate() const noexcept { return rate_; }
  // Sample index <-> this clock's ns (exact integer math, rounding the sample up).
  std::int64_t sample_at_or_after(Nanos t) const noexcept;
  Nanos time_of_sample(std::int64_t sample) const noexcept;

 private:
  std::uint32_t rate_;
  mutable std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::uint64_t> frame_{0};
  std::atomic<Nanos> mono_{0};
  std::atomic<bool> started_{false};
};

// A hardware counter (a GPU's timestamp queries) read together with
// CLOCK_MONOTONIC, e.g. through VK_EXT_calibrated_timestamps. The sampler
// returns one paired reading (counter ticks, monotonic ns, max deviation ns)
// or nullopt when the device cannot be read. calibrate() (call it at the sync
// interval) fits ticks -> monotonic over the recent pairs; readings are
// counter time in ns (ticks * period_ns). The GPU issue supplies the sampler.
// The fit: the last 16 pairs, less those whose max_deviation_ns exceeds
// 4 x the best one's + 1 µs (a preempted read), least squares of
// (counter ns - mono) against mono; a single pair gives the offset only.
// Readers are lock-free (seqlock).
struct CalibratedPair {
  std::uint64_t ticks = 0;
  Nanos mono = 0;
  Nanos max_deviation_ns = 0;
};
class GpuClock final : public ClockSource {
 public:
  using Sampler = std::function<std::optional<CalibratedPair>()>;
  GpuClock(Sampler sampler, double tick_period_ns);
  ClockKind kind() const noexcept override { return ClockKind::kGpu; }
  Nanos now_ns() const noexcept override { return from_monotonic(monotonic_ns()); }
  Nanos from_monotonic(Nanos mono) const noexcept override;
  Nanos to_monotonic(Nanos t) const noexcept override;
  // Reads one pair and refits. False when the sampler failed. Not thread-safe
  // with itself; concurrent readers see either the old or the new fit.
  bool calibrate();
  Nanos ticks_to_ns(std::uint64_t ticks) const noexcept;

 private:
  Sampler sampler_;
  double period_ns_;
  // fit: gpu_ns = mono + a + b * (mono - ref): published as a seqlocked triple
  // (a is split into an integer part a_int_ and a small fraction a_, so that a
  // counter epoch far from the monotonic one keeps ns precision).
  mutable std::atomic<std::uint64_t> seq_{0};
  std::atomic<Nanos> ref_{0};
  std::atomic<Nanos> a_int_{0};
  std::atomic<double> a_{0}, b_{0};
  struct History;
  std::shared_ptr<History> history_;
};

// A GpuClock over a device that reads its own counter: `d.sample_clock()`
// returns an optional reading with ticks, mono and max_deviation_ns (as
// gpu::Compute does) and `d.clock_tick_ns()` the ns per tick. nullptr when
// the device has no such clock. The device must outlive the clock. A
// template, so that sync needs nothing from the gpu layer above it.
template <class Device>
std::unique_ptr<GpuClock> make_gpu_clock(Device& d) {
  if (d.clock_tick_ns() <= 0 || !d.sample_clock()) return nullptr;
  auto sampler = [&d]() -> std::optional<CalibratedPair> {
    const auto s = d.sample_clock();
    if (!s) return std::nullopt;
    return CalibratedPair{s->ticks, s->mono, s->max_deviation_ns};
  };
  return std::make_unique<GpuClock>(sampler, d.clock_tick_ns());
}

}  // namespace jamnet::sync
