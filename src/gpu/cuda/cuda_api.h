// Host API of the CUDA kernels (kernels.cu), used by the C++ glue
// (src/gpu/cuda_compute.cpp). Plain C++17 with no CUDA types: kernels.cu is
// compiled by nvcc in C++17 and the glue by the C++23 compiler, and this
// (with gpu/kernel_types.hpp) is all they share. Exists only in builds with JAMNET_HAVE_CUDA.
//
// A Context is device 0 (or the one asked for), one stream and device buffers
// that grow on demand and are reused between calls. Each call copies its
// inputs to the device, launches one kernel, copies the outputs back and
// waits. Calls on one Context must not overlap (Compute is used by one thread
// at a time).
#pragma once

#include <cstddef>
#include <cstdint>

#include "jamnet/gpu/kernel_types.hpp"

namespace jamnet::gpu::cuda {

struct Info {
  char name[256];    // "NVIDIA H100 80GB HBM3"
  int device;        // ordinal
  int major, minor;  // compute capability
  int multiprocessors;
  int driver_version;   // cudaDriverGetVersion, e.g. 13000
  int runtime_version;  // cudaRuntimeGetVersion
  std::uint64_t global_mem_bytes;
};

struct Context;

// Opens `device`: checks that a driver and the device are there and that the
// kernels were built for it, creates the stream and runs one empty kernel.
// Returns nullptr with the reason in err (NUL-terminated, err_size bytes):
// "no CUDA driver (cudaErrorInsufficientDriver: ...)", "no CUDA device", ...
Context* open(int device, char* err, std::size_t err_size) noexcept;
// Frees the buffers and the stream; errors (for instance at process exit,
// after the runtime has shut down) are ignored. Accepts nullptr.
void close(Context* ctx) noexcept;
const Info& info(const Context* ctx) noexcept;

// Each returns false on a CUDA error, with the failing call and the error in
// last_error(ctx). Sizes follow kernels.hpp; arguments are not validated
// again (the Compute base class has done it).
//
// history: streams x history floats; out: streams x frames.
bool pnbtr(Context* ctx, int streams, int history, int order, int frames, const float* history_in,
           float* out) noexcept;
// gains: outputs x inputs; in: inputs x frames; out: outputs x frames (inputs >= 1).
bool mix(Context* ctx, int inputs, int outputs, int frames, const float* gains, const float* in,
         float* out) noexcept;
// offsets: lines + 1 entries into blob (blob_size bytes, under 4 GiB);
// out: `lines` entries (lines >= 1).
bool jsonl(Context* ctx, const char* blob, std::uint64_t blob_size, const std::uint32_t* offsets,
           std::uint64_t lines, JsonlFields* out) noexcept;
// One empty kernel, waited for.
bool noop(Context* ctx) noexcept;
const char* last_error(const Context* ctx) noexcept;

// The kernels' per-thread code run on the host, one thread after another
// (pnbtr with the same interleaved scratch layout): lets machines without a
// GPU test the port's logic and operation order against the reference. The
// host does each operation in IEEE float or double with no contraction, as
// the device does with __fmul_rn/__fadd_rn and __dmul_rn/__dadd_rn/__ddiv_rn.
// host_pnbtr allocates its scratch (std::bad_alloc).
void host_pnbtr(int streams, int history, int order, int frames, const float* history_in,
                float* out);
void host_mix(int inputs, int outputs, int frames, const float* gains, const float* in,
              float* out) noexcept;
void host_jsonl(const char* blob, std::uint64_t blob_size, const std::uint32_t* offsets,
                std::uint64_t lines, JsonlFields* out) noexcept;

}  // namespace jamnet::gpu::cuda
