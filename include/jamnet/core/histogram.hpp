// Histogram: latency and jitter figures in nanoseconds, recorded on the audio
// thread and read anywhere else.
//
// Log-linear bins in the style of HdrHistogram with 32 sub-buckets per octave:
// values below 64 ns get one bin each (exact), and every octave [2^k, 2^(k+1))
// above is cut into 32 equal bins of width 2^(k-5). A bin is then never wider
// than 1/32 of its lower edge, so any quantile is off by less than 3.2 %
// however wide the range is; a linear or plain log2 layout cannot keep that
// bound from tens of nanoseconds (a queue hop) to seconds (a stalled thread).
// Values of 2^34 ns (~17 s) and above share one overflow bin; max() stays exact.
//
// add() is O(1): a bit_width and a shift to find the bin, no allocation. Storage is a fixed
// std::array, so the type is trivially copyable and can travel through a TripleBuffer; quantile()
// scans the bins (about a thousand) and belongs on the reader's side or in a once a second publish,
// not in a per-sample loop.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "jamnet/core/clock.hpp"

namespace jamnet {

class Histogram {
 public:
  static constexpr int kSubBits = 5;  // 32 sub-buckets per octave
  static constexpr std::size_t kSubBuckets = std::size_t{1} << kSubBits;
  static constexpr int kTopOctave = 33;  // the last regular octave: [2^33, 2^34) ns
  // Bins 0..63 hold 0..63 ns exactly; each octave 6..kTopOctave adds 32 more.
  static constexpr std::size_t kRegularBins = 2 * kSubBuckets + (kTopOctave - 5) * kSubBuckets;
  static constexpr std::size_t kOverflowBin = kRegularBins;
  static constexpr std::size_t kBins = kRegularBins + 1;
  static constexpr Nanos kOverflowFrom = Nanos{1} << (kTopOctave + 1);

  // The bin that counts `v` (already clamped to >= 0).
  static constexpr std::size_t bin_of(Nanos v) noexcept {
    if (v >= kOverflowFrom) return kOverflowBin;
    const auto u = static_cast<std::uint64_t>(v);
    // Below 64 the shift is 0 and the bin is the value; above, `shift` drops
    // the bits finer than 1/32 of the octave and `u >> shift` lands in [32, 64).
    const int shift = std::max(0, static_cast<int>(std::bit_width(u)) - (kSubBits + 1));
    return static_cast<std::size_t>(shift) * kSubBuckets + static_cast<std::size_t>(u >> shift);
  }

  // The largest value bin `i` counts (for the overflow bin: the largest Nanos).
  static constexpr Nanos bin_highest(std::size_t i) noexcept {
    if (i >= kOverflowBin) return std::numeric_limits<Nanos>::max();
    if (i < 2 * kSubBuckets) return static_cast<Nanos>(i);
    const std::size_t shift = i / kSubBuckets - 1;
    const std::uint64_t lower = static_cast<std::uint64_t>(i % kSubBuckets + kSubBuckets) << shift;
    return static_cast<Nanos>(lower + (std::uint64_t{1} << shift) - 1);
  }

  // The smallest value bin `i` counts.
  static constexpr Nanos bin_lowest(std::size_t i) noexcept {
    if (i >= kOverflowBin) return kOverflowFrom;
    if (i < 2 * kSubBuckets) return static_cast<Nanos>(i);
    const std::size_t shift = i / kSubBuckets - 1;
    return static_cast<Nanos>(static_cast<std::uint64_t>(i % kSubBuckets + kSubBuckets) << shift);
  }

  void add(Nanos v) noexcept {
    v = std::max<Nanos>(v, 0);  // a clock step backwards is not a negative latency
    ++bins_[bin_of(v)];
    ++count_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  std::uint64_t count() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  // Exact (kept beside the bins); 0 when empty.
  Nanos min() const noexcept { return count_ == 0 ? 0 : min_; }
  Nanos max() const noexcept { return count_ == 0 ? 0 : max_; }
  // Exact up to double rounding; 0 when empty.
  double mean() const noexcept { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }
  std::uint64_t bin_count(std::size_t i) const noexcept { return i < kBins ? bins_[i] : 0; }

  // The nearest-rank quantile (rank ceil(q * count), at least 1), reported as
  // the largest value of the bin holding that rank, clamped to max(): never
  // below the exact quantile and less than 1/32 above it. 0 when empty.
  Nanos quantile(double q) const noexcept {
    if (count_ == 0) return 0;
    if (!(q > 0.0)) q = 0.0;  // also catches NaN
    if (q > 1.0) q = 1.0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::size_t bin = 0;
    if (rank <= count_ / 2) {
      std::uint64_t seen = 0;
      for (; bin < kBins; ++bin) {
        seen += bins_[bin];
        if (seen >= rank) break;
      }
    } else {
      // High quantiles (p99, p999) are what we ask for most: walk down from
      // the top, where the bin holding rank r is the first whose count from
      // the top reaches count - r + 1.
      const std::uint64_t from_top = count_ - rank + 1;
      std::uint64_t seen = 0;
      for (bin = kBins; bin-- > 0;) {
        seen += bins_[bin];
        if (seen >= from_top) break;
      }
    }
    return std::min(bin_highest(bin), max_);
  }

  void reset() noexcept { *this = Histogram{}; }

  void merge(const Histogram& other) noexcept {
    if (other.count_ == 0) return;
    for (std::size_t i = 0; i < kBins; ++i) bins_[i] += other.bins_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

 private:
  std::array<std::uint64_t, kBins> bins_{};
  std::uint64_t count_ = 0;
  double sum_ = 0.0;  // double, not int64: a long run of large values would overflow 2^63 ns
  Nanos min_ = std::numeric_limits<Nanos>::max();
  Nanos max_ = 0;
};

static_assert(std::is_trivially_copyable_v<Histogram>, "published through a TripleBuffer");
static_assert(sizeof(Histogram) <= 8 * 1024,
              "copied once per telemetry window on the audio thread");
static_assert(Histogram::bin_of(Histogram::kOverflowFrom - 1) == Histogram::kOverflowBin - 1);
static_assert(Histogram::bin_of(63) == 63 && Histogram::bin_of(64) == 64);
static_assert(Histogram::bin_highest(64) == 65 && Histogram::bin_lowest(64) == 64);

}  // namespace jamnet
