#include <algorithm>
#include <cmath>
#include <limits>

#include "jamnet/media/jmid/burst.hpp"

namespace jamnet::media::jmid {
namespace {

// Uniform in [0, n) from raw generator output by rejection. Not
// std::uniform_int_distribution: its algorithm is up to each standard library,
// and a seed must give the same schedule everywhere (mt19937_64 itself is
// fully specified by the standard).
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) noexcept {
  if (n <= 1) return 0;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t limit = kMax - kMax % n;  // a multiple of n: no value is favoured
  for (;;) {
    const std::uint64_t x = rng();
    if (x < limit) return x % n;
  }
}

BurstConfig sanitized(BurstConfig c) noexcept {
  c.k_min = std::clamp(c.k_min, 1, kMaxBurst);
  c.k_max = std::clamp(c.k_max, c.k_min, kMaxBurst);
  c.k = c.adaptive ? std::clamp(c.k, c.k_min, c.k_max) : std::clamp(c.k, 1, kMaxBurst);
  c.window_ns = std::max<Nanos>(c.window_ns, 0);
  return c;
}

}  // namespace

BurstSender::BurstSender(const BurstConfig& config, std::uint64_t seed)
    : config_(sanitized(config)),
      k_(config_.k),
      rng_(seed),
      // 48 random bits: far from any other run's numbers (restart detection on
      // the receiver) yet 2^16 bursts per second would take ~140 years to wrap.
      seq_(rng_() >> 16) {
  // The start value counts as reported, so k holds until kHoldReports
  // reports have asked for less.
  recent_k_.fill(k_);
}

std::size_t BurstSender::schedule(Nanos now, std::array<ScheduledCopy, kMaxBurst>& out) {
  const int k = k_;
  const auto k8 = static_cast<std::uint8_t>(k);
  out[0] = ScheduledCopy{now, 0, k8};
  if (k == 1) return 1;
  // Stratified: copy i (1..k-1) falls uniformly in the i-th of k-1 equal
  // slots of (now, now + window]. Disjoint slots make the copies distinct and
  // sorted without a sort, and keep them apart, so one short loss burst
  // cannot take them all, while the randomness inside a slot keeps periodic
  // interference from hitting the same copy of every burst.
  const Nanos slots = k - 1;
  const Nanos window = std::max(config_.window_ns, slots);  // >= 1 ns per slot
  for (int i = 1; i < k; ++i) {
    const Nanos lo = window * (i - 1) / slots;
    const Nanos hi = window * i / slots;
    const auto jitter =
        static_cast<Nanos>(uniform_below(rng_, static_cast<std::uint64_t>(hi - lo)));
    out[static_cast<std::size_t>(i)] =
        ScheduledCopy{now + lo + 1 + jitter, static_cast<std::uint8_t>(i), k8};
  }
  return static_cast<std::size_t>(k);
}

int BurstSender::k_for_loss(double p) const noexcept {
  if (!(p > 0.0)) return config_.k_min;  // also NaN
  if (p >= 1.0) return config_.k_max;
  // Multiply up rather than ceil(log(target)/log(p)): exact at the
  // boundaries the log form rounds across, and at most kMaxBurst steps.
  int k = 1;
  double pk = p;
  while (pk > config_.target_event_loss && k < config_.k_max) {
    ++k;
    pk *= p;
  }
  return std::max(k, config_.k_min);
}

void BurstSender::on_feedback(double packet_loss) {
  if (!config_.adaptive || std::isnan(packet_loss)) return;
  // Sliding maximum over the last kHoldReports reports: a loss estimate from
  // a few hundred packets is noisy, and a k that flaps costs bandwidth
  // without buying anything, whereas staying high a little longer is cheap.
  recent_k_[recent_pos_] = k_for_loss(packet_loss);
  recent_pos_ = (recent_pos_ + 1) % kHoldReports;
  k_ = *std::max_element(recent_k_.begin(), recent_k_.end());
}

}  // namespace jamnet::media::jmid
