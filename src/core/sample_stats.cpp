#include "jamnet/core/sample_stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace jamnet {

SampleWindow::SampleWindow(std::size_t capacity) : ring_(capacity == 0 ? 1 : capacity) {}

void SampleWindow::add(double value) {
  ring_[next_] = value;
  next_ = (next_ + 1) % ring_.size();
  if (filled_ < ring_.size()) ++filled_;
  ++total_;
  last_ = value;
}

double SampleWindow::percentile(double q) const {
  return percentile_of(
      std::vector<double>(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(filled_)), q);
}

double percentile_of(std::vector<double> samples, double q) {
  if (samples.empty()) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
  const std::size_t idx = rank == 0 ? 0 : rank - 1;
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(idx),
                   samples.end());
  return samples[idx];
}

}  // namespace jamnet
