// The kernels' limits and result layout (kernels.hpp), in plain C++17 so
// that nvcc can include them too: src/gpu/kernels_math.hpp (the per-thread
// code the CPU reference and the CUDA kernels share) and src/gpu/cuda/
// use these, not copies.
#pragma once

#include <cstdint>

namespace jamnet::gpu {

// ------------------------------------------------------------------ PNBTR

inline constexpr int kPnbtrMaxOrder = 32;
inline constexpr int kPnbtrMaxHistory = 1024;
inline constexpr int kPnbtrMaxFrames = 4096;
// The fit and the continuation run in double (float I/O): in float, the
// direct-form coefficients of an order-32 fit are too coarse and a two-tone
// continuation lost 30-60 dB of SNR. White-noise floor of the Burg fit: each
// stage divides by den * kPnbtrFloorScale, which keeps |k| < 1.
inline constexpr double kPnbtrFloorScale = 1.00001;
// A stage whose error power is below this ends the fit (silence).
inline constexpr double kPnbtrMinPower = 1e-30;

// ------------------------------------------------------------------ JSONL

// One extracted JMID line, ten 32-bit words (the GPU's layout).
struct JsonlFields {
  std::uint32_t status = 0;  // kJsonlOk, or kJsonlFallback: give the line to jmid::parse_line
  std::uint32_t kind = 0;    // jmid::Kind
  std::uint32_t channel = 0, data1 = 0, data2 = 0;
  std::int32_t value14 = 0;
  std::uint32_t ts_lo = 0, ts_hi = 0, seq_lo = 0, seq_hi = 0;
  std::int64_t ts_ns() const noexcept {
    return static_cast<std::int64_t>(std::uint64_t{ts_hi} << 32 | ts_lo);
  }
  std::uint64_t seq() const noexcept { return std::uint64_t{seq_hi} << 32 | seq_lo; }
};
static_assert(sizeof(JsonlFields) == 40);
inline constexpr std::uint32_t kJsonlOk = 0;
inline constexpr std::uint32_t kJsonlFallback = 1;
// Longest line the kernels read; longer lines fall back.
inline constexpr std::uint32_t kJsonlMaxLine = 256;

}  // namespace jamnet::gpu
