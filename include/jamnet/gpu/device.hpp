// GPU detection, tiers and adaptive configuration (004 §1.1-1.3).
//
// detect() enumerates Vulkan devices and CUDA devices. Both libraries are
// loaded at run time (dlopen), so a machine with no Vulkan loader, no ICD, no
// CUDA driver or no device still runs: the backend reports why it is empty
// and the configuration falls back to the CPU. CPU-type Vulkan devices (mesa's
// lavapipe, SwiftShader) are reported as CPU devices, never as GPUs.
//
// Environment (read by detect() and apply_env()):
//   JAMNET_VULKAN_LOADER  path of the Vulkan loader (default libvulkan.so.1)
//   JAMNET_DISABLE_VULKAN / JAMNET_DISABLE_CUDA = 1: behave as if absent
//   JAMNET_GPU_PROFILE    auto | high_performance | balanced | modest
//   JAMNET_GPU_PARALLEL_STREAMS, JAMNET_GPU_VRAM_LIMIT_MB,
//   JAMNET_GPU_UTILIZATION (0..1), JAMNET_GPU_PREBUFFER_S: override one setting
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jamnet/core/result.hpp"

namespace jamnet::gpu {

enum class Backend : std::uint8_t { kCpu, kVulkan, kCuda };
std::string_view to_string(Backend b) noexcept;  // "cpu", "vulkan", "cuda"

enum class DeviceType : std::uint8_t { kDiscrete, kIntegrated, kVirtual, kCpu, kOther };
std::string_view to_string(
    DeviceType t) noexcept;  // "discrete", "integrated", "virtual", "cpu", "other"

struct DeviceInfo {
  Backend backend = Backend::kVulkan;
  std::string name;
  DeviceType type = DeviceType::kOther;
  std::uint64_t vram_bytes = 0;    // device-local memory (Vulkan: largest device-local heap)
  std::string compute_capability;  // CUDA "9.0"; Vulkan: its API version "1.3.255"
  std::string driver;              // driver version as the backend reports it
  std::uint32_t vendor_id = 0, device_id = 0;
  bool is_cpu() const noexcept { return type == DeviceType::kCpu; }
};

struct Detection {
  std::vector<DeviceInfo> devices;
  std::string vulkan_status;  // "ok: N devices", or why there are none ("no loader: ...")
  std::string cuda_status;    // the same for CUDA
};

// Never throws, never crashes on a broken driver; safe to call more than once.
Detection detect();

// ------------------------------------------------------------------- tiers

enum class Tier : std::uint8_t { kHighEnd, kMidRange, kModest, kLowEnd, kCpuOnly };
std::string_view to_string(
    Tier t) noexcept;  // "high_end", "mid_range", "modest", "low_end", "cpu_only"

// CPU-type device: kCpuOnly. Otherwise by device-local memory:
// >= 16 GiB kHighEnd, >= 8 GiB kMidRange, >= 4 GiB kModest, else kLowEnd.
// A CUDA compute capability below 6.0 drops one tier (not below kLowEnd).
Tier classify(const DeviceInfo& d) noexcept;
// The device the configuration is built for: the best tier, then most VRAM;
// nullopt when there is no GPU (CPU-type devices do not count).
std::optional<DeviceInfo> best_device(const Detection& d);

// --------------------------------------------------------- configuration

enum class Profile : std::uint8_t { kAuto, kHighPerformance, kBalanced, kModest };
std::string_view to_string(Profile p) noexcept;  // "auto", "high_performance", "balanced", "modest"
std::optional<Profile> profile_from(std::string_view s) noexcept;

// 004 §1.2, per tier (auto/balanced):
//   tier       streams  VRAM limit  utilization  pre-buffer
//   high_end   3        90 %        0.90         0.5 s
//   mid_range  2        80 %        0.70         1.0 s
//   modest     1        70 %        0.50         2.0 s
//   low_end    0        60 %        0.40         3.0 s
//   cpu_only   0        0           0            3.0 s
// high_performance: one more stream (at most 3), utilization at the top of
// the tier's range (0.95 / 0.80 / 0.60 / 0.50), pre-buffer x0.5 (at least
// 0.5 s). modest: one stream fewer (at least 0), utilization at the bottom
// (0.80 / 0.60 / 0.40 / 0.30), pre-buffer x1.5 (at most 3 s).
struct GpuConfig {
  Tier tier = Tier::kCpuOnly;
  Profile profile = Profile::kAuto;
  Backend backend = Backend::kCpu;  // where compute will run
  int parallel_streams = 0;         // 0..3: concurrent GPU work items
  std::uint64_t vram_limit_bytes = 0;
  double utilization_target = 0;  // 0..1
  double prebuffer_s = 3.0;
};
GpuConfig make_config(const std::optional<DeviceInfo>& device, Profile profile);

// Applies the JAMNET_GPU_* overrides; `getenv` is injectable for tests.
// An invalid value is an error naming the variable and what it accepts.
Result<GpuConfig> apply_env(GpuConfig c, const std::function<const char*(const char*)>& getenv);

// ------------------------------------------------------------ VRAM usage

// Accounting of the device memory this process allocates, against the
// configured limit. Thread-safe and lock-free.
class VramTracker {
 public:
  // pressure: under_pressure() once used >= limit * pressure_fraction.
  explicit VramTracker(std::uint64_t limit_bytes, double pressure_fraction = 0.9) noexcept;
  // False (and counted as refused) when it would exceed the limit.
  bool try_allocate(std::uint64_t bytes) noexcept;
  void release(std::uint64_t bytes) noexcept;  // clamps at 0
  std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::uint64_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
  std::uint64_t limit() const noexcept { return limit_; }
  std::uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }
  bool under_pressure() const noexcept;

 private:
  std::uint64_t limit_;
  std::uint64_t pressure_at_;
  std::atomic<std::uint64_t> used_{0}, peak_{0}, refused_{0};
};

// `jamnet gpu info --json`: the detection and the configuration as one object.
std::string to_json(const Detection& d, const GpuConfig& c);

}  // namespace jamnet::gpu
