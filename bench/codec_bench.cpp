// TOAST codec micro-benchmarks (Google Benchmark): encode + decode of a
// 256-byte payload, and the CRC-32 that dominates both, for context.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "jamnet/core/crc32.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::bench {
namespace {

constexpr std::size_t kPayloadBytes = 256;

std::array<std::uint8_t, kPayloadBytes> make_payload() {
  std::array<std::uint8_t, kPayloadBytes> p{};
  std::iota(p.begin(), p.end(), std::uint8_t{0});
  return p;
}

void bm_encode_decode(benchmark::State& state) {
  const auto payload = make_payload();
  protocol::FrameHeader h;
  h.stream_type = protocol::StreamType::kAudio;
  h.format_type = protocol::FormatType::kBinary;
  h.session_id = Uuid::random();
  std::array<std::uint8_t, protocol::encoded_size(kPayloadBytes)>
      buf{};  // stack, as the transport does
  for (auto _ : state) {
    ++h.sequence;  // a fresh header each frame, so nothing is hoisted out of the loop
    h.timestamp_ns = static_cast<Nanos>(h.sequence) * 1000;
    auto n = protocol::encode_frame(h, payload, buf);
    benchmark::DoNotOptimize(n);
    auto frame = protocol::decode_frame({buf.data(), *n});
    if (!frame) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(frame->header.sequence);
    benchmark::DoNotOptimize(frame->payload.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void bm_crc32(benchmark::State& state) {
  auto payload = make_payload();
  for (auto _ : state) {
    benchmark::DoNotOptimize(payload.data());
    auto c = crc32(payload);
    benchmark::DoNotOptimize(c);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kPayloadBytes));
}

// Shows the usual console table and keeps the median of the repetitions: the
// hypervisor can steal whole milliseconds, and a median shrugs that off.
class MedianCapture : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median" && !r.error_occurred) {
        medians_ns[r.run_name.function_name] = r.GetAdjustedRealTime();  // time unit is ns
        cpu_medians_ns[r.run_name.function_name] = r.GetAdjustedCPUTime();
      }
    }
  }
  std::map<std::string, double> medians_ns;
  // CPU time leaves out the time the thread sat preempted by other tenants of
  // the VM: when it is far below the wall figure, the machine was busy.
  std::map<std::string, double> cpu_medians_ns;
};

}  // namespace

void run_codec_bench(const BenchOptions& opts, Metrics& out, std::vector<char*> benchmark_args) {
  // Only --benchmark_* flags reach the library; our own flags are parsed in main.
  int argc = static_cast<int>(benchmark_args.size());
  benchmark_args.push_back(nullptr);  // argv[argc] is null by convention
  benchmark::Initialize(&argc, benchmark_args.data());

  const int reps = opts.quick ? 3 : 7;
  const double min_time_s = opts.quick ? 0.05 : 0.3;
  benchmark::RegisterBenchmark("toast_encode_decode_256B", bm_encode_decode)
      ->Repetitions(reps)
      ->MinTime(min_time_s)
      ->ReportAggregatesOnly(true)
      ->Unit(benchmark::kNanosecond);
  benchmark::RegisterBenchmark("crc32_256B", bm_crc32)
      ->Repetitions(reps)
      ->MinTime(min_time_s)
      ->ReportAggregatesOnly(true)
      ->Unit(benchmark::kNanosecond);

  MedianCapture reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  auto take = [&](const std::map<std::string, double>& from, const char* bench_name,
                  const char* metric) {
    auto it = from.find(bench_name);
    if (it == from.end())
      throw std::runtime_error(std::string("benchmark did not run: ") + bench_name);
    out[metric] = it->second;
  };
  take(reporter.medians_ns, "toast_encode_decode_256B", "toast.codec_ns_per_frame");
  take(reporter.medians_ns, "crc32_256B", "toast.crc32_ns_per_256B");
  take(reporter.cpu_medians_ns, "toast_encode_decode_256B", "toast.codec_cpu_ns_per_frame");
  take(reporter.cpu_medians_ns, "crc32_256B", "toast.crc32_cpu_ns_per_256B");
}

}  // namespace jamnet::bench
