// One direction of a simulated bad network: loss, delay, jitter, reordering,
// duplication, corruption and a rate limit. Pure and deterministic (no sockets,
// no clocks): the relay asks it what happens to each datagram, tests check its
// statistics without sleeping.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>

#include "jamnet/core/clock.hpp"

namespace jamnet::net {

enum class JitterDist : std::uint8_t { kUniform, kNormal };

// Probabilities are fractions (0..1), not percents; times are nanoseconds.
struct Impairment {
  double loss = 0.0;  // independent random loss
  // Gilbert-Elliott bursty loss. With ge_p == 0 the chain stays good, so it is
  // off unless ge_loss_good > 0.
  double ge_p = 0.0;  // good -> bad, per packet
  double ge_r = 0.0;  // bad -> good, per packet
  double ge_loss_good = 0.0;
  double ge_loss_bad = 1.0;
  Nanos delay = 0;
  Nanos jitter = 0;  // uniform: +-jitter; normal: standard deviation
  JitterDist jitter_dist = JitterDist::kUniform;
  double reorder = 0.0;  // chance a packet is held back by reorder_gap
  Nanos reorder_gap = 2'000'000;
  double duplicate = 0.0;
  double corrupt = 0.0;
  double rate_kbps = 0.0;    // 0 = unlimited; counts UDP payload bytes only
  Nanos queue = 50'000'000;  // rate limiter's queue, in time to drain it

  bool is_identity() const noexcept;
};

enum class DropReason : std::uint8_t { kNone, kLoss, kQueue };

// What happens to one datagram.
struct Fate {
  DropReason drop = DropReason::kNone;
  std::uint8_t copies = 1;  // 0 when dropped, 2 when duplicated
  // Send time of each copy, relative to the arrival time given to decide().
  std::array<Nanos, 2> release_after{};
  bool reordered = false;
  // Flip bit `corrupt_bit` of byte `corrupt_byte`, in the first copy only
  // (as netem does: the duplicate is cloned before corruption).
  bool corrupt = false;
  std::size_t corrupt_byte = 0;
  std::uint8_t corrupt_bit = 0;

  bool dropped() const noexcept { return drop != DropReason::kNone; }
};

class ImpairmentModel {
 public:
  // `stream` separates the random sequences of models sharing one seed
  // (the relay uses 0 for forward, 1 for reverse).
  ImpairmentModel(const Impairment& settings, std::uint64_t seed, std::uint64_t stream = 0);

  // Decides the fate of a `size`-byte datagram arriving at `now`. Calls must
  // come in arrival order (`now` never decreasing): the rate limiter and the
  // Gilbert-Elliott chain carry state from one packet to the next.
  Fate decide(std::size_t size, Nanos now);

  const Impairment& settings() const noexcept { return settings_; }
  bool in_bad_state() const noexcept { return ge_bad_; }

 private:
  double uniform();  // [0, 1) from 53 raw bits: same on every standard library
  double normal();   // N(0, 1), Box-Muller on uniform()
  Nanos jitter_sample();

  Impairment settings_;
  std::mt19937_64 rng_;
  bool ge_bad_ = false;
  Nanos link_busy_until_ = 0;  // rate limiter: when the last accepted packet is serialised
};

}  // namespace jamnet::net
