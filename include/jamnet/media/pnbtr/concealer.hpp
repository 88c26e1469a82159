// One channel of loss concealment: passes real blocks through, asks the
// Predictor for missing ones, crossfades from prediction back into real audio
// at the first block after a gap, and fades long gaps to silence.
// Real-time safe after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "jamnet/media/pnbtr/predictor.hpp"

namespace jamnet::media::pnbtr {

struct ConcealerConfig {
  int max_block = 512;
  int crossfade = 48;      // longest crossfade into real audio after a gap (1 ms at 48 kHz)
  int fade_after = 960;    // predicted samples played at full level (20 ms) ...
  int fade_length = 1920;  // ... then faded to silence over this many (40 ms)
  // The crossfade is as short as keeps the splice smooth: its extra
  // sample-to-sample step stays within splice_step times the real block's RMS
  // step (0: always `crossfade` samples), and never below min_crossfade.
  double splice_step = 2.0;
  int min_crossfade = 4;
};

struct ConcealerStats {
  std::uint64_t blocks = 0;
  std::uint64_t concealed_blocks = 0;
  std::uint64_t gaps = 0;           // runs of concealed blocks
  std::uint64_t silent_blocks = 0;  // concealed blocks after the fade reached silence
};

class Concealer {
 public:
  Concealer(std::unique_ptr<Predictor> predictor, const ConcealerConfig& config = {});
  // The next block arrived (or was recovered): out = in, except right after a
  // gap, where the first samples (up to `crossfade`) blend prediction into in.
  // out may alias in.
  void good(std::span<const float> in, std::span<float> out) noexcept;
  // The next block is missing: out = prediction (fading over long gaps).
  void lost(std::span<float> out) noexcept;
  const ConcealerStats& stats() const noexcept { return stats_; }
  Predictor& predictor() noexcept { return *predictor_; }

 private:
  // Predicts n samples into out (in chunks of max_block), faded by the
  // position in the gap; silent once the fade has ended.
  void conceal(float* out, int n) noexcept;
  // The same for the n samples after the gap, without advancing the predictor.
  void peek(float* out, int n) noexcept;
  float gain_at(std::int64_t gap_sample) const noexcept;
  int crossfade_length(std::span<const float> in, int xf_max) const noexcept;

  std::unique_ptr<Predictor> predictor_;
  ConcealerConfig config_;
  ConcealerStats stats_;
  std::vector<float> scratch_;  // the prediction crossfaded into the first block after a gap
  std::vector<float> xfade_;    // weight of the real signal, one ramp per crossfade length
  std::vector<float> fade_;     // gain over the fade to silence
  bool in_gap_ = false;
  std::int64_t gap_samples_ = 0;
};

}  // namespace jamnet::media::pnbtr
