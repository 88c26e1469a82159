// Backend-neutral compute: argument checks, the CPU backend and the choice of
// backend (include/jamnet/gpu/compute.hpp).
#include "jamnet/gpu/compute.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace jamnet::gpu {
namespace {

Result<void> size_error(const char* what, std::size_t got, std::size_t want) {
  return std::unexpected(Error{Errc::kInvalidArgument, std::string(what) + " holds " +
                                                           std::to_string(got) + " values, " +
                                                           std::to_string(want) + " expected"});
}

class CpuCompute final : public Compute {
 public:
  Backend backend() const noexcept override { return Backend::kCpu; }
  std::string device_name() const override { return "cpu (reference kernels, one thread)"; }
  Result<void> noop() override { return {}; }

 protected:
  Result<void> do_pnbtr(const PnbtrShape& s, const float* history, float* out) override {
    pnbtr_reference(s, history, out, 0, s.streams);
    return {};
  }
  Result<void> do_mix(const MixShape& s, const float* gains, const float* in, float* out) override {
    mix_reference(s, gains, in, out);
    return {};
  }
  Result<void> do_jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                        std::span<JsonlFields> out) override {
    jsonl_reference(blob, offsets, out);
    return {};
  }
};

}  // namespace

Result<void> Compute::pnbtr(const PnbtrShape& s, std::span<const float> history,
                            std::span<float> out) {
  if (auto v = validate(s); !v) return v;
  const std::size_t h = std::size_t(s.streams) * s.history, o = std::size_t(s.streams) * s.frames;
  if (history.size() != h) return size_error("pnbtr: history", history.size(), h);
  if (out.size() != o) return size_error("pnbtr: out", out.size(), o);
  if (s.streams == 0) return {};
  return do_pnbtr(s, history.data(), out.data());
}

Result<void> Compute::mix(const MixShape& s, std::span<const float> gains,
                          std::span<const float> in, std::span<float> out) {
  if (auto v = validate(s); !v) return v;
  const std::size_t g = std::size_t(s.outputs) * s.inputs, i = std::size_t(s.inputs) * s.frames,
                    o = std::size_t(s.outputs) * s.frames;
  if (gains.size() != g) return size_error("mix: gains", gains.size(), g);
  if (in.size() != i) return size_error("mix: in", in.size(), i);
  if (out.size() != o) return size_error("mix: out", out.size(), o);
  if (s.outputs == 0) return {};
  if (s.inputs == 0) {
    std::fill(out.begin(), out.end(), 0.0f);
    return {};
  }
  return do_mix(s, gains.data(), in.data(), out.data());
}

Result<void> Compute::jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                            std::span<JsonlFields> out) {
  if (offsets.empty()) return size_error("jsonl: offsets", 0, out.size() + 1);
  if (out.size() + 1 != offsets.size())
    return size_error("jsonl: offsets", offsets.size(), out.size() + 1);
  if (blob.size() >= (std::uint64_t{1} << 32))
    return std::unexpected(Error{Errc::kInvalidArgument, "jsonl: a batch must be under 4 GiB"});
  for (std::size_t k = 0; k + 1 < offsets.size(); ++k) {
    if (offsets[k] > offsets[k + 1] || offsets[k + 1] > blob.size())
      return std::unexpected(Error{Errc::kInvalidArgument,
                                   "jsonl: offsets must rise and stay within the blob (entry " +
                                       std::to_string(k + 1) + ")"});
  }
  if (out.empty()) return {};
  return do_jsonl(blob, offsets, out);
}

std::optional<Want> want_from(std::string_view s) noexcept {
  if (s == "auto") return Want::kAuto;
  if (s == "cpu") return Want::kCpu;
  if (s == "vulkan") return Want::kVulkan;
  if (s == "cuda") return Want::kCuda;
  return std::nullopt;
}

std::unique_ptr<Compute> make_cpu_compute() {
  return std::make_unique<CpuCompute>();
}

Result<std::unique_ptr<Compute>> make_compute(const ComputeOptions& o) {
  switch (o.want) {
    case Want::kCpu:
      return make_cpu_compute();
    case Want::kVulkan:
      return make_vulkan_compute(o.allow_cpu_device);
    case Want::kCuda:
      return make_cuda_compute();
    case Want::kAuto:
      break;
  }
  std::string why;
  auto cuda = make_cuda_compute();
  if (cuda) return cuda;
  why = "cuda: " + cuda.error().message;
  auto vk = make_vulkan_compute(o.allow_cpu_device);
  if (vk) {
    (*vk)->set_fallback_reason(why);
    return vk;
  }
  why += "; " + vk.error().message;  // says "vulkan: ..." itself
  auto cpu = make_cpu_compute();
  cpu->set_fallback_reason(why);
  return cpu;
}

Result<std::unique_ptr<Compute>> make_compute_from_env(bool allow_cpu_device) {
  ComputeOptions o;
  o.allow_cpu_device = allow_cpu_device;
  if (const char* v = std::getenv("JAMNET_COMPUTE"); v && *v) {
    auto w = want_from(v);
    if (!w)
      return std::unexpected(Error{Errc::kInvalidArgument,
                                   "JAMNET_COMPUTE must be auto, cpu, "
                                   "vulkan or cuda, got '" +
                                       std::string(v) + "'"});
    o.want = *w;
  }
  return make_compute(o);
}

double max_rel_err(std::span<const float> a, std::span<const float> b) noexcept {
  if (a.size() != b.size()) return INFINITY;
  double peak = 0, err = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (!(d <= err)) err = d;  // NaN counts
    peak = std::max(peak, std::abs(double(b[i])));
  }
  return err / std::max(peak, 1e-30);
}

}  // namespace jamnet::gpu
