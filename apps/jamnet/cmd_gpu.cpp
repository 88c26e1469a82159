// `jamnet gpu info [--json] [--profile P]`: what GPUs this machine has, their
// tiers, and the configuration JAMNet would use (004 §1.1-1.3).
// `jamnet gpu check [--backend B] [--cpu-device] [--streams N] [--json]`: runs
// the compute kernels on a backend against the CPU reference (docs/gpu.md).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "command.hpp"
#include "jamnet/core/clock.hpp"
#include "jamnet/gpu/compute.hpp"
#include "jamnet/gpu/device.hpp"
#include "jamnet/protocol/jmid.hpp"
#include "jamnet/sync/clock_source.hpp"

namespace jamnet::app {

namespace {

struct GpuCmd {
  std::string profile;  // empty: JAMNET_GPU_PROFILE, else auto
  bool json = false;
  std::string backend = "auto";  // gpu check
  bool cpu_device = false;
  int streams = 256;
};

int run_gpu_info(const GpuCmd& c) {
  gpu::Profile profile = gpu::Profile::kAuto;
  if (!c.profile.empty()) {
    profile = *gpu::profile_from(c.profile);  // checked by CLI::IsMember
  } else if (const char* env = std::getenv("JAMNET_GPU_PROFILE"); env && *env) {
    auto p = gpu::profile_from(env);
    if (!p) {
      std::fprintf(stderr,
                   "jamnet gpu info: JAMNET_GPU_PROFILE='%s': expected auto, high_performance, "
                   "balanced or modest\n",
                   env);
      return 2;
    }
    profile = *p;
  }
  const gpu::Detection det = gpu::detect();
  const auto best = gpu::best_device(det);
  auto cfg = gpu::apply_env(gpu::make_config(best, profile),
                            [](const char* name) { return std::getenv(name); });
  if (!cfg) {
    std::fprintf(stderr, "jamnet gpu info: %s\n", cfg.error().message.c_str());
    return 2;
  }
  if (c.json) {
    std::printf("%s\n", gpu::to_json(det, *cfg).c_str());
    return 0;
  }
  std::printf("Vulkan: %s\n", det.vulkan_status.c_str());
  std::printf("CUDA:   %s\n", det.cuda_status.c_str());
  std::printf("Devices:%s\n", det.devices.empty() ? " none" : "");
  for (const auto& d : det.devices) {
    const std::string backend(gpu::to_string(d.backend));
    if (d.is_cpu()) {
      std::printf("  [%s] %s: CPU device (not a GPU), memory %llu MiB, API %s\n", backend.c_str(),
                  d.name.c_str(), static_cast<unsigned long long>(d.vram_bytes >> 20),
                  d.compute_capability.c_str());
      continue;
    }
    std::printf("  [%s] %s: %.*s, VRAM %llu MiB, %s %s, driver %s, tier %.*s\n", backend.c_str(),
                d.name.c_str(), static_cast<int>(gpu::to_string(d.type).size()),
                gpu::to_string(d.type).data(), static_cast<unsigned long long>(d.vram_bytes >> 20),
                d.backend == gpu::Backend::kCuda ? "compute capability" : "API",
                d.compute_capability.c_str(), d.driver.c_str(),
                static_cast<int>(gpu::to_string(gpu::classify(d)).size()),
                gpu::to_string(gpu::classify(d)).data());
  }
  const auto& g = *cfg;
  std::printf("Configuration:\n");
  std::printf("  device:             %s\n",
              best ? best->name.c_str() : "none (no GPU; compute runs on the CPU)");
  std::printf("  tier:               %s\n", std::string(gpu::to_string(g.tier)).c_str());
  std::printf("  profile:            %s\n", std::string(gpu::to_string(g.profile)).c_str());
  std::printf("  backend:            %s\n", std::string(gpu::to_string(g.backend)).c_str());
  std::printf("  parallel streams:   %d\n", g.parallel_streams);
  std::printf("  VRAM limit:         %llu MiB\n",
              static_cast<unsigned long long>(g.vram_limit_bytes >> 20));
  std::printf("  utilization target: %.2f\n", g.utilization_target);
  std::printf("  pre-buffer:         %.2f s\n", g.prebuffer_s);
  return 0;
}

// One kernel on the backend and on the CPU: time of one call (best of 3,
// after a warm-up) and the error against the reference.
struct KernelCheck {
  std::string name;
  double us = 0, cpu_us = 0, max_rel_err = 0;
  bool bit_exact = false;
  std::string error;
};

template <class F>
double best_us(F&& call) {
  double best = 1e300;
  for (int i = 0; i < 3; ++i) {
    const Nanos t0 = monotonic_ns();
    call();
    best = std::min(best, double(monotonic_ns() - t0) / 1e3);
  }
  return best;
}

int run_gpu_check(const GpuCmd& c) {
  gpu::ComputeOptions o;
  o.want = *gpu::want_from(c.backend);  // checked by CLI::IsMember
  o.allow_cpu_device = c.cpu_device;
  auto backend = gpu::make_compute(o);
  if (!backend) {
    std::fprintf(stderr, "jamnet gpu check: %s\n", backend.error().message.c_str());
    return 2;
  }
  gpu::Compute& b = **backend;
  auto cpu = gpu::make_cpu_compute();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<KernelCheck> checks;

  {  // mix: `streams` inputs into 16 outputs
    const gpu::MixShape s{.inputs = c.streams, .outputs = 16, .frames = 128};
    std::vector<float> g(std::size_t(16) * c.streams), in(std::size_t(c.streams) * 128);
    for (auto& x : g) x = u(rng);
    for (auto& x : in) x = u(rng);
    std::vector<float> ref(16 * 128), got(16 * 128);
    KernelCheck k;
    k.name = "mix";
    (void)cpu->mix(s, g, in, ref);
    if (auto r = b.mix(s, g, in, got); !r) {
      k.error = r.error().message;
    } else {
      k.us = best_us([&] { (void)b.mix(s, g, in, got); });
      k.cpu_us = best_us([&] { (void)cpu->mix(s, g, in, ref); });
      k.max_rel_err = gpu::max_rel_err(got, ref);
      k.bit_exact = std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0;
    }
    checks.push_back(k);
  }
  {  // PNBTR: `streams` streams, sines and noise
    const gpu::PnbtrShape s{.streams = c.streams, .history = 256, .order = 32, .frames = 128};
    std::vector<float> h(std::size_t(c.streams) * 256);
    for (std::size_t i = 0; i < h.size(); ++i)
      h[i] =
          (i / 256) % 2 ? u(rng) : float(0.5 * std::sin(0.05 * double(i % 256) + double(i / 256)));
    std::vector<float> ref(std::size_t(c.streams) * 128), got(ref.size());
    KernelCheck k;
    k.name = "pnbtr";
    (void)cpu->pnbtr(s, h, ref);
    if (auto r = b.pnbtr(s, h, got); !r) {
      k.error = r.error().message;
    } else {
      k.us = best_us([&] { (void)b.pnbtr(s, h, got); });
      k.cpu_us = best_us([&] { (void)cpu->pnbtr(s, h, ref); });
      k.max_rel_err = gpu::max_rel_err(got, ref);
      k.bit_exact = std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0;
    }
    checks.push_back(k);
  }
  {  // JSONL: 10k note lines
    std::string blob;
    for (int i = 0; i < 10000; ++i) {
      protocol::jmid::Event e;
      e.kind = i % 2 ? protocol::jmid::Kind::kNoteOff : protocol::jmid::Kind::kNoteOn;
      e.channel = std::uint8_t(i % 16);
      e.data1 = std::uint8_t(i % 128);
      e.data2 = std::uint8_t(i % 127 + 1);
      e.ts_ns = std::int64_t(i) * 1'000'000;
      e.seq = std::uint64_t(i);
      blob += protocol::jmid::to_line(e) + "\n";
    }
    const auto off = *gpu::split_lines(blob);
    std::vector<gpu::JsonlFields> ref(off.size() - 1), got(ref.size());
    KernelCheck k;
    k.name = "jsonl";
    (void)cpu->jsonl(blob, off, ref);
    if (auto r = b.jsonl(blob, off, got); !r) {
      k.error = r.error().message;
    } else {
      k.us = best_us([&] { (void)b.jsonl(blob, off, got); });
      k.cpu_us = best_us([&] { (void)cpu->jsonl(blob, off, ref); });
      k.bit_exact = std::memcmp(got.data(), ref.data(), got.size() * sizeof(got[0])) == 0;
      k.max_rel_err = k.bit_exact ? 0.0 : 1.0;
    }
    checks.push_back(k);
  }
  double dispatch_us = best_us([&] { (void)b.noop(); });

  // The device clock, when there is one: a few calibrations, then how far a
  // fresh pair lands from the fit.
  nlohmann::json clock = nullptr;
  if (auto dc = sync::make_gpu_clock(b)) {
    for (int i = 0; i < 8; ++i) {
      dc->calibrate();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (auto p = b.sample_clock()) {
      clock = {{"tick_ns", b.clock_tick_ns()},
               {"max_deviation_ns", p->max_deviation_ns},
               {"fit_residual_ns", dc->from_monotonic(p->mono) - dc->ticks_to_ns(p->ticks)},
               {"device_minus_monotonic_ns", dc->ticks_to_ns(p->ticks) - p->mono}};
    }
  }

  bool ok = true;
  for (const auto& k : checks) ok = ok && k.error.empty() && k.max_rel_err <= 1e-6;
  if (c.json) {
    nlohmann::json j = {{"backend", std::string(gpu::to_string(b.backend()))},
                        {"device", b.device_name()},
                        {"fallback_reason", b.fallback_reason()},
                        {"streams", c.streams},
                        {"dispatch_us", dispatch_us},
                        {"clock", clock},
                        {"ok", ok}};
    for (const auto& k : checks) {
      j["kernels"][k.name] = {
          {"us", k.us},
          {"cpu_us", k.cpu_us},
          {"max_rel_err", k.max_rel_err},
          {"bit_exact", k.bit_exact},
          {"error", k.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(k.error)}};
    }
    std::printf("%s\n", j.dump(2).c_str());
    return ok ? 0 : 1;
  }
  std::printf("Backend: %s on %s\n", std::string(gpu::to_string(b.backend())).c_str(),
              b.device_name().c_str());
  if (!b.fallback_reason().empty())
    std::printf("  (chosen because %s)\n", b.fallback_reason().c_str());
  std::printf("Kernels against the CPU reference (%d streams x 128 frames; 10k JMID lines):\n",
              c.streams);
  for (const auto& k : checks) {
    if (!k.error.empty()) {
      std::printf("  %-6s FAILED: %s\n", k.name.c_str(), k.error.c_str());
      continue;
    }
    std::printf("  %-6s %10.1f us (CPU %10.1f us)  %s\n", k.name.c_str(), k.us, k.cpu_us,
                k.bit_exact ? "bit-exact" : (k.max_rel_err <= 1e-6 ? "within 1e-6" : "MISMATCH"));
    if (!k.bit_exact) std::printf("         max relative error %.3g\n", k.max_rel_err);
  }
  std::printf("  dispatch %8.1f us (an empty call)\n", dispatch_us);
  if (clock.is_null()) {
    std::printf("Clock: none (the backend has no calibrated device timestamps)\n");
  } else {
    std::printf(
        "Clock: device timestamps mapped onto CLOCK_MONOTONIC, tick %.3g ns, read within "
        "%lld ns, fit residual %lld ns\n",
        clock["tick_ns"].get<double>(), clock["max_deviation_ns"].get<long long>(),
        clock["fit_residual_ns"].get<long long>());
  }
  std::printf("%s\n", ok ? "OK" : "MISMATCH: the backend does not match the CPU reference");
  return ok ? 0 : 1;
}

}  // namespace

void add_gpu_command(CLI::App& root, Runner& run) {
  auto gc = std::make_shared<GpuCmd>();
  auto* gpu = root.add_subcommand("gpu", "GPU detection and the adaptive GPU configuration");
  gpu->require_subcommand(1);
  auto* info = gpu->add_subcommand(
      "info", "List Vulkan and CUDA devices, their tiers, and the configuration in use");
  info->add_flag("--json", gc->json, "Print the detection and configuration as JSON");
  info->add_option("--profile", gc->profile,
                   "auto | high_performance | balanced | modest (default: JAMNET_GPU_PROFILE, "
                   "else auto)")
      ->check(CLI::IsMember({"auto", "high_performance", "balanced", "modest"}));
  info->callback([gc, &run] { run = [gc] { return run_gpu_info(*gc); }; });

  auto* check = gpu->add_subcommand(
      "check",
      "Run the compute kernels (mix, PNBTR, JMID line extraction) on a backend and compare "
      "them with the CPU reference; exit 1 on a mismatch, 2 when the backend cannot start");
  check
      ->add_option("--backend", gc->backend,
                   "auto | cpu | vulkan | cuda (auto: CUDA, else a Vulkan GPU, else the CPU)")
      ->check(CLI::IsMember({"auto", "cpu", "vulkan", "cuda"}))
      ->capture_default_str();
  check->add_flag("--cpu-device", gc->cpu_device,
                  "Accept a CPU-type Vulkan device (lavapipe), which auto never picks");
  check->add_option("--streams", gc->streams, "Streams per mix / PNBTR call")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  check->add_flag("--json", gc->json, "Print the results as JSON");
  check->callback([gc, &run] { run = [gc] { return run_gpu_check(*gc); }; });
}

}  // namespace jamnet::app
