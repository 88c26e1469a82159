// The real-time engine under stress (source 003 "Steady Pulse", phase 0):
// jackd -d dummy at 64 frames / 48 kHz, the engine with a small synth and the
// click, the second core kept busy by a spinning thread, and a burst command
// load: 10 bursts of 1000 normal commands and 1 burst of 1000 priority
// commands per second. Measured from the engine's own telemetry (whole-run
// histograms): tick jitter (|callback-to-callback time - period|), priority
// command latency (push to drain), xruns. The same engine with no load and
// an idle second core is measured first, in the same run, as the baseline.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>

#include "../tests/support/jackd_process.hpp"
#include "bench_common.hpp"
#include "jamnet/engine/engine.hpp"
#include "jamnet/engine/io/jack_audio.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "stress_load.hpp"

namespace jamnet::bench {

namespace {

using engine::Command;
using engine::CommandKind;

// Sine voices started and stopped by note commands at their sample offsets.
class SynthProcessor final : public engine::AudioProcessor {
 public:
  explicit SynthProcessor(std::uint32_t rate) : rate_(static_cast<float>(rate)) {}
  void on_command(const Command& c, std::uint32_t offset) noexcept override {
    if (c.kind == CommandKind::kNoteOn || c.kind == CommandKind::kHit) {
      pending_freq_ = 440.0f * std::exp2((static_cast<float>(c.a) - 69.0f) / 12.0f);
      pending_amp_ = static_cast<float>(c.b) / 127.0f * 0.2f;
      pending_offset_ = offset;
    } else if (c.kind == CommandKind::kNoteOff) {
      pending_amp_ = 0.0f;
      pending_offset_ = offset;
    }
  }
  void process(const engine::io::AudioBlock& block) noexcept override {
    const std::uint32_t n = block.info.frames;
    for (std::uint32_t f = 0; f < n; ++f) {
      if (f == pending_offset_) {
        freq_ = pending_freq_;
        amp_ = pending_amp_;
        pending_offset_ = kNone;
      }
      phase_ += 6.2831853f * freq_ / rate_;
      if (phase_ > 6.2831853f) phase_ -= 6.2831853f;
      const float v = amp_ * std::sin(phase_);
      for (float* out : block.outputs) out[f] = v;
    }
    pending_offset_ = kNone;
  }

 private:
  static constexpr std::uint32_t kNone = 0xFFFFFFFF;
  float rate_;
  float phase_ = 0, freq_ = 440, amp_ = 0;
  float pending_freq_ = 440, pending_amp_ = 0;
  std::uint32_t pending_offset_ = kNone;
};

struct RtRun {
  bool ok = false;
  std::string why;
  double tick_jitter_p99_us = 0, tick_jitter_max_us = 0;
  double priority_latency_p99_us = 0, priority_latency_max_us = 0;
  double load_max = 0;
  std::uint64_t xruns = 0, cycles = 0, priority = 0, normal = 0, coalesced = 0, rejected = 0;
  double period_us = 0;
};

RtRun run_engine(const std::string& server, double seconds, bool stress) {
  RtRun r;
  engine::io::BackendConfig bc;
  bc.client_name = stress ? "rt_stress" : "rt_idle";
  bc.server_name = server;
  bc.inputs = {"in_1"};
  bc.outputs = {"out_1", "out_2"};
  auto be = engine::io::JackAudioBackend::open(bc);
  if (!be) {
    r.why = be.error().message;
    return r;
  }
  const auto rate = (*be)->sample_rate();
  r.period_us = 1e6 * (*be)->buffer_size() / rate;
  engine::EngineConfig ec;
  ec.click = true;
  ec.click_output = 1;
  engine::Engine e(std::move(*be), ec);
  SynthProcessor synth(rate);
  if (auto s = e.start(&synth); !s) {
    r.why = s.error().message;
    return r;
  }
  const std::uint64_t xruns_at_start = e.backend().xruns();
  std::optional<StressLoad> load;
  if (stress) load.emplace(&e);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  if (load) {
    load->stop();
    r.rejected = load->rejected();
  }
  // Let the last window publish, then read the whole-run histograms.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const engine::TelemetrySnapshot t = e.telemetry();
  r.xruns = e.backend().xruns() - xruns_at_start;
  const auto counters = e.counters();
  e.stop();
  if (t.seq == 0) {
    r.why = "no telemetry window was published";
    return r;
  }
  r.ok = true;
  r.cycles = counters.cycles;
  r.priority = counters.notes + counters.live_params;
  r.normal = counters.normal;
  r.coalesced = counters.coalesced;
  r.tick_jitter_p99_us = static_cast<double>(t.tick_jitter_total.quantile(0.99)) / 1e3;
  r.tick_jitter_max_us = static_cast<double>(t.tick_jitter_total.max()) / 1e3;
  r.priority_latency_p99_us = static_cast<double>(t.priority_latency_total.quantile(0.99)) / 1e3;
  r.priority_latency_max_us = static_cast<double>(t.priority_latency_total.max()) / 1e3;
  r.load_max = t.load_max;
  return r;
}

}  // namespace

void run_rt_bench(const BenchOptions& opts, Metrics& out) {
  if (!engine::io::jack_midi_available()) {
    std::fprintf(stderr, "rt: built without JACK; skipped\n");
    return;
  }
  testing::JackdProcess jackd;
  std::string why;
  const std::string server = "jamnet-rtbench-" + std::to_string(::getpid());
  if (!jackd.start(server, 48000, 64, why)) {
    std::fprintf(stderr, "rt: cannot start jackd: %s\n", why.c_str());
    return;
  }
  const double seconds = opts.quick ? 5.0 : 20.0;
  // The VM's host can stall this machine for whole milliseconds (jackd's own
  // dummy driver then reports xruns with nothing running): such a run measures
  // the host, not the engine. The idle run first tells: up to 3 attempts, the
  // first whose idle baseline was clean (no xrun) is kept, else the attempt
  // with the calmest baseline.
  RtRun idle, stress;
  int attempts = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    ++attempts;
    RtRun i = run_engine(server, seconds / 2, false);
    RtRun s = run_engine(server, seconds, true);
    const bool better =
        !stress.ok || (i.ok && (!idle.ok || i.tick_jitter_p99_us < idle.tick_jitter_p99_us));
    if (s.ok && better) {
      idle = i;
      stress = s;
    }
    if (idle.ok && stress.ok && idle.xruns == 0) break;
  }
  for (const auto* run : {&idle, &stress}) {
    if (!run->ok) std::fprintf(stderr, "rt: run failed: %s\n", run->why.c_str());
  }
  if (!stress.ok) return;
  out["rt.attempts"] = attempts;
  out["rt.tick_jitter_p99_us_engine"] = stress.tick_jitter_p99_us;
  out["rt.tick_jitter_max_us_engine"] = stress.tick_jitter_max_us;
  out["rt.priority_latency_p99_us"] = stress.priority_latency_p99_us;
  out["rt.priority_latency_max_us"] = stress.priority_latency_max_us;
  out["rt.xruns_stress"] = static_cast<double>(stress.xruns);
  out["rt.load_max_stress"] = stress.load_max;
  out["rt.period_us"] = stress.period_us;
  out["rt.cycles_stress"] = static_cast<double>(stress.cycles);
  out["rt.priority_applied_stress"] = static_cast<double>(stress.priority);
  out["rt.normal_applied_stress"] = static_cast<double>(stress.normal);
  out["rt.normal_coalesced_stress"] = static_cast<double>(stress.coalesced);
  out["rt.commands_rejected_stress"] = static_cast<double>(stress.rejected);
  out["rt.seconds_stress"] = seconds;
  if (idle.ok) {
    out["rt.tick_jitter_p99_us_idle"] = idle.tick_jitter_p99_us;
    out["rt.xruns_idle"] = static_cast<double>(idle.xruns);
  }
  std::fprintf(stderr,
               "rt: stress %.0f s: tick jitter p99 %.1f us (idle %.1f), priority latency p99 "
               "%.1f us (period %.0f us), xruns %llu\n",
               seconds, stress.tick_jitter_p99_us, idle.tick_jitter_p99_us,
               stress.priority_latency_p99_us, stress.period_us,
               static_cast<unsigned long long>(stress.xruns));
}

}  // namespace jamnet::bench
