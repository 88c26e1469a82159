// Shared pieces of the jamnet_bench areas: options, the flat metric map that
// becomes bench/results.json, and small timing helpers.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/sample_stats.hpp"

namespace jamnet::bench {

struct BenchOptions {
  bool quick = false;  // smoke-test lengths: same code paths, fewer samples
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

inline void sleep_until_ns(Nanos deadline) noexcept {
  const timespec ts{static_cast<time_t>(deadline / 1'000'000'000),
                    static_cast<long>(deadline % 1'000'000'000)};
  ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

// Send time travels inside the payload in network order, the way a real frame
// would carry it, so both the transport and the plain baseline do the same work.
inline void put_be64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
inline std::uint64_t get_be64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}
inline void put_be32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
inline std::uint32_t get_be32(const std::uint8_t* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | p[i];
  return v;
}

// Percentile over the samples that arrived (NaN marks a lost frame).
inline double percentile_present(const std::vector<double>& samples, double q) {
  std::vector<double> present;
  present.reserve(samples.size());
  std::copy_if(samples.begin(), samples.end(), std::back_inserter(present),
               [](double v) { return v == v; });
  return percentile_of(std::move(present), q);
}

}  // namespace jamnet::bench
