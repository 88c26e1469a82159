// GPU compute against the CPU, in the same run (docs/gpu.md): mix and PNBTR
// for N = 1, 16, 256, 1024 streams x 128 frames, a 10k-line JMID batch, and
// the fixed cost of a dispatch, on every backend this machine has (CPU always;
// Vulkan on whatever device there is, lavapipe included and flagged; CUDA
// when built and a device is present). Each figure is the median wall time of
// one call, copies to and from the device included, as a caller pays it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "jamnet/gpu/compute.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::bench {
namespace {

namespace jmid = protocol::jmid;

constexpr int kFrames = 128;
constexpr int kMixOutputs = 16;  // personal monitor mixes of a hub
constexpr int kStreams[] = {1, 16, 256, 1024};

std::vector<float> noise(std::size_t n, std::uint32_t seed, float amp) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Half the streams a pair of sines, half noise, as in a real session.
std::vector<float> histories(const gpu::PnbtrShape& s) {
  std::vector<float> h = noise(std::size_t(s.streams) * s.history, 17, 0.3f);
  for (int st = 0; st < s.streams; st += 2) {
    for (int t = 0; t < s.history; ++t) {
      const double w = 2 * 3.141592653589793 * t / 48000.0 * (110.0 + 7.0 * st);
      h[std::size_t(st) * s.history + t] = float(0.4 * std::sin(w) + 0.2 * std::sin(2.5 * w));
    }
  }
  return h;
}

// Median of per-call wall times; at least `min_calls` calls and ~min_ms of work.
template <class F>
double median_us(F&& call, int min_calls = 7, double min_ms = 150.0, int max_calls = 400) {
  std::vector<double> us;
  double total_ms = 0;
  while (int(us.size()) < max_calls && (int(us.size()) < min_calls || total_ms < min_ms)) {
    const Nanos t0 = monotonic_ns();
    call();
    const double d = double(monotonic_ns() - t0) / 1e3;
    us.push_back(d);
    total_ms += d / 1e3;
  }
  return percentile_of(std::move(us), 0.5);
}

struct Named {
  std::string key;  // "cpu", "vulkan", "cuda"
  std::unique_ptr<gpu::Compute> c;
};

void must(const Result<void>& r, const char* what) {
  if (!r) throw std::runtime_error(std::string("gpu bench: ") + what + ": " + r.error().message);
}

}  // namespace

void run_gpu_bench(const BenchOptions& opts, Metrics& out) {
  std::vector<Named> backends;
  backends.push_back({"cpu", gpu::make_cpu_compute()});
  if (auto vk = gpu::make_vulkan_compute(true)) {
    backends.push_back({"vulkan", std::move(*vk)});
  } else {
    std::fprintf(stderr, "gpu: no Vulkan backend: %s\n", vk.error().message.c_str());
  }
  if (auto cu = gpu::make_cuda_compute()) {
    backends.push_back({"cuda", std::move(*cu)});
  } else {
    std::fprintf(stderr, "gpu: no CUDA backend: %s\n", cu.error().message.c_str());
  }
  for (const auto& b : backends)
    std::fprintf(stderr, "gpu: %s on %s\n", b.key.c_str(), b.c->device_name().c_str());
  const double min_ms = opts.quick ? 30.0 : 150.0;

  std::map<std::string, double> max_err;  // per backend, against the CPU reference
  auto track = [&](const std::string& key, std::span<const float> got, std::span<const float> ref) {
    double& e = max_err[key];
    e = std::max(e, gpu::max_rel_err(got, ref));
  };

  for (int n : kStreams) {
    const std::string tag = std::to_string(n) + "x" + std::to_string(kFrames);
    // Mix: n inputs into 16 outputs.
    const gpu::MixShape ms{.inputs = n, .outputs = kMixOutputs, .frames = kFrames};
    const auto gains = noise(std::size_t(kMixOutputs) * n, 3, 1.0f / std::sqrt(float(n)));
    const auto in = noise(std::size_t(n) * kFrames, 4, 0.5f);
    std::vector<float> ref(std::size_t(kMixOutputs) * kFrames), got(ref.size());
    must(backends[0].c->mix(ms, gains, in, ref), "cpu mix");
    // PNBTR: n streams, 256 samples of history, order 32, 128 frames ahead.
    const gpu::PnbtrShape ps{.streams = n, .history = 256, .order = 32, .frames = kFrames};
    const auto hist = histories(ps);
    std::vector<float> pref(std::size_t(n) * kFrames), pgot(pref.size());
    must(backends[0].c->pnbtr(ps, hist, pref), "cpu pnbtr");
    for (auto& b : backends) {
      gpu::Compute& c = *b.c;
      must(c.mix(ms, gains, in, got), "mix");  // warm-up (buffers, JIT) and check
      if (b.key != "cpu") track(b.key, got, ref);
      out["gpu.mix_" + tag + "_us_" + b.key] =
          median_us([&] { must(c.mix(ms, gains, in, got), "mix"); }, 7, min_ms);
      must(c.pnbtr(ps, hist, pgot), "pnbtr");
      if (b.key != "cpu") track(b.key, pgot, pref);
      out["gpu.pnbtr_" + tag + "_us_" + b.key] =
          median_us([&] { must(c.pnbtr(ps, hist, pgot), "pnbtr"); }, 5, min_ms);
    }
  }

  // JMID: 10k lines as peers send them (every non-SysEx kind, canonical).
  std::string blob;
  {
    std::mt19937_64 rng(23);
    for (int i = 0; i < 10000; ++i) {
      jmid::Event e;
      e.kind = static_cast<jmid::Kind>(rng() % 7);  // the channel messages
      e.channel = rng() % 16;
      e.data1 = rng() % 128;
      e.data2 = rng() % 128;
      if (e.kind == jmid::Kind::kPitchBend) e.value14 = std::int16_t(int(rng() % 16384) - 8192);
      e.ts_ns = 1'732'000'000'000'000'000 + std::int64_t(i) * 1'000'000;
      e.seq = std::uint64_t(i);
      blob += jmid::to_line(e);
      blob += '\n';
    }
  }
  const auto offsets = *gpu::split_lines(blob);
  const std::size_t lines = offsets.size() - 1;
  std::vector<gpu::JsonlFields> jref(lines), jgot(lines);
  gpu::jsonl_reference(blob, offsets, jref);
  for (auto& b : backends) {
    must(b.c->jsonl(blob, offsets, jgot), "jsonl");
    if (std::memcmp(jref.data(), jgot.data(), lines * sizeof(gpu::JsonlFields)) != 0)
      throw std::runtime_error("gpu bench: " + b.key + " jsonl differs from the reference");
    out["gpu.jsonl_10k_us_" + b.key] =
        median_us([&] { must(b.c->jsonl(blob, offsets, jgot), "jsonl"); }, 7, min_ms);
  }
  // For scale: the project's own line parser (the CPU path every peer runs),
  // line by line, including the split.
  std::size_t sink = 0;
  out["gpu.jsonl_10k_us_parse_line"] = median_us(
      [&] {
        for (std::size_t i = 0; i < lines; ++i) {
          auto e = jmid::parse_line(
              std::string_view(blob).substr(offsets[i], offsets[i + 1] - offsets[i] - 1));
          sink += e ? e->data1 : 0;
        }
      },
      7, min_ms);
  if (sink == 0) throw std::runtime_error("gpu bench: parse_line read nothing");

  // Dispatch overhead: an empty dispatch, submitted and waited for.
  for (auto& b : backends) {
    if (b.key == "cpu") continue;
    std::vector<double> us;
    for (int i = 0; i < (opts.quick ? 100 : 500); ++i) {
      const Nanos t0 = monotonic_ns();
      must(b.c->noop(), "noop");
      us.push_back(double(monotonic_ns() - t0) / 1e3);
    }
    out["gpu." + b.key + "_dispatch_us_p50"] = percentile_of(us, 0.5);
    out["gpu." + b.key + "_dispatch_us_p99"] = percentile_of(std::move(us), 0.99);
  }

  for (const auto& [key, e] : max_err)
    out[key == "vulkan" ? std::string("gpu.max_rel_err_vs_cpu") : "gpu.max_rel_err_vs_cpu_" + key] =
        e;
  // Crossover: the smallest N measured at which the backend beats the CPU
  // (0: it never does up to 1024).
  for (const auto& b : backends) {
    if (b.key == "cpu") continue;
    for (const char* k : {"mix", "pnbtr"}) {
      double cross = 0;
      for (int n : kStreams) {
        const std::string tag = std::to_string(n) + "x" + std::to_string(kFrames);
        const std::string base = std::string("gpu.") + k + "_" + tag + "_us_";
        if (out[base + b.key] < out[base + "cpu"]) {
          cross = n;
          break;
        }
      }
      out[std::string("gpu.") + k + "_crossover_n_" + b.key] = cross;
    }
    if (b.key == "vulkan")
      out["gpu.vulkan_is_cpu_device"] =
          b.c->device_name().find("(CPU device)") != std::string::npos ? 1.0 : 0.0;
  }
}

}  // namespace jamnet::bench
