// CUDA version of the batch kernels (include/jamnet/gpu/kernels.hpp) and the
// host API of cuda_api.h.
//
// The per-thread code is kernels_math.hpp, which the CPU reference
// (kernels_cpu.cpp) runs too: the __global__ wrappers here only map a thread
// to its stream, sample or line. Each operation there is rounded on its own
// (jamnet::hd: __dmul_rn, __dadd_rn, __ddiv_rn, __fmul_rn, __fadd_rn,
// __double2float_rn; -fmad=false for anything else), so a device returns the
// reference's bits. host_pnbtr/host_mix/host_jsonl run the same code through
// the wrappers' index mapping on the CPU, so that machines without a GPU (CI)
// still test the port.
#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdio>
#include <initializer_list>
#include <new>
#include <vector>

#include "../kernels_math.hpp"
#include "cuda_api.h"

namespace jamnet::gpu::cuda {
namespace {

// scratch: 2 x history x streams doubles (f, then b).
__host__ __device__ __forceinline__ void pnbtr_thread(std::size_t st, int streams, int history,
                                                      int order, int frames, const float* in,
                                                      float* out, double* scratch) {
  const std::size_t stride = std::size_t(streams);
  double* f = scratch + st;
  double* b = scratch + std::size_t(history) * stride + st;
  math::pnbtr_stream(in + st * std::size_t(history), history, order, frames,
                     out + st * std::size_t(frames), f, b, stride);
}

__global__ void pnbtr_kernel(int streams, int history, int order, int frames,
                             const float* __restrict__ in, float* __restrict__ out,
                             double* __restrict__ scratch) {
  const std::size_t st = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (st >= std::size_t(streams)) return;
  pnbtr_thread(st, streams, history, order, frames, in, out, scratch);
}

// -------------------------------------------------------------------- mix

__global__ void mix_kernel(int inputs, int outputs, int frames, const float* __restrict__ gains,
                           const float* __restrict__ in, float* __restrict__ out) {
  // outputs * frames <= 2^28 (validate): 32-bit index arithmetic.
  const unsigned idx = blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned nf = unsigned(frames);
  if (idx >= unsigned(outputs) * nf) return;
  math::mix_samples<1>(idx / nf, idx % nf, inputs, nf, gains, in, out + idx);
}

// ------------------------------------------------------------------ JSONL

__global__ void jsonl_kernel(const unsigned char* __restrict__ blob, std::uint64_t blob_size,
                             const std::uint32_t* __restrict__ offsets, std::uint64_t lines,
                             JsonlFields* __restrict__ out) {
  const std::uint64_t i = std::uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= lines) return;
  out[i] = math::jsonl_line(i, blob, blob_size, offsets);
}

__global__ void noop_kernel() {}

constexpr unsigned kPnbtrBlock = 64;  // small blocks: few streams still spread over the SMs
constexpr unsigned kBlock = 256;

unsigned blocks_for(std::uint64_t items, unsigned block) {
  return unsigned((items + block - 1) / block);
}

}  // namespace

// -------------------------------------------------------------- host API

struct Buffer {
  void* p = nullptr;
  std::size_t cap = 0;
};

struct Context {
  Info info{};
  cudaStream_t stream = nullptr;
  Buffer in, in2, out, scratch;
  char error[512] = {};
};

namespace {

void format(char* buf, std::size_t size, const char* fmt, ...) {
  if (size == 0) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

// Records a failed call in ctx->error; false when e is an error.
bool check(Context* ctx, cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  format(ctx->error, sizeof ctx->error, "%s: %s (%s)", what, cudaGetErrorName(e),
         cudaGetErrorString(e));
  return false;
}

// Grows b to at least `bytes` (by half again at least, so that slowly
// growing batches do not reallocate every call), keeping nothing.
bool reserve(Context* ctx, Buffer& b, std::size_t bytes, const char* what) {
  if (bytes == 0) bytes = 1;
  if (b.cap >= bytes) return true;
  if (bytes < b.cap + b.cap / 2) bytes = b.cap + b.cap / 2;
  if (b.p) {
    cudaFree(b.p);
    b.p = nullptr;
    b.cap = 0;
  }
  char label[96];
  format(label, sizeof label, "cudaMalloc(%zu bytes, %s)", bytes, what);
  if (!check(ctx, cudaMalloc(&b.p, bytes), label)) {
    b.p = nullptr;
    return false;
  }
  b.cap = bytes;
  return true;
}

bool upload(Context* ctx, void* dst, const void* src, std::size_t bytes, const char* what) {
  if (bytes == 0) return true;
  return check(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream), what);
}

// Launch check, copy back and wait.
bool finish(Context* ctx, const char* kernel, void* dst, const void* src, std::size_t bytes) {
  if (!check(ctx, cudaGetLastError(), kernel)) return false;
  if (bytes != 0 &&
      !check(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream),
             "cudaMemcpyAsync (device to host)"))
    return false;
  return check(ctx, cudaStreamSynchronize(ctx->stream), "cudaStreamSynchronize");
}

bool use_device(Context* ctx) {
  return check(ctx, cudaSetDevice(ctx->info.device), "cudaSetDevice");
}

}  // namespace

Context* open(int device, char* err, std::size_t err_size) noexcept {
  if (err && err_size) err[0] = 0;
  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  if (ce != cudaSuccess) {
    int driver = 0;
    cudaDriverGetVersion(&driver);
    cudaGetLastError();
    const char* name = cudaGetErrorName(ce);
    const char* text = cudaGetErrorString(ce);
    if (ce == cudaErrorInsufficientDriver && driver == 0)
      format(err, err_size, "no CUDA driver (%s: %s)", name, text);
    else if (ce == cudaErrorInsufficientDriver)
      format(err, err_size, "CUDA driver too old: driver %d.%d, built with CUDA %d.%d (%s: %s)",
             driver / 1000, driver % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10,
             name, text);
    else if (ce == cudaErrorNoDevice)
      format(err, err_size, "no CUDA device (%s: %s)", name, text);
    else
      format(err, err_size, "cudaGetDeviceCount failed (%s: %s)", name, text);
    return nullptr;
  }
  if (count == 0) {
    format(err, err_size, "no CUDA device");
    return nullptr;
  }
  if (device < 0 || device >= count) {
    format(err, err_size, "no CUDA device %d (%d found)", device, count);
    return nullptr;
  }
  auto* ctx = new (std::nothrow) Context;
  if (!ctx) {
    format(err, err_size, "out of host memory");
    return nullptr;
  }
  ctx->info.device = device;
  cudaDeviceProp prop{};
  bool ok = use_device(ctx) &&
            check(ctx, cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  if (ok) {
    std::snprintf(ctx->info.name, sizeof ctx->info.name, "%s", prop.name);
    ctx->info.major = prop.major;
    ctx->info.minor = prop.minor;
    ctx->info.multiprocessors = prop.multiProcessorCount;
    ctx->info.global_mem_bytes = prop.totalGlobalMem;
    cudaDriverGetVersion(&ctx->info.driver_version);
    cudaRuntimeGetVersion(&ctx->info.runtime_version);
    // No image of the kernels for this device (built for sm_80 and sm_90,
    // with PTX for newer ones): say so now rather than at the first launch.
    cudaFuncAttributes attr{};
    const cudaError_t fe = cudaFuncGetAttributes(&attr, pnbtr_kernel);
    if (fe != cudaSuccess) {
      char what[128];
      format(what, sizeof what, "kernels not built for %s (sm_%d%d)", ctx->info.name,
             ctx->info.major, ctx->info.minor);
      ok = check(ctx, fe, what);
    }
  }
  ok = ok && check(ctx, cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking),
                   "cudaStreamCreateWithFlags");
  ok = ok && noop(ctx);
  if (!ok) {
    format(err, err_size, "%s", ctx->error);
    close(ctx);
    return nullptr;
  }
  return ctx;
}

void close(Context* ctx) noexcept {
  if (!ctx) return;
  cudaSetDevice(ctx->info.device);
  for (Buffer* b : {&ctx->in, &ctx->in2, &ctx->out, &ctx->scratch})
    if (b->p) cudaFree(b->p);
  if (ctx->stream) cudaStreamDestroy(ctx->stream);
  cudaGetLastError();
  delete ctx;
}

const Info& info(const Context* ctx) noexcept {
  return ctx->info;
}

const char* last_error(const Context* ctx) noexcept {
  return ctx->error;
}

bool pnbtr(Context* ctx, int streams, int history, int order, int frames, const float* history_in,
           float* out) noexcept {
  const std::size_t in_bytes = std::size_t(streams) * history * sizeof(float);
  const std::size_t out_bytes = std::size_t(streams) * frames * sizeof(float);
  if (!use_device(ctx) || !reserve(ctx, ctx->in, in_bytes, "pnbtr history") ||
      !reserve(ctx, ctx->out, out_bytes, "pnbtr out") ||
      !reserve(ctx, ctx->scratch, 2 * std::size_t(streams) * history * sizeof(double),
               "pnbtr scratch") ||
      !upload(ctx, ctx->in.p, history_in, in_bytes, "cudaMemcpyAsync (pnbtr history)"))
    return false;
  pnbtr_kernel<<<blocks_for(streams, kPnbtrBlock), kPnbtrBlock, 0, ctx->stream>>>(
      streams, history, order, frames, static_cast<const float*>(ctx->in.p),
      static_cast<float*>(ctx->out.p), static_cast<double*>(ctx->scratch.p));
  return finish(ctx, "pnbtr_kernel launch", out, ctx->out.p, out_bytes);
}

bool mix(Context* ctx, int inputs, int outputs, int frames, const float* gains, const float* in,
         float* out) noexcept {
  const std::size_t g_bytes = std::size_t(outputs) * inputs * sizeof(float);
  const std::size_t in_bytes = std::size_t(inputs) * frames * sizeof(float);
  const std::size_t out_bytes = std::size_t(outputs) * frames * sizeof(float);
  if (!use_device(ctx) || !reserve(ctx, ctx->in, in_bytes, "mix in") ||
      !reserve(ctx, ctx->in2, g_bytes, "mix gains") ||
      !reserve(ctx, ctx->out, out_bytes, "mix out") ||
      !upload(ctx, ctx->in.p, in, in_bytes, "cudaMemcpyAsync (mix in)") ||
      !upload(ctx, ctx->in2.p, gains, g_bytes, "cudaMemcpyAsync (mix gains)"))
    return false;
  const std::uint64_t items = std::uint64_t(outputs) * frames;
  mix_kernel<<<blocks_for(items, kBlock), kBlock, 0, ctx->stream>>>(
      inputs, outputs, frames, static_cast<const float*>(ctx->in2.p),
      static_cast<const float*>(ctx->in.p), static_cast<float*>(ctx->out.p));
  return finish(ctx, "mix_kernel launch", out, ctx->out.p, out_bytes);
}

bool jsonl(Context* ctx, const char* blob, std::uint64_t blob_size, const std::uint32_t* offsets,
           std::uint64_t lines, JsonlFields* out) noexcept {
  const std::size_t off_bytes = std::size_t(lines + 1) * sizeof(std::uint32_t);
  const std::size_t out_bytes = std::size_t(lines) * sizeof(JsonlFields);
  if (!use_device(ctx) || !reserve(ctx, ctx->in, blob_size, "jsonl blob") ||
      !reserve(ctx, ctx->in2, off_bytes, "jsonl offsets") ||
      !reserve(ctx, ctx->out, out_bytes, "jsonl out") ||
      !upload(ctx, ctx->in.p, blob, blob_size, "cudaMemcpyAsync (jsonl blob)") ||
      !upload(ctx, ctx->in2.p, offsets, off_bytes, "cudaMemcpyAsync (jsonl offsets)"))
    return false;
  jsonl_kernel<<<blocks_for(lines, kBlock), kBlock, 0, ctx->stream>>>(
      static_cast<const unsigned char*>(ctx->in.p), blob_size,
      static_cast<const std::uint32_t*>(ctx->in2.p), lines, static_cast<JsonlFields*>(ctx->out.p));
  return finish(ctx, "jsonl_kernel launch", out, ctx->out.p, out_bytes);
}

bool noop(Context* ctx) noexcept {
  if (!use_device(ctx)) return false;
  noop_kernel<<<1, 1, 0, ctx->stream>>>();
  return finish(ctx, "noop_kernel launch", nullptr, nullptr, 0);
}

// ------------------------------------------------------- host emulation

void host_pnbtr(int streams, int history, int order, int frames, const float* history_in,
                float* out) {
  std::vector<double> scratch(2 * std::size_t(streams) * history);
  for (int st = 0; st < streams; ++st)
    pnbtr_thread(st, streams, history, order, frames, history_in, out, scratch.data());
}

void host_mix(int inputs, int outputs, int frames, const float* gains, const float* in,
              float* out) noexcept {
  const std::size_t nf = std::size_t(frames);
  for (std::size_t idx = 0; idx < std::size_t(outputs) * nf; ++idx)
    math::mix_samples<1>(idx / nf, idx % nf, inputs, nf, gains, in, out + idx);
}

void host_jsonl(const char* blob, std::uint64_t blob_size, const std::uint32_t* offsets,
                std::uint64_t lines, JsonlFields* out) noexcept {
  for (std::uint64_t i = 0; i < lines; ++i)
    out[i] = math::jsonl_line(i, reinterpret_cast<const unsigned char*>(blob), blob_size, offsets);
}

}  // namespace jamnet::gpu::cuda
