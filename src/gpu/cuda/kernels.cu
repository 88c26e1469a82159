// CUDA version of the batch kernels (include/jamnet/gpu/kernels.hpp) and the
// host API of cuda_api.h.
//
// src/gpu/kernels_cpu.cpp is the reference: every kernel here does the same
// operations in the same order and precision (PNBTR in double with float in
// and out, mix in float), each rounded on its own: __dmul_rn, __dadd_rn,
// __ddiv_rn, __fmul_rn, __fadd_rn, __double2float_rn, and -fmad=false for
// anything else. So a device returns the reference's bits. Keep the three
// versions (C++, GLSL, CUDA) in step when changing any of them.
//
// The per-thread code is __host__ __device__: host_pnbtr/host_mix/host_jsonl
// run it on the CPU so that machines without a GPU (CI) still test the port.
#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdio>
#include <initializer_list>
#include <new>
#include <vector>

#include "cuda_api.h"

namespace jamnet::gpu::cuda {
namespace {

// ------------------------------------------------------ rounded float ops

__host__ __device__ __forceinline__ float rmul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ __forceinline__ float radd(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ __forceinline__ double rmul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ __forceinline__ double radd(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ __forceinline__ double rdiv(double a, double b) {
#ifdef __CUDA_ARCH__
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
__host__ __device__ __forceinline__ float to_float(double d) {
#ifdef __CUDA_ARCH__
  return __double2float_rn(d);
#else
  return static_cast<float>(d);
#endif
}

// ------------------------------------------------------------------ PNBTR

// One stream (pnbtr_one of the reference: the fit and the continuation in
// double, float in and out). x: the stream's history (n samples); out: its
// `frames` outputs. f and b: the Burg scratch, element t at f[t * stride]
// (stride = streams: neighbouring threads touch neighbouring words).
__host__ __device__ void pnbtr_stream(const float* x, int n, int order, int frames, float* out,
                                      double* f, double* b, std::size_t stride) {
  double a[kMaxOrder + 1];
  double tmp[kMaxOrder + 1];
  a[0] = 1.0;
  for (int i = 1; i <= kMaxOrder; ++i) a[i] = 0.0;
  double num = 0.0, den = 0.0;
  for (int t = 1; t < n; ++t) {
    const double ft = x[t];
    const double bt = x[t - 1];
    f[t * stride] = ft;
    b[t * stride] = bt;
    const double fb = rmul(ft, bt);
    num = radd(num, fb);
    const double ff = rmul(ft, ft);
    const double bb = rmul(bt, bt);
    const double e = radd(ff, bb);
    den = radd(den, e);
  }
  for (int m = 0; m < order && m + 2 < n; ++m) {
    if (!(den > kMinPower)) break;
    const double dn = rmul(den, kFloorScale);
    const double k = rdiv(rmul(-2.0, num), dn);
    for (int i = 0; i <= m + 1; ++i) {
      const double ka = rmul(k, a[m + 1 - i]);
      tmp[i] = radd(a[i], ka);
    }
    for (int i = 0; i <= m + 1; ++i) a[i] = tmp[i];
    num = 0.0;
    den = 0.0;
    // In place, newest first: f[t-1] and b[t-1] are still this stage's.
    for (int t = n - 1; t >= m + 2; --t) {
      const std::size_t ti = t * stride, pi = (t - 1) * stride;
      const double kb = rmul(k, b[ti]);
      const double fa = radd(f[ti], kb);
      const double kf = rmul(k, f[pi]);
      const double ba = radd(b[pi], kf);
      f[ti] = fa;
      b[ti] = ba;
      const double fb = rmul(fa, ba);
      num = radd(num, fb);
      const double ff = rmul(fa, fa);
      const double bb = rmul(ba, ba);
      const double e = radd(ff, bb);
      den = radd(den, e);
    }
  }
  // The continuation: w[j - 1] holds y(t - j), the history's newest samples
  // first, then the predictions (clamped to full scale, kept in double).
  double w[kMaxOrder];
  for (int j = 1; j <= order; ++j) w[j - 1] = x[n - j];
  for (int i = 0; i < frames; ++i) {
    double s = 0.0;
    for (int j = 1; j <= order; ++j) {
      const double p = rmul(a[j], w[j - 1]);
      s = radd(s, p);
    }
    double y = -s;
    if (!(y <= 1.0 && y >= -1.0)) y = (y > 1.0) ? 1.0 : ((y < -1.0) ? -1.0 : 0.0);
    for (int j = order - 1; j >= 1; --j) w[j] = w[j - 1];
    w[0] = y;
    out[i] = to_float(y);
  }
}

// scratch: 2 x history x streams doubles (f, then b).
__host__ __device__ __forceinline__ void pnbtr_thread(std::size_t st, int streams, int history,
                                                      int order, int frames, const float* in,
                                                      float* out, double* scratch) {
  const std::size_t stride = std::size_t(streams);
  double* f = scratch + st;
  double* b = scratch + std::size_t(history) * stride + st;
  pnbtr_stream(in + st * std::size_t(history), history, order, frames,
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

// out[o][f]: gains[o][i] * in[i][f] summed over i ascending from 0.0f.
__host__ __device__ __forceinline__ float mix_sample(std::size_t o, std::size_t f, int inputs,
                                                     std::size_t frames, const float* gains,
                                                     const float* in) {
  const float* g = gains + o * std::size_t(inputs);
  float s = 0.0f;
  for (int i = 0; i < inputs; ++i) {
    const float p = rmul(g[i], in[std::size_t(i) * frames + f]);
    s = radd(s, p);
  }
  return s;
}

__global__ void mix_kernel(int inputs, int outputs, int frames, const float* __restrict__ gains,
                           const float* __restrict__ in, float* __restrict__ out) {
  // outputs * frames <= 2^28 (validate): 32-bit index arithmetic.
  const unsigned idx = blockIdx.x * blockDim.x + threadIdx.x;
  const unsigned nf = unsigned(frames);
  if (idx >= unsigned(outputs) * nf) return;
  out[idx] = mix_sample(idx / nf, idx % nf, inputs, nf, gains, in);
}

// ------------------------------------------------------------------ JSONL
// jsonl_extract_line of the reference, integer for integer.

__host__ __device__ constexpr std::uint64_t tag(const char* s) {
  std::uint64_t v = 0;
  for (int i = 0; s[i] != 0; ++i) v |= std::uint64_t(static_cast<unsigned char>(s[i])) << (8 * i);
  return v;
}
constexpr int kKinds = 18;
constexpr int kSysExKind = 17;
constexpr std::uint64_t kTagT = tag("t"), kTagC = tag("c"), kTagN = tag("n"), kTagV = tag("v"),
                        kTagTs = tag("ts"), kTagSeq = tag("seq");
constexpr unsigned kT = 1, kC = 2, kN = 4, kV = 8, kTs = 16, kSeq = 32;

// jmid::Kind of a packed type name, or -1.
__host__ __device__ __forceinline__ int kind_of(std::uint64_t name) {
  constexpr std::uint64_t tags[kKinds] = {
      tag("n+"),    tag("n-"),   tag("pp"),   tag("cc"), tag("pc"),  tag("cp"),
      tag("pb"),    tag("mtc"),  tag("spp"),  tag("ss"), tag("tr"),  tag("clk"),
      tag("start"), tag("cont"), tag("stop"), tag("as"), tag("rst"), tag("sx")};
  int kind = -1;
#pragma unroll
  for (int k = 0; k < kKinds; ++k) {
    if (tags[k] == name) kind = k;
  }
  return kind;
}

// The reference's kShape table:
// 0 c,n,v  1 c,v  2 c,v(bend)  3 v(0..127)  4 v(0..16383)  5 none  6 sysex
__host__ __device__ __forceinline__ int shape_of(int kind) {
  if (kind <= 3) return 0;
  if (kind <= 5) return 1;
  if (kind == 6) return 2;
  if (kind == 7 || kind == 9) return 3;
  if (kind == 8) return 4;
  if (kind <= 16) return 5;
  return 6;
}

struct Scan {
  const unsigned char* p;
  std::uint32_t len;
  std::uint32_t pos;
  __host__ __device__ bool ok() const { return pos < len; }
  __host__ __device__ unsigned at() const { return pos < len ? p[pos] : 0u; }
};

__host__ __device__ __forceinline__ bool is_digit(unsigned c) {
  return c >= '0' && c <= '9';
}

// A JSON integer of at most `max_digits` digits that fits in 64 bits;
// `allow_minus` for signed keys. "-0" and leading zeros are refused.
__host__ __device__ bool read_int(Scan& s, int max_digits, bool allow_minus, bool& negative,
                                  std::uint64_t& magnitude) {
  negative = false;
  if (allow_minus && s.at() == '-') {
    negative = true;
    ++s.pos;
  }
  magnitude = 0;
  int digits = 0;
  const std::uint32_t start = s.pos;
  while (is_digit(s.at())) {
    const unsigned d = s.at() - '0';
    if (digits == max_digits || magnitude > (~std::uint64_t{0} - d) / 10) return false;
    magnitude = magnitude * 10 + d;
    ++digits;
    ++s.pos;
  }
  if (digits == 0) return false;
  if (digits > 1 && s.p[start] == '0') return false;
  if (negative && magnitude == 0) return false;
  return true;
}

__host__ __device__ JsonlOut extract_line(const unsigned char* line, std::uint32_t size) {
  JsonlOut r{};
  r.status = kJsonlFallback;
  if (size < 2 || size > kJsonlMaxLine) return r;
  Scan s{line, size, 1};
  if (s.p[0] != '{' || s.p[s.len - 1] != '}') return r;
  unsigned seen = 0;
  int kind = -1;
  std::int64_t c = 0, n = 0, v = 0;
  std::uint64_t ts = 0, seq = 0;
  for (;;) {
    if (s.at() != '"') return r;
    ++s.pos;
    std::uint64_t key = 0;
    int klen = 0;
    while (s.ok() && s.at() != '"') {
      // A NUL would vanish from the packed key: refuse control characters.
      if (klen == 3 || s.at() < 0x20 || s.at() == '\\' || s.at() >= 0x80) return r;
      key |= std::uint64_t{s.at()} << (8 * klen);
      ++klen;
      ++s.pos;
    }
    if (s.at() != '"') return r;
    ++s.pos;
    if (s.at() != ':') return r;
    ++s.pos;
    unsigned bit = 0;
    if (key == kTagT) {
      bit = kT;
      if (s.at() != '"') return r;
      ++s.pos;
      std::uint64_t name = 0;
      int nlen = 0;
      while (s.ok() && s.at() != '"') {
        const unsigned ch = s.at();
        if (nlen == 5 || ch < 0x20 || ch == '\\' || ch >= 0x80) return r;
        name |= std::uint64_t{ch} << (8 * nlen);
        ++nlen;
        ++s.pos;
      }
      if (s.at() != '"' || nlen == 0) return r;
      ++s.pos;
      kind = kind_of(name);
      if (kind < 0 || kind == kSysExKind) return r;
    } else if (key == kTagC || key == kTagN || key == kTagV) {
      bit = key == kTagC ? kC : (key == kTagN ? kN : kV);
      bool neg = false;
      std::uint64_t mag = 0;
      if (!read_int(s, 9, true, neg, mag)) return r;
      const std::int64_t val = neg ? -std::int64_t(mag) : std::int64_t(mag);
      if (bit == kC)
        c = val;
      else if (bit == kN)
        n = val;
      else
        v = val;
    } else if (key == kTagTs) {
      bit = kTs;
      bool neg = false;
      std::uint64_t mag = 0;
      if (!read_int(s, 19, true, neg, mag)) return r;
      if (mag > (neg ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1)) return r;
      ts = neg ? std::uint64_t(0) - mag : mag;
    } else if (key == kTagSeq) {
      bit = kSeq;
      bool neg = false;
      if (!read_int(s, 20, false, neg, seq)) return r;
    } else {
      return r;
    }
    if (seen & bit) return r;
    seen |= bit;
    if (s.at() == ',') {
      ++s.pos;
      continue;
    }
    if (s.at() == '}' && s.pos == s.len - 1) break;
    return r;
  }
  if (!(seen & kT)) return r;
  const int shape = shape_of(kind);
  const bool chan = shape <= 2;
  if (chan && (!(seen & kC) || c < 1 || c > 16)) return r;
  if (shape == 0 && (!(seen & kN) || n < 0 || n > 127)) return r;
  if (shape <= 4) {
    const std::int64_t lo = shape == 2 ? -8192 : 0;
    const std::int64_t hi = shape == 2 ? 8191 : (shape == 4 ? 16383 : 127);
    if (!(seen & kV) || v < lo || v > hi) return r;
  }
  r.kind = std::uint32_t(kind);
  if (chan) r.channel = std::uint32_t(c - 1);
  if (shape == 0) {
    r.data1 = std::uint32_t(n);
    r.data2 = std::uint32_t(v);
  } else if (shape == 1 || shape == 3) {
    r.data1 = std::uint32_t(v);
  } else if (shape == 2 || shape == 4) {
    r.value14 = std::int32_t(v);
  }
  r.ts_lo = std::uint32_t(ts);
  r.ts_hi = std::uint32_t(ts >> 32);
  r.seq_lo = std::uint32_t(seq);
  r.seq_hi = std::uint32_t(seq >> 32);
  r.status = kJsonlOk;
  return r;
}

// Line i of the batch (jsonl_reference's loop body).
__host__ __device__ __forceinline__ JsonlOut jsonl_line(std::uint64_t i, const unsigned char* blob,
                                                        std::uint64_t blob_size,
                                                        const std::uint32_t* offsets) {
  std::uint32_t a = offsets[i], e = offsets[i + 1];
  if (e > blob_size || a > e) {
    JsonlOut r{};
    r.status = kJsonlFallback;
    return r;
  }
  if (e > a && blob[e - 1] == '\n') --e;
  return extract_line(blob + a, e - a);
}

__global__ void jsonl_kernel(const unsigned char* __restrict__ blob, std::uint64_t blob_size,
                             const std::uint32_t* __restrict__ offsets, std::uint64_t lines,
                             JsonlOut* __restrict__ out) {
  const std::uint64_t i = std::uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= lines) return;
  out[i] = jsonl_line(i, blob, blob_size, offsets);
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
           std::uint64_t lines, JsonlOut* out) noexcept {
  const std::size_t off_bytes = std::size_t(lines + 1) * sizeof(std::uint32_t);
  const std::size_t out_bytes = std::size_t(lines) * sizeof(JsonlOut);
  if (!use_device(ctx) || !reserve(ctx, ctx->in, blob_size, "jsonl blob") ||
      !reserve(ctx, ctx->in2, off_bytes, "jsonl offsets") ||
      !reserve(ctx, ctx->out, out_bytes, "jsonl out") ||
      !upload(ctx, ctx->in.p, blob, blob_size, "cudaMemcpyAsync (jsonl blob)") ||
      !upload(ctx, ctx->in2.p, offsets, off_bytes, "cudaMemcpyAsync (jsonl offsets)"))
    return false;
  jsonl_kernel<<<blocks_for(lines, kBlock), kBlock, 0, ctx->stream>>>(
      static_cast<const unsigned char*>(ctx->in.p), blob_size,
      static_cast<const std::uint32_t*>(ctx->in2.p), lines, static_cast<JsonlOut*>(ctx->out.p));
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
    out[idx] = mix_sample(idx / nf, idx % nf, inputs, nf, gains, in);
}

void host_jsonl(const char* blob, std::uint64_t blob_size, const std::uint32_t* offsets,
                std::uint64_t lines, JsonlOut* out) noexcept {
  for (std::uint64_t i = 0; i < lines; ++i)
    out[i] = jsonl_line(i, reinterpret_cast<const unsigned char*>(blob), blob_size, offsets);
}

}  // namespace jamnet::gpu::cuda
