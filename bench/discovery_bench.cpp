// Discovery: how long two fresh Peers on loopback take to find each other
// (each lists the other in peers()) and to have a usable link (each has its
// first RTT sample, i.e. a pong came back).
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <vector>

#include "bench_common.hpp"
#include "jamnet/peer/peer.hpp"

namespace jamnet::bench {
namespace {

constexpr Nanos kMs = 1'000'000;
// Far beyond the 1 s / 2 s targets: a run that hits it counts as a failure.
constexpr Nanos kGiveUp = 5'000 * kMs;

struct Seen {
  bool found = false;
  bool usable = false;
};

Seen look_for(const Peer& self, const Uuid& other) {
  Seen s;
  for (const auto& p : self.peers()) {
    if (p.id != other) continue;
    s.found = true;
    s.usable = p.first_rtt_ns != 0 || p.pongs_received > 0;
  }
  return s;
}

}  // namespace

void run_discovery_bench(const BenchOptions& opts, Metrics& out) {
  const int runs = opts.quick ? 5 : 20;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> port_dist(40000, 60000);
  std::vector<double> found_ms, usable_ms;
  int failures = 0;

  std::fprintf(stderr, "discovery: %d runs of two fresh peers\n", runs);
  for (int i = 0; i < runs; ++i) {
    // A fresh session and group port per run, so one run (or anyone else's
    // test on this machine) never feeds the next one an already-known peer.
    PeerConfig cfg;
    cfg.session = Uuid::random();
    cfg.bind = net::Endpoint::loopback(0);
    cfg.multicast =
        net::Endpoint{kDefaultMulticastGroup, static_cast<std::uint16_t>(port_dist(rng))};
    PeerConfig cfg_a = cfg, cfg_b = cfg;
    cfg_a.name = "bench-a";
    cfg_b.name = "bench-b";
    auto a = Peer::start(cfg_a);
    if (!a) throw std::runtime_error("peer a: " + a.error().message);
    auto b = Peer::start(cfg_b);
    if (!b) throw std::runtime_error("peer b: " + b.error().message);
    const Nanos t0 = monotonic_ns();  // both started

    Nanos t_found = 0, t_usable = 0;
    while (monotonic_ns() - t0 < kGiveUp && t_usable == 0) {
      const Seen ab = look_for(**a, (*b)->id());
      const Seen ba = look_for(**b, (*a)->id());
      const Nanos now = monotonic_ns();
      if (t_found == 0 && ab.found && ba.found) t_found = now;
      if (ab.usable && ba.usable) t_usable = now;
      if (t_usable == 0) sleep_until_ns(now + kMs);
    }
    (*a)->stop();
    (*b)->stop();
    if (t_found == 0 || t_usable == 0) {
      ++failures;
      std::fprintf(stderr, "discovery: run %d did not converge within %lld ms\n", i,
                   static_cast<long long>(kGiveUp / kMs));
      continue;
    }
    found_ms.push_back(static_cast<double>(t_found - t0) / 1e6);
    usable_ms.push_back(static_cast<double>(t_usable - t0) / 1e6);
  }

  out["discovery.ms_p50"] = percentile_of(found_ms, 0.50);
  out["discovery.ms_p99"] = percentile_of(found_ms, 0.99);
  out["discovery.usable_ms_p50"] = percentile_of(usable_ms, 0.50);
  out["discovery.usable_ms_p99"] = percentile_of(usable_ms, 0.99);
  out["discovery.runs"] = runs;
  out["discovery.failed_runs"] = failures;
}

}  // namespace jamnet::bench
