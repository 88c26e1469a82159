// Shared pieces of the jamnet_bench areas: options, the flat metric map that
// becomes bench/results.json, and small timing helpers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/sample_stats.hpp"

namespace jamnet::bench {

struct BenchOptions {
  bool quick = false;                        // smoke-test lengths: same code paths, fewer samples
  std::string workdir = "build/bench-work";  // generated signals and other scratch files
};

// "metric.name" -> value. Ordered so the JSON and the report are stable to diff.
using Metrics = std::map<std::string, double>;

// Each area measures and adds its own keys; nothing is ever filled in from a
// constant, so every figure in results.json comes from this run.
void run_codec_bench(const BenchOptions& opts, Metrics& out, std::vector<char*> benchmark_args);
void run_net_bench(const BenchOptions& opts, Metrics& out);
void run_discovery_bench(const BenchOptions& opts, Metrics& out);
void run_jmid_net_bench(const BenchOptions& opts, Metrics& out);
void run_jmid_bench(const BenchOptions& opts, Metrics& out);
// Audio: loss-concealment quality (PNBTR vs zero-fill, repeat, libopus PLC) and PNBTR cost.
void run_plc_bench(const BenchOptions& opts, Metrics& out);
// Audio: JDAT codec sizes and the jitter buffer's added latency through netsim.
void run_jdat_bench(const BenchOptions& opts, Metrics& out);
// Real-time engine under a burst command load on jackd dummy (64 frames), idle baseline beside it.
void run_rt_bench(const BenchOptions& opts, Metrics& out);
// The peer's whole job and the host's floor, interleaved (full_load_bench.cpp).
void run_full_load_bench(const BenchOptions& opts, Metrics& out);
// Control protocol: JSON Schema validation and full parse() of one transport command.
void run_sync_bench(const BenchOptions& opts, Metrics& out);
// Keyed sessions and bounded state: AEAD cost, keyed/open latency, flood, RSS (security_bench.cpp).
void run_security_bench(const BenchOptions& opts, Metrics& out);
// GPU compute backends against the CPU (gpu_bench.cpp).
void run_gpu_bench(const BenchOptions& opts, Metrics& out);

// Percentile over the samples that arrived (NaN marks a lost frame).
inline double percentile_present(const std::vector<double>& samples, double q) {
  std::vector<double> present;
  present.reserve(samples.size());
  std::copy_if(samples.begin(), samples.end(), std::back_inserter(present),
               [](double v) { return v == v; });
  return percentile_of(std::move(present), q);
}

}  // namespace jamnet::bench
