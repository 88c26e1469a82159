// Sync / control protocol micro-benchmarks (no Google Benchmark): the cost of
// validating one typical transport command against its JSON Schema, and of
// the whole parse() a peer runs on every control message it receives.
//
// Each figure is the median, over batches, of the wall time of one batch
// divided by its calls: a batch long enough to dwarf the clock read, many
// batches so a preempted one (shared VM) does not move the median.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "jamnet/protocol/control.hpp"

namespace jamnet::bench {
namespace {

namespace ctl = protocol::control;

// A TEMPO command as a peer sends it: every field present.
std::string typical_transport() {
  ctl::TransportMsg m;
  m.command = ctl::TransportCommand::kTempo;
  m.timestamp = 1'732'000'000'123'456'789;
  m.position_ms = 48'250.5;
  m.bpm = 132.5;
  m.time_signature = {4, 4};
  m.master_peer = "3f2b8c1e-9d4a-4e7b-a1c2-5d6e7f8091a2";
  m.origin = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";
  m.seq = 42;
  return ctl::serialize(m);
}

template <class F>
double median_ns_per_call(F&& call, int batch, int batches) {
  std::vector<double> per_call;
  per_call.reserve(static_cast<std::size_t>(batches));
  for (int b = 0; b < batches; ++b) {
    const Nanos t0 = monotonic_ns();
    for (int i = 0; i < batch; ++i) call();
    const Nanos t1 = monotonic_ns();
    per_call.push_back(static_cast<double>(t1 - t0) / batch);
  }
  return percentile_of(std::move(per_call), 0.5);
}

}  // namespace

void run_sync_bench(const BenchOptions& opts, Metrics& out) {
  const std::string text = typical_transport();
  const auto& schemas = ctl::SchemaSet::instance();
  // Warm up (the schemas are parsed once, the validator compiles its regexes
  // once per thread) and check that what is timed is the success path.
  if (auto err = schemas.validate("transport", text))
    throw std::runtime_error("sync bench: typical transport message does not validate: " + *err);
  if (auto m = ctl::parse(text); !m)
    throw std::runtime_error("sync bench: typical transport message does not parse: " +
                             m.error().detail);

  const int batch = opts.quick ? 100 : 500;
  const int batches = opts.quick ? 21 : 101;
  std::size_t sink = 0;  // results feed it so no call can be dropped
  std::fprintf(stderr, "sync: %d batches of %d calls on a %zu-byte transport message\n", batches,
               batch, text.size());

  out["sync.schema_validate_ns"] = median_ns_per_call(
      [&] { sink += schemas.validate("transport", text).has_value() ? 1 : 2; }, batch, batches);
  out["sync.control_parse_ns"] = median_ns_per_call(
      [&] {
        auto m = ctl::parse(text);
        sink += m ? m->index() + 1 : 0;
      },
      batch, batches);
  // For scale: the JSON text -> DOM step alone, which both figures above include.
  out["sync.json_parse_ns"] = median_ns_per_call(
      [&] { sink += nlohmann::json::parse(text, nullptr, false).size(); }, batch, batches);
  out["sync.control_message_bytes"] = static_cast<double>(text.size());
  if (sink == 0) std::fprintf(stderr, "sync: (unreachable) %zu\n", sink);
}

}  // namespace jamnet::bench
