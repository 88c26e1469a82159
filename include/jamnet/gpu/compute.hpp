// Backend-neutral batch compute (docs/gpu.md): a caller asks for PNBTR over a
// set of streams, a mix, or JMID line extraction, and gets the CPU, Vulkan or
// CUDA implementation by configuration and availability. All three run the
// kernels of kernels.hpp and return the same numbers (bit-exact on IEEE
// hardware; the tests allow 1e-6 of the peak).
//
// A Compute object is used by one thread at a time, and never by the audio
// thread: GPU calls block until the device is done, and buffers grow on
// demand. Each call copies its inputs into the backend's mapped (host-visible,
// coherent) buffers, dispatches once, waits, and copies the outputs back.
//
// Environment: JAMNET_COMPUTE = auto | cpu | vulkan | cuda picks the backend
// (make_compute_from_env); JAMNET_DISABLE_VULKAN / JAMNET_DISABLE_CUDA = 1 and
// JAMNET_VULKAN_LOADER act as in device.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/gpu/device.hpp"
#include "jamnet/gpu/kernels.hpp"

namespace jamnet::gpu {

// One reading of a device's own timestamp counter paired with
// CLOCK_MONOTONIC (VK_EXT_calibrated_timestamps): counter ticks, monotonic
// ns, and the pair's maximum deviation in ns. sync::make_gpu_clock turns a
// Compute's readings into a sync::GpuClock.
struct DeviceClockSample {
  std::uint64_t ticks = 0;
  Nanos mono = 0;
  Nanos max_deviation_ns = 0;
};

class Compute {
 public:
  virtual ~Compute() = default;
  virtual Backend backend() const noexcept = 0;
  // "cpu (reference)", "llvmpipe (LLVM 15.0.6, 256 bits)", "NVIDIA H100 ..."
  virtual std::string device_name() const = 0;

  // history: s.streams * s.history samples; out: s.streams * s.frames.
  Result<void> pnbtr(const PnbtrShape& s, std::span<const float> history, std::span<float> out);
  // gains: outputs * inputs; in: inputs * frames; out: outputs * frames.
  Result<void> mix(const MixShape& s, std::span<const float> gains, std::span<const float> in,
                   std::span<float> out);
  // offsets from split_lines(blob); out: offsets.size() - 1 entries.
  Result<void> jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                     std::span<JsonlFields> out);
  // One empty dispatch, waited for: the fixed cost of a call.
  virtual Result<void> noop() = 0;

  // The device's own clock read together with CLOCK_MONOTONIC, when the
  // backend has one (clock_tick_ns() > 0: ns per counter tick).
  virtual std::optional<DeviceClockSample> sample_clock() { return std::nullopt; }
  virtual double clock_tick_ns() const noexcept { return 0; }

  // Why make_compute chose this backend when asked for "auto" (empty otherwise).
  const std::string& fallback_reason() const noexcept { return fallback_reason_; }
  void set_fallback_reason(std::string r) { fallback_reason_ = std::move(r); }

 protected:
  virtual Result<void> do_pnbtr(const PnbtrShape& s, const float* history, float* out) = 0;
  virtual Result<void> do_mix(const MixShape& s, const float* gains, const float* in,
                              float* out) = 0;
  virtual Result<void> do_jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                                std::span<JsonlFields> out) = 0;

 private:
  std::string fallback_reason_;
};

enum class Want : std::uint8_t { kAuto, kCpu, kVulkan, kCuda };
std::optional<Want> want_from(std::string_view s) noexcept;  // "auto", "cpu", "vulkan", "cuda"

struct ComputeOptions {
  Want want = Want::kAuto;
  // Accept a CPU-type Vulkan device (lavapipe). "auto" never picks one (it is
  // slower than the CPU backend); tests and benchmarks ask for it.
  bool allow_cpu_device = false;
};

// The CPU backend (the reference kernels on the calling thread). Never fails.
std::unique_ptr<Compute> make_cpu_compute();
// Vulkan: the first device with a compute queue, GPUs before CPU-type ones
// (only with allow_cpu_device). Fails with the reason (no loader, no device,
// shaders not built ...).
Result<std::unique_ptr<Compute>> make_vulkan_compute(bool allow_cpu_device);
// CUDA: device 0. Fails when built without nvcc, or no driver, or no device.
Result<std::unique_ptr<Compute>> make_cuda_compute();
// kAuto: CUDA, else a Vulkan GPU, else the CPU, with fallback_reason() saying
// why each was passed over. An explicit backend that cannot start is an error.
Result<std::unique_ptr<Compute>> make_compute(const ComputeOptions& o);
// make_compute with JAMNET_COMPUTE; an invalid value is an error naming it.
Result<std::unique_ptr<Compute>> make_compute_from_env(bool allow_cpu_device = false);

// max |a - b| / max(max |b|, tiny) over the whole span: the error measure of
// the tests and the benchmark.
double max_rel_err(std::span<const float> a, std::span<const float> b) noexcept;

}  // namespace jamnet::gpu
