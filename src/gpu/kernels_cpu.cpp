// CPU reference of the batch kernels (include/jamnet/gpu/kernels.hpp): loops
// over the per-thread code of kernels_math.hpp, which the CUDA kernels run too.
//
// Compiled with -ffp-contract=off (CMakeLists.txt): every multiply and add
// rounds on its own, as in the GLSL (`precise`) and CUDA (__fmul_rn /
// __fadd_rn) versions, so the three agree bit for bit on IEEE hardware.
#include <algorithm>
#include <cstring>
#include <string>

#include "jamnet/gpu/kernels.hpp"
#include "kernels_math.hpp"

namespace jamnet::gpu {

Result<void> validate(const PnbtrShape& s) {
  auto bad = [](std::string m) -> Result<void> {
    return std::unexpected(Error{Errc::kInvalidArgument, "pnbtr: " + std::move(m)});
  };
  if (s.streams < 0) return bad("streams must be >= 0, got " + std::to_string(s.streams));
  if (s.order < 1 || s.order > kPnbtrMaxOrder)
    return bad("order must be 1.." + std::to_string(kPnbtrMaxOrder) + ", got " +
               std::to_string(s.order));
  if (s.history < s.order + 2 || s.history > kPnbtrMaxHistory)
    return bad("history must be order+2.." + std::to_string(kPnbtrMaxHistory) + ", got " +
               std::to_string(s.history));
  if (s.frames < 1 || s.frames > kPnbtrMaxFrames)
    return bad("frames must be 1.." + std::to_string(kPnbtrMaxFrames) + ", got " +
               std::to_string(s.frames));
  return {};
}

Result<void> validate(const MixShape& s) {
  auto bad = [](std::string m) -> Result<void> {
    return std::unexpected(Error{Errc::kInvalidArgument, "mix: " + std::move(m)});
  };
  if (s.inputs < 0 || s.outputs < 0)
    return bad("inputs and outputs must be >= 0, got " + std::to_string(s.inputs) + " and " +
               std::to_string(s.outputs));
  if (s.frames < 1 || s.frames > 65536)
    return bad("frames must be 1..65536, got " + std::to_string(s.frames));
  if (std::int64_t{s.inputs} * s.frames > (std::int64_t{1} << 28) ||
      std::int64_t{s.outputs} * s.frames > (std::int64_t{1} << 28) ||
      std::int64_t{s.outputs} * s.inputs > (std::int64_t{1} << 28))
    return bad("more than 2^28 samples or gains in one buffer");
  return {};
}

void pnbtr_reference(const PnbtrShape& s, const float* history, float* out, int first,
                     int last) noexcept {
  double f[kPnbtrMaxHistory];
  double b[kPnbtrMaxHistory];
  for (int st = first; st < last; ++st) {
    math::pnbtr_stream(history + std::size_t(st) * s.history, s.history, s.order, s.frames,
                       out + std::size_t(st) * s.frames, f, b, 1);
  }
}

void mix_reference(const MixShape& s, const float* gains, const float* in, float* out) noexcept {
  constexpr std::size_t kChunk = 16;
  const std::size_t frames = s.frames;
  for (std::size_t o = 0; o < std::size_t(s.outputs); ++o) {
    float* row = out + o * frames;
    std::size_t t = 0;
    for (; t + kChunk <= frames; t += kChunk)
      math::mix_samples<kChunk>(o, t, s.inputs, frames, gains, in, row + t);
    for (; t < frames; ++t) math::mix_samples<1>(o, t, s.inputs, frames, gains, in, row + t);
  }
}

// ------------------------------------------------------------------ JSONL

JsonlFields jsonl_extract_line(std::string_view line) noexcept {
  if (line.size() > kJsonlMaxLine) return JsonlFields{.status = kJsonlFallback};
  return math::extract_line(reinterpret_cast<const unsigned char*>(line.data()),
                            std::uint32_t(line.size()));
}

void jsonl_reference(std::string_view blob, std::span<const std::uint32_t> offsets,
                     std::span<JsonlFields> out) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(blob.data());
  for (std::size_t i = 0; i < out.size() && i + 1 < offsets.size(); ++i)
    out[i] = math::jsonl_line(i, bytes, blob.size(), offsets.data());
}

Result<std::vector<std::uint32_t>> split_lines(std::string_view blob) {
  if (blob.size() >= (std::uint64_t{1} << 32))
    return std::unexpected(Error{Errc::kInvalidArgument, "jsonl: a batch must be under 4 GiB"});
  std::vector<std::uint32_t> off;
  off.push_back(0);
  std::size_t pos = 0;
  while (pos < blob.size()) {
    const void* nl = std::memchr(blob.data() + pos, '\n', blob.size() - pos);
    pos = nl ? static_cast<const char*>(nl) - blob.data() + 1 : blob.size();
    off.push_back(std::uint32_t(pos));
  }
  return off;
}

}  // namespace jamnet::gpu
