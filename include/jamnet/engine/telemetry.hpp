// The engine's telemetry (source 003 "Steady Pulse" phase 0): what the audio
// thread saw in each window (1 s by default) of its cycles: tick timing,
// load, command traffic, queue depths, priority command latency. The audio
// thread records every cycle into plain fields and fixed histograms and, once
// a window is over, publishes a snapshot through a triple buffer; a control
// thread reads the latest one whenever it likes. Neither side waits, and the
// audio thread never allocates: the snapshot is a fixed-size value.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/histogram.hpp"
#include "jamnet/core/triple_buffer.hpp"
#include "jamnet/engine/command.hpp"

namespace jamnet::engine {

struct TelemetrySnapshot {
  Nanos window_start_ns = 0;  // the window these figures cover: wake times in
  Nanos window_ns = 0;        // [window_start_ns, window_start_ns + window_ns)
  std::uint64_t cycles = 0;   // in the window
  Nanos period_ns = 0;        // the target tick
  // tick delta = wake_ns - previous wake_ns; jitter = |delta - period|
  double tick_delta_us_mean = 0, tick_jitter_us_p99 = 0, tick_jitter_us_max = 0;
  double load_mean = 0, load_max = 0;  // (end_ns - wake_ns) / period
  std::uint64_t priority_cmds = 0, normal_cmds = 0, coalesced = 0, budget_hits = 0;
  std::size_t priority_max_per_cycle = 0, normal_max_per_cycle = 0;
  std::size_t priority_depth_max = 0, normal_depth_max = 0;
  double priority_latency_us_p99 = 0, priority_latency_us_max = 0;
  std::uint64_t xruns = 0;  // backend total at window end
  // Since start (or reset_totals()): whole-run histograms for benchmarks.
  Histogram tick_jitter_total;       // ns
  Histogram priority_latency_total;  // ns
  std::uint64_t seq = 0;             // windows published so far (this one included)
};

// One writer: the audio thread (record_cycle, priority_latency, set_period).
// One reader: a control thread (latest). reset_totals from any thread.
class TelemetryRecorder {
 public:
  explicit TelemetryRecorder(Nanos period_ns, Nanos window_ns = 1'000'000'000);
  TelemetryRecorder(const TelemetryRecorder&) = delete;
  TelemetryRecorder& operator=(const TelemetryRecorder&) = delete;

  // Pass to CommandQueues::drain (audio thread): this window's priority latencies.
  Histogram& priority_latency() noexcept { return latency_window_; }

  // Audio thread, once per cycle after the cycle's work: `wake_ns` when the
  // cycle started, `end_ns` when its work was done. Publishes a snapshot when
  // the window is over.
  void record_cycle(Nanos wake_ns, Nanos end_ns, const DrainStats& drain,
                    std::size_t priority_depth, std::size_t normal_depth,
                    std::uint64_t xruns) noexcept;

  // Reader: the last published window (seq 0: none yet). The reference stays
  // valid and unchanged until the next latest().
  const TelemetrySnapshot& latest() noexcept { return reader_.read(); }

  // Audio thread, when the backend changes its buffer size. The next cycle
  // then starts a new run of tick deltas (the one across the change compares
  // two different periods and is not jitter).
  void set_period(Nanos period_ns) noexcept;

  // Any thread: the whole-run histograms start again from the next cycle
  // (say, after a benchmark's warm-up). The audio thread does the clearing.
  void reset_totals() noexcept { reset_requested_.store(true, std::memory_order_release); }

  // One line of JSON, for logs and the CLI (allocates: not for the audio thread).
  static std::string to_json(const TelemetrySnapshot& s);

 private:
  void publish() noexcept;

  TripleBufferWriter<TelemetrySnapshot> writer_;
  TripleBufferReader<TelemetrySnapshot> reader_;

  // Audio thread state.
  Nanos period_ns_;
  const Nanos window_ns_;
  bool window_open_ = false;
  Nanos window_start_ns_ = 0;
  bool has_prev_wake_ = false;
  Nanos prev_wake_ns_ = 0;
  double delta_sum_ns_ = 0;
  std::uint64_t deltas_ = 0;
  double load_sum_ = 0;
  Nanos latency_max_ns_ = 0;  // from DrainStats, for a caller that passes no histogram
  Histogram jitter_window_;
  Histogram latency_window_;
  TelemetrySnapshot next_;  // the window being filled; carries the totals along

  std::atomic<bool> reset_requested_{false};
};

}  // namespace jamnet::engine
