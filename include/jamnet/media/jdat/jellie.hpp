// JELLIE: one mono signal as 4 streams per block, so that losing streams
// costs as little as possible (docs/jdat.md, "JELLIE").
//   E = even samples, O = odd samples (as words of the stream format),
//   P = E xor O, Q = E xor (2 * O) in GF(2^8), byte by byte (RAID-6 style).
// {E, O, P, Q} is an MDS code: ANY two streams of a block give both E and O
// back bit-exactly. Three lost: if E or O is left, the other half is
// interpolated (band-limited, from this block and the previous one); if only
// P or Q is left, the block is lost (the caller conceals it with PNBTR).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "jamnet/protocol/jdat.hpp"

namespace jamnet::media::jdat {

using protocol::jdat::SampleFormat;

inline constexpr int kJellieStreams = 4;  // index 0..3 = E, O, P, Q

// What decoding a block produced.
enum class JellieOutcome : std::uint8_t {
  kExact,         // every sample bit-exact (0, 1 or 2 streams lost)
  kInterpolated,  // one half interpolated from the other (3 lost, E or O left)
  kLost,          // nothing usable: the caller conceals
};

class JellieEncoder {
 public:
  explicit JellieEncoder(SampleFormat format) : format_(format) {}
  // block: frames mono samples (even count). streams[i] receives frames/2 words.
  void encode(std::span<const float> block,
              std::array<std::span<std::uint32_t>, 4> streams) const noexcept;

 private:
  SampleFormat format_;
};

class JellieDecoder {
 public:
  JellieDecoder(SampleFormat format, int max_frames);
  // present[i]: stream i of this block arrived; streams[i] valid only if present.
  // Writes frames = 2 * stream length samples to out. Keeps a short history
  // for interpolation: call once per block, in order (also for lost blocks,
  // with nothing present, so the history stays aligned).
  // The block length is out.size() (even, at most max_frames; otherwise the
  // block is kLost); a present stream shorter than out.size() / 2 counts as
  // missing.
  JellieOutcome decode(std::array<std::span<const std::uint32_t>, 4> streams,
                       std::array<bool, 4> present, std::span<float> out) noexcept;
  // Optional, after a kLost block: what the caller played instead (its
  // concealment), so that interpolating the next block has a left edge.
  // Without it the decoder extrapolates that edge from the block itself.
  void set_history(std::span<const float> played) noexcept;

  // Half-band interpolator: taps per side, and the order of the linear
  // predictor that extends the half-rate signal past the edges of the block.
  static constexpr int kTaps = 24;
  static constexpr int kOrder = 32;
  // Full-rate samples of history kept for the left edge and the predictor.
  static constexpr int kHistory = 512;

 private:
  void interpolate(int parity, std::span<const std::uint32_t> half, std::span<float> out) noexcept;
  void remember(std::span<const float> block) noexcept;
  void fit(const double* a, int context, int n) noexcept;

  SampleFormat format_;
  int max_frames_;
  std::vector<float> history_;  // the last kHistory output samples, oldest first
  int history_valid_ = 0;       // how many of the newest history_ samples are real
  std::vector<std::uint32_t> scratch_e_, scratch_o_;
  std::array<double, kTaps> taps_{};
  std::vector<double> work_;             // half-rate signal: left edge, block, right edge
  std::vector<double> fwd_, bwd_;        // Burg prediction errors
  std::array<double, kOrder + 1> ar_{};  // predictor, ar_[0] = 1
  int model_order_ = 0;                  // 0: not fitted yet
  int model_age_ = 0;                    // half-rate samples decoded since the fit
  double model_residual_ = 0.0;          // its residual / signal power when fitted
};

}  // namespace jamnet::media::jdat
