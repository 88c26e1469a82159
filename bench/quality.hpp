// Quality measures and loss patterns for the loss-concealment benchmark and
// the `--segsnr` tool mode: SNR and segmental SNR, seeded random and bursty
// (Gilbert-Elliott) loss.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace jamnet::bench {

// SNR and segmental SNR come from jamnet/media/audio_quality.hpp (one
// definition for the demo, the tests and the benchmarks): 20 ms segments,
// per-segment SNR clamped to [-10, 35] dB, segments whose reference is below
// -60 dBFS skipped. compare() runs both and caps the SNR of identical signals.
struct SnrResult {
  double segsnr_db = 0.0;  // NaN if every segment is silent
  double snr_db = 0.0;     // whole signal, capped at kMaxSnrDb
};

inline constexpr double kMaxSnrDb = 150.0;  // the SNR reported for identical signals

// Compares test to ref sample by sample over the shorter of the two.
SnrResult compare(std::span<const float> ref, std::span<const float> test);

// SNR over the lost blocks only (block b covers [b * block, (b + 1) * block)):
// how well the concealment predicted the missing audio. Silence scores 0 dB,
// anything below 0 dB is worse than silence. NaN when nothing was lost.
double gap_snr_db(std::span<const float> ref, std::span<const float> test,
                  const std::vector<bool>& lost, std::size_t block);

// Loss patterns, one flag per block (true = lost); same seed, same pattern on
// every machine (53-bit uniforms from mt19937_64).
std::vector<bool> random_loss(std::size_t blocks, double loss, std::uint64_t seed);
// Two-state Gilbert-Elliott chain, everything lost in the bad state: mean burst
// length `mean_burst` blocks, long-run loss `loss`.
std::vector<bool> bursty_loss(std::size_t blocks, double loss, double mean_burst,
                              std::uint64_t seed);
double loss_fraction(const std::vector<bool>& lost);
double mean_burst_length(const std::vector<bool>& lost);

}  // namespace jamnet::bench
