#include "quality.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "jamnet/media/audio_quality.hpp"

namespace jamnet::bench {
namespace {

// 53-bit uniform in [0, 1): the same sequence on every standard library.
double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

SnrResult compare(std::span<const float> ref, std::span<const float> test) {
  SnrResult r;
  r.segsnr_db = media::segmental_snr_db(ref, test);
  r.snr_db = std::min(media::snr_db(ref, test), kMaxSnrDb);
  return r;
}

double gap_snr_db(std::span<const float> ref, std::span<const float> test,
                  const std::vector<bool>& lost, std::size_t block) {
  const std::size_t n = std::min(ref.size(), test.size());
  double sig = 0.0, err = 0.0;
  for (std::size_t b = 0; b < lost.size() && (b + 1) * block <= n; ++b) {
    if (!lost[b]) continue;
    for (std::size_t i = b * block; i < (b + 1) * block; ++i) {
      const double d = double{ref[i]} - test[i];
      sig += double{ref[i]} * ref[i];
      err += d * d;
    }
  }
  if (!(sig > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  if (err == 0.0) return kMaxSnrDb;
  return std::min(10.0 * std::log10(sig / err), kMaxSnrDb);
}

std::vector<bool> random_loss(std::size_t blocks, double loss, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<bool> lost(blocks);
  for (std::size_t i = 0; i < blocks; ++i) lost[i] = uniform(rng) < loss;
  return lost;
}

std::vector<bool> bursty_loss(std::size_t blocks, double loss, double mean_burst,
                              std::uint64_t seed) {
  // Bad -> good with r = 1 / mean_burst; good -> bad with p chosen so the
  // stationary share of the bad state, p / (p + r), is `loss`.
  const double r = 1.0 / std::max(mean_burst, 1.0);
  const double p = loss >= 1.0 ? 1.0 : r * loss / (1.0 - loss);
  std::mt19937_64 rng(seed);
  std::vector<bool> lost(blocks);
  bool bad = uniform(rng) < loss;  // start in the stationary distribution
  for (std::size_t i = 0; i < blocks; ++i) {
    lost[i] = bad;
    bad = bad ? !(uniform(rng) < r) : uniform(rng) < p;
  }
  return lost;
}

double loss_fraction(const std::vector<bool>& lost) {
  if (lost.empty()) return 0.0;
  return static_cast<double>(std::count(lost.begin(), lost.end(), true)) /
         static_cast<double>(lost.size());
}

double mean_burst_length(const std::vector<bool>& lost) {
  std::size_t bursts = 0, blocks = 0;
  for (std::size_t i = 0; i < lost.size(); ++i) {
    if (!lost[i]) continue;
    ++blocks;
    if (i == 0 || !lost[i - 1]) ++bursts;
  }
  return bursts ? static_cast<double>(blocks) / static_cast<double>(bursts)
                : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace jamnet::bench
