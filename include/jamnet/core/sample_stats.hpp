// Keeps the most recent N samples and answers percentiles: RTTs, latencies.
// Not for the audio thread (percentile() sorts a copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace jamnet {

class SampleWindow {
 public:
  explicit SampleWindow(std::size_t capacity = 4096);

  void add(double value);
  std::size_t size() const noexcept { return filled_; }
  std::uint64_t total_added() const noexcept { return total_; }
  // q in [0,1], nearest-rank on the retained samples; NaN when empty.
  double percentile(double q) const;
  double last() const noexcept { return last_; }

 private:
  std::vector<double> ring_;
  std::size_t next_ = 0;
  std::size_t filled_ = 0;
  std::uint64_t total_ = 0;
  double last_ = 0.0;
};

// Nearest-rank percentile of an arbitrary sample set (copies and sorts).
double percentile_of(std::vector<double> samples, double q);

}  // namespace jamnet
