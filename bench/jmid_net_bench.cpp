// JMID over the network, measured through netsim on loopback: delivered rates,
// stuck notes under bursts, timing error under jitter, latency, bytes per event.
#include <cmath>
#include <cstdio>
#include <optional>

#include "bench_common.hpp"
#include "experiments/midi_link_experiment.hpp"
#include "jamnet/core/sample_stats.hpp"

namespace jamnet::bench {

void run_jmid_net_bench(const BenchOptions& opts, Metrics& m) {
  const int events = opts.quick ? 200 : 1000;
  auto run = [&](double loss, int k, auto&& tweak) -> std::optional<MidiLinkResult> {
    MidiLinkExperiment x;
    x.k = k;
    x.events = events;
    x.link.loss = loss;
    tweak(x);
    auto r = run_midi_link(x);
    if (!r) {
      std::fprintf(stderr, "jmid: %s\n", r.error().message.c_str());
      return std::nullopt;  // the key stays missing: run.py reports it as not measured
    }
    return *r;
  };
  auto none = [](MidiLinkExperiment&) {};
  if (auto r = run(0.20, 3, none)) m["jmid.delivered_rate_k3_loss20"] = r->delivered_rate;
  if (auto r = run(0.50, 5, none)) m["jmid.delivered_rate_k5_loss50"] = r->delivered_rate;
  if (auto r = run(0.0, 3, [](MidiLinkExperiment& x) {
        x.link.ge_p = 0.05;
        x.link.ge_r = 0.30;
      })) {
    m["jmid.stuck_notes_bursty"] = static_cast<double>(r->stuck_notes);
    m["jmid.delivered_rate_k3_bursty"] = r->delivered_rate;
  }
  if (auto r = run(0.0, 3, [](MidiLinkExperiment& x) {
        x.link.delay = 2'000'000;
        x.link.jitter = 1'000'000;
      })) {
    std::vector<double> abs_err;
    for (double e : r->timing_err_us) abs_err.push_back(std::fabs(e));
    m["jmid.timing_err_p99_us_link"] = percentile_of(abs_err, 0.99);
    m["jmid.timing_err_p50_us_link"] = percentile_of(abs_err, 0.50);
    m["jmid.arrival_jitter_p99_us"] = [&] {
      std::vector<double> j;
      const double med = percentile_of(r->net_latency_us, 0.5);
      for (double l : r->net_latency_us) j.push_back(std::fabs(l - med));
      return percentile_of(j, 0.99);
    }();
  }
  if (auto r = run(0.0, 3, none)) {
    m["jmid.note_latency_p50_us"] = percentile_of(r->net_latency_us, 0.5);
    m["jmid.note_latency_p99_us"] = percentile_of(r->net_latency_us, 0.99);
    m["jmid.bytes_per_event_k3"] =
        static_cast<double>(r->bytes_on_wire) / static_cast<double>(r->sent);
  }
}

}  // namespace jamnet::bench
