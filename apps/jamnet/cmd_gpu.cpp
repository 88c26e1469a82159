// `jamnet gpu info [--json] [--profile P]`: what GPUs this machine has, their
// tiers, and the configuration JAMNet would use (004 §1.1-1.3).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "command.hpp"
#include "jamnet/gpu/device.hpp"

namespace jamnet::app {

namespace {

struct GpuCmd {
  std::string profile;  // empty: JAMNET_GPU_PROFILE, else auto
  bool json = false;
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
}

}  // namespace jamnet::app
