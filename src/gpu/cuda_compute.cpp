// The CUDA compute backend (include/jamnet/gpu/compute.hpp): the kernels of
// src/gpu/cuda/kernels.cu behind the Compute interface.
//
// Always compiled: without nvcc at configure time (no JAMNET_HAVE_CUDA)
// make_cuda_compute() says so and make_compute() falls back. The CUDA runtime
// is linked statically and loads the driver (libcuda.so.1) itself when the
// backend is opened, so binaries run on machines with no driver or no GPU.
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "jamnet/gpu/compute.hpp"

#ifdef JAMNET_HAVE_CUDA
#include "cuda/cuda_api.h"
#endif

namespace jamnet::gpu {

#ifdef JAMNET_HAVE_CUDA
namespace {

struct CloseContext {
  void operator()(cuda::Context* c) const noexcept { cuda::close(c); }
};
using ContextPtr = std::unique_ptr<cuda::Context, CloseContext>;

class CudaCompute final : public Compute {
 public:
  explicit CudaCompute(ContextPtr ctx) : ctx_(std::move(ctx)) {
    const cuda::Info& i = cuda::info(ctx_.get());
    name_ = std::string(i.name) + " (sm_" + std::to_string(i.major) + std::to_string(i.minor) + ")";
  }
  Backend backend() const noexcept override { return Backend::kCuda; }
  std::string device_name() const override { return name_; }
  Result<void> noop() override { return done(cuda::noop(ctx_.get()), "noop"); }

 protected:
  Result<void> do_pnbtr(const PnbtrShape& s, const float* history, float* out) override {
    return done(cuda::pnbtr(ctx_.get(), s.streams, s.history, s.order, s.frames, history, out),
                "pnbtr");
  }
  Result<void> do_mix(const MixShape& s, const float* gains, const float* in, float* out) override {
    return done(cuda::mix(ctx_.get(), s.inputs, s.outputs, s.frames, gains, in, out), "mix");
  }
  Result<void> do_jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                        std::span<JsonlFields> out) override {
    return done(
        cuda::jsonl(ctx_.get(), blob.data(), blob.size(), offsets.data(), out.size(), out.data()),
        "jsonl");
  }

 private:
  Result<void> done(bool ok, const char* what) const {
    if (ok) return {};
    return std::unexpected(
        Error{Errc::kIo, std::string("cuda ") + what + ": " + cuda::last_error(ctx_.get())});
  }

  ContextPtr ctx_;
  std::string name_;
};

// The kernels' CUDA code run on the host (cuda_api.h host_*): for the tests.
class CudaHostEmulation final : public Compute {
 public:
  Backend backend() const noexcept override { return Backend::kCpu; }
  std::string device_name() const override { return "cuda kernels on the host (emulation)"; }
  Result<void> noop() override { return {}; }

 protected:
  Result<void> do_pnbtr(const PnbtrShape& s, const float* history, float* out) override {
    cuda::host_pnbtr(s.streams, s.history, s.order, s.frames, history, out);
    return {};
  }
  Result<void> do_mix(const MixShape& s, const float* gains, const float* in, float* out) override {
    cuda::host_mix(s.inputs, s.outputs, s.frames, gains, in, out);
    return {};
  }
  Result<void> do_jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                        std::span<JsonlFields> out) override {
    cuda::host_jsonl(blob.data(), blob.size(), offsets.data(), out.size(), out.data());
    return {};
  }
};

}  // namespace
#endif  // JAMNET_HAVE_CUDA

namespace {

bool cuda_disabled_by_env() noexcept {
  const char* v = std::getenv("JAMNET_DISABLE_CUDA");
  return v != nullptr && std::string_view(v) == "1";
}

}  // namespace

Result<std::unique_ptr<Compute>> make_cuda_compute() {
  if (cuda_disabled_by_env())
    return std::unexpected(Error{Errc::kUnsupported, "disabled by JAMNET_DISABLE_CUDA"});
#ifdef JAMNET_HAVE_CUDA
  char err[512] = {};
  ContextPtr ctx(cuda::open(0, err, sizeof err));
  if (!ctx) return std::unexpected(Error{Errc::kUnsupported, err[0] ? err : "CUDA: open failed"});
  return std::make_unique<CudaCompute>(std::move(ctx));
#else
  return std::unexpected(
      Error{Errc::kUnsupported, "built without CUDA (nvcc not found when configured)"});
#endif
}

// Test hook (declared by tests/gpu/cuda_compute_test.cpp, not in a header):
// the CUDA kernels' per-thread code run on the host, so that machines without
// a GPU check the port against the reference. Fails when built without CUDA.
Result<std::unique_ptr<Compute>> make_cuda_host_emulation() {
#ifdef JAMNET_HAVE_CUDA
  return std::make_unique<CudaHostEmulation>();
#else
  return std::unexpected(
      Error{Errc::kUnsupported, "built without CUDA (nvcc not found when configured)"});
#endif
}

}  // namespace jamnet::gpu
