#include "jamnet/net/impairment.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace jamnet::net {

namespace {

// SplitMix64 finaliser: spreads (seed, stream) over the generator's seed so
// nearby seeds and the two directions give unrelated sequences.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

bool Impairment::is_identity() const noexcept {
  const bool ge_drops = ge_loss_good > 0.0 || (ge_p > 0.0 && ge_loss_bad > 0.0);
  return loss == 0.0 && !ge_drops && delay == 0 && jitter == 0 && reorder == 0.0 &&
         duplicate == 0.0 && corrupt == 0.0 && rate_kbps == 0.0;
}

ImpairmentModel::ImpairmentModel(const Impairment& settings, std::uint64_t seed,
                                 std::uint64_t stream)
    : settings_(settings), rng_(mix(seed ^ mix(stream))) {}

double ImpairmentModel::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

double ImpairmentModel::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log() stays finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

Nanos ImpairmentModel::jitter_sample() {
  const double j = static_cast<double>(settings_.jitter);
  if (settings_.jitter_dist == JitterDist::kNormal) return std::llround(normal() * j);
  const double u = uniform();
  uniform();  // keep two draws per sample whichever the distribution
  return std::llround((2.0 * u - 1.0) * j);
}

Fate ImpairmentModel::decide(std::size_t size, Nanos now) {
  const Impairment& s = settings_;
  // Every packet takes the same draws in the same order, whatever is enabled,
  // so turning one impairment on does not change the others' decisions.
  const bool lost_random = uniform() < s.loss;
  const double ge_step = uniform();
  ge_bad_ = ge_bad_ ? !(ge_step < s.ge_r) : ge_step < s.ge_p;
  const bool lost_burst = uniform() < (ge_bad_ ? s.ge_loss_bad : s.ge_loss_good);
  const Nanos jitter0 = jitter_sample();
  const bool reorder = uniform() < s.reorder;
  const bool duplicate = uniform() < s.duplicate;
  const Nanos jitter1 = jitter_sample();
  const bool corrupt = uniform() < s.corrupt;
  const std::uint64_t corrupt_pos = rng_();

  Fate fate;
  if (lost_random || lost_burst) {
    fate.drop = DropReason::kLoss;
    fate.copies = 0;
    return fate;
  }

  // Bottleneck link: a FIFO drained at rate_kbps. Lost packets never reach it.
  Nanos queued = 0;  // waiting + serialisation time of this packet
  if (s.rate_kbps > 0.0) {
    const auto serialise =
        static_cast<Nanos>(std::llround(static_cast<double>(size) * 8e6 / s.rate_kbps));
    const Nanos start = std::max(now, link_busy_until_);
    const Nanos backlog = start - now;
    // An empty queue always takes the packet, however long it is.
    if (backlog > 0 && backlog + serialise > s.queue) {
      fate.drop = DropReason::kQueue;
      fate.copies = 0;
      return fate;
    }
    link_busy_until_ = start + serialise;
    queued = link_busy_until_ - now;
  }

  const auto release = [&](Nanos jitter) { return queued + std::max<Nanos>(0, s.delay + jitter); };
  fate.release_after[0] = release(jitter0);
  if (reorder) {
    fate.reordered = true;
    fate.release_after[0] += s.reorder_gap;
  }
  if (duplicate) {
    fate.copies = 2;
    fate.release_after[1] = release(jitter1);
  }
  if (corrupt && size > 0) {
    fate.corrupt = true;
    fate.corrupt_byte = static_cast<std::size_t>((corrupt_pos >> 3) % size);
    fate.corrupt_bit = static_cast<std::uint8_t>(corrupt_pos & 7u);
  }
  return fate;
}

}  // namespace jamnet::net
