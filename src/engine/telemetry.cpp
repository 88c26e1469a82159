#include "jamnet/engine/telemetry.hpp"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include <nlohmann/json.hpp>

#include "jamnet/core/round.hpp"

namespace jamnet::engine {
namespace {

constexpr double us(Nanos ns) noexcept {
  return static_cast<double>(ns) / 1000.0;
}

}  // namespace

TelemetryRecorder::TelemetryRecorder(Nanos period_ns, Nanos window_ns)
    : period_ns_(std::max<Nanos>(period_ns, 1)), window_ns_(std::max<Nanos>(window_ns, 1)) {
  auto pair = make_triple_buffer<TelemetrySnapshot>();
  writer_ = std::move(pair.writer);
  reader_ = std::move(pair.reader);
  next_.period_ns = period_ns_;
}

void TelemetryRecorder::set_period(Nanos period_ns) noexcept {
  period_ns_ = std::max<Nanos>(period_ns, 1);
  has_prev_wake_ = false;
}

void TelemetryRecorder::record_cycle(Nanos wake_ns, Nanos end_ns, const DrainStats& drain,
                                     std::size_t priority_depth, std::size_t normal_depth,
                                     std::uint64_t xruns) noexcept {
  if (reset_requested_.load(std::memory_order_relaxed) &&
      reset_requested_.exchange(false, std::memory_order_acq_rel)) {
    next_.tick_jitter_total.reset();
    next_.priority_latency_total.reset();
  }

  if (!window_open_) {
    window_open_ = true;
    window_start_ns_ = wake_ns;
  } else if (wake_ns - window_start_ns_ >= window_ns_) {
    // Normally a window is published by its own last cycle (below). This is
    // the fallback when the cycles stopped for longer than the rest of the
    // window (a stall, a stopped backend): publish what there is, then move
    // to the window on the grid that holds this wake.
    if (next_.cycles > 0) publish();
    window_start_ns_ += (wake_ns - window_start_ns_) / window_ns_ * window_ns_;
  }

  ++next_.cycles;
  if (has_prev_wake_) {
    const Nanos delta = wake_ns - prev_wake_ns_;
    delta_sum_ns_ += static_cast<double>(delta);
    ++deltas_;
    jitter_window_.add(std::abs(delta - period_ns_));
  }
  prev_wake_ns_ = wake_ns;
  has_prev_wake_ = true;

  const double load =
      static_cast<double>(std::max<Nanos>(end_ns - wake_ns, 0)) / static_cast<double>(period_ns_);
  load_sum_ += load;
  next_.load_max = std::max(next_.load_max, load);

  next_.priority_cmds += drain.priority;
  next_.normal_cmds += drain.normal;
  next_.coalesced += drain.coalesced;
  next_.budget_hits += drain.budget_hit ? 1 : 0;
  next_.priority_max_per_cycle = std::max(next_.priority_max_per_cycle, drain.priority);
  next_.normal_max_per_cycle = std::max(next_.normal_max_per_cycle, drain.normal);
  next_.priority_depth_max = std::max(next_.priority_depth_max, priority_depth);
  next_.normal_depth_max = std::max(next_.normal_depth_max, normal_depth);
  latency_max_ns_ = std::max(latency_max_ns_, drain.max_priority_latency_ns);
  next_.xruns = xruns;

  // Publish from the window's last cycle, the one whose successor is due in
  // the next window, rather than from the next window's first: by then that
  // cycle's drain has already put its latencies into latency_window_, and the
  // window would carry one cycle of the next.
  if (wake_ns + period_ns_ - window_start_ns_ >= window_ns_) {
    publish();
    window_start_ns_ += window_ns_;
  }
}

void TelemetryRecorder::publish() noexcept {
  TelemetrySnapshot& s = next_;
  s.window_start_ns = window_start_ns_;
  s.window_ns = window_ns_;
  s.period_ns = period_ns_;
  s.tick_delta_us_mean = deltas_ > 0 ? delta_sum_ns_ / static_cast<double>(deltas_) / 1000.0 : 0.0;
  s.tick_jitter_us_p99 = us(jitter_window_.quantile(0.99));
  s.tick_jitter_us_max = us(jitter_window_.max());
  s.load_mean = s.cycles > 0 ? load_sum_ / static_cast<double>(s.cycles) : 0.0;
  s.priority_latency_us_p99 = us(latency_window_.quantile(0.99));
  s.priority_latency_us_max = us(std::max(latency_window_.max(), latency_max_ns_));
  s.tick_jitter_total.merge(jitter_window_);
  s.priority_latency_total.merge(latency_window_);
  ++s.seq;
  writer_.write(s);

  // Start the next window: clear the per-window figures, keep the totals and seq.
  s.cycles = 0;
  s.tick_delta_us_mean = s.tick_jitter_us_p99 = s.tick_jitter_us_max = 0;
  s.load_mean = s.load_max = 0;
  s.priority_cmds = s.normal_cmds = s.coalesced = s.budget_hits = 0;
  s.priority_max_per_cycle = s.normal_max_per_cycle = 0;
  s.priority_depth_max = s.normal_depth_max = 0;
  s.priority_latency_us_p99 = s.priority_latency_us_max = 0;
  delta_sum_ns_ = 0;
  deltas_ = 0;
  load_sum_ = 0;
  latency_max_ns_ = 0;
  jitter_window_.reset();
  latency_window_.reset();
}

std::string TelemetryRecorder::to_json(const TelemetrySnapshot& s) {
  const auto num = [](double v) { return round_decimals(v, 3); };
  const nlohmann::ordered_json j = {
      {"seq", s.seq},
      {"window_start_ns", s.window_start_ns},
      {"window_ns", s.window_ns},
      {"cycles", s.cycles},
      {"period_ns", s.period_ns},
      {"tick_delta_us_mean", num(s.tick_delta_us_mean)},
      {"tick_jitter_us_p99", num(s.tick_jitter_us_p99)},
      {"tick_jitter_us_max", num(s.tick_jitter_us_max)},
      {"load_mean", num(s.load_mean)},
      {"load_max", num(s.load_max)},
      {"priority_cmds", s.priority_cmds},
      {"normal_cmds", s.normal_cmds},
      {"coalesced", s.coalesced},
      {"budget_hits", s.budget_hits},
      {"priority_max_per_cycle", s.priority_max_per_cycle},
      {"normal_max_per_cycle", s.normal_max_per_cycle},
      {"priority_depth_max", s.priority_depth_max},
      {"normal_depth_max", s.normal_depth_max},
      {"priority_latency_us_p99", num(s.priority_latency_us_p99)},
      {"priority_latency_us_max", num(s.priority_latency_us_max)},
      {"xruns", s.xruns},
      {"tick_jitter_total_count", s.tick_jitter_total.count()},
      {"tick_jitter_total_us_p50", num(us(s.tick_jitter_total.quantile(0.5)))},
      {"tick_jitter_total_us_p99", num(us(s.tick_jitter_total.quantile(0.99)))},
      {"tick_jitter_total_us_p999", num(us(s.tick_jitter_total.quantile(0.999)))},
      {"tick_jitter_total_us_max", num(us(s.tick_jitter_total.max()))},
      {"priority_latency_total_count", s.priority_latency_total.count()},
      {"priority_latency_total_us_p50", num(us(s.priority_latency_total.quantile(0.5)))},
      {"priority_latency_total_us_p99", num(us(s.priority_latency_total.quantile(0.99)))},
      {"priority_latency_total_us_p999", num(us(s.priority_latency_total.quantile(0.999)))},
      {"priority_latency_total_us_max", num(us(s.priority_latency_total.max()))}};
  return j.dump();
}

}  // namespace jamnet::engine
