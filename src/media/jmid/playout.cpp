#include <algorithm>

#include "jamnet/media/jmid/playout.hpp"

namespace jamnet::media::jmid {

PlayoutClock::PlayoutClock(Nanos latency_ns, Nanos window_ns)
    : latency_(latency_ns), window_(std::max<Nanos>(window_ns, 0)) {}

bool PlayoutClock::observe(std::int64_t sender_ts_ns, Nanos local_rx_ns) {
  if (!plausible_ns(sender_ts_ns) || !plausible_ns(local_rx_ns)) return false;
  const Nanos sample = local_rx_ns - sender_ts_ns;  // both in [0, 2^60]: no overflow
  // Monotonic deque: a sample can never be the minimum again once a newer,
  // smaller one exists, so the front is always the window's minimum and each
  // sample is pushed and popped once (O(1) amortised).
  while (!mins_.empty() && mins_.back().second >= sample) mins_.pop_back();
  mins_.emplace_back(local_rx_ns, sample);
  // Old samples leave, so the estimate follows clock drift and route changes.
  while (mins_.front().first < local_rx_ns - window_) mins_.pop_front();
  return true;
}

void PlayoutClock::set_offset(Nanos sender_to_local_ns) {
  fixed_ = sender_to_local_ns;
}
void PlayoutClock::clear_offset() {
  fixed_.reset();
}
bool PlayoutClock::ready() const noexcept {
  return fixed_.has_value() || !mins_.empty();
}

Nanos PlayoutClock::offset() const noexcept {
  if (fixed_) return *fixed_;
  return mins_.empty() ? 0 : mins_.front().second;
}

Nanos PlayoutClock::play_at(std::int64_t sender_ts_ns) const noexcept {
  return sat_add(sat_add(sender_ts_ns, offset()), latency_);
}

}  // namespace jamnet::media::jmid
