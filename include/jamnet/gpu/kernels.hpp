// The batch kernels every compute backend runs (docs/gpu.md), and their CPU
// reference.
//
// Each kernel is written twice: in C++ (src/gpu/kernels_math.hpp, the
// per-thread code that the CPU reference here loops over and the CUDA
// kernels, src/gpu/cuda/kernels.cu, launch) and in GLSL (shaders/gpu/*.comp,
// the Vulkan backend). Both do the same float operations in the same order
// with no fused multiply-add, so a backend with IEEE arithmetic (lavapipe,
// CUDA with -fmad=false) matches the reference bit for bit; a driver with
// looser division matches within the relative error the tests allow (1e-6
// of the block's peak).
//
//   pnbtr  PNBTR for many streams at once: per stream, a Burg LPC fit of the
//          newest `history` samples and `frames` predicted samples that
//          continue them. One stream per invocation.
//   mix    N inputs into M outputs through an M x N gain matrix (hub monitor
//          mixes). One output sample per invocation.
//   jsonl  JMID line field extraction: one line per invocation, the compact
//          form only; anything else is marked for the CPU parser.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/gpu/kernel_types.hpp"

namespace jamnet::gpu {

// ------------------------------------------------------------------ PNBTR

struct PnbtrShape {
  int streams = 0;
  int history = 256;  // samples per stream, oldest first
  int order = 32;     // LPC order, 1..kPnbtrMaxOrder
  int frames = 128;   // samples predicted per stream
};
// order in 1..32, history in order+2..1024, frames in 1..4096, streams >= 0.
Result<void> validate(const PnbtrShape& s);

// history: streams x history; out: streams x frames (row per stream).
// Predicts streams [first, last). Real-time safe (16 KiB of scratch on the stack).
void pnbtr_reference(const PnbtrShape& s, const float* history, float* out, int first,
                     int last) noexcept;

// -------------------------------------------------------------------- mix

struct MixShape {
  int inputs = 0;   // N
  int outputs = 0;  // M
  int frames = 128;
};
Result<void> validate(const MixShape& s);

// gains: outputs x inputs (row per output); in: inputs x frames;
// out: outputs x frames. out[o][f] = sum over i ascending of gains[o][i] * in[i][f].
void mix_reference(const MixShape& s, const float* gains, const float* in, float* out) noexcept;

// ------------------------------------------------------------------ JSONL

// A line is extracted (kJsonlOk) only when it is a flat object with no
// whitespace whose keys are among t, c, n, v, ts, seq (each at most once), t
// a known non-SysEx type, the integers plain JSON integers (no leading zero,
// no "-0") that fit, and the keys and ranges that type needs present and
// valid; then the fields equal what jmid::parse_line returns. Everything else
// is kJsonlFallback (SysEx, whitespace, errors): the CPU parser decides and
// says why.
//
// blob holds the lines; line i is blob[offsets[i], offsets[i+1]) without its
// newline (split_lines builds offsets). out.size() + 1 == offsets.size().
void jsonl_reference(std::string_view blob, std::span<const std::uint32_t> offsets,
                     std::span<JsonlFields> out) noexcept;

// Offsets of the lines of a newline-separated blob: n + 1 entries for n lines
// (a final line without newline counts; a trailing newline does not start
// one). Offsets point at the first byte of each line; the newline itself is
// excluded by the kernels (a line ends at the next offset minus its '\n').
// Fails when the blob is 4 GiB or more.
Result<std::vector<std::uint32_t>> split_lines(std::string_view blob);

// The same rule for one line, for tests and the fuzzer.
JsonlFields jsonl_extract_line(std::string_view line) noexcept;

}  // namespace jamnet::gpu
