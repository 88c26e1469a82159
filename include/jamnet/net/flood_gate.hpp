// FloodGate: how much work the receive thread spends on datagrams from
// sources that have not shown they belong (no frame of theirs decoded into a
// joined session, or, keyed, opened). Such work (a CRC, a decryption
// attempt) is limited in total and per source prefix (IPv4 /24), with
// fixed-size state whatever the number of sources: a count-min sketch of
// per-prefix counts and one total, both over windows of kWindowNs. A
// garbage flood then costs a bounded amount of CPU, and one noisy network
// cannot use up what others get. Members' datagrams do not pass here.
//
// One thread (the receive thread). Never allocates.
#pragma once

#include <array>
#include <cstdint>

#include "jamnet/core/clock.hpp"

namespace jamnet::net {

struct FloodGateConfig {
  double total_per_s = 20'000;  // unverified datagrams looked at, all sources together
  double prefix_per_s = 5'000;  // ... from one /24
};

class FloodGate {
 public:
  static constexpr Nanos kWindowNs = 100'000'000;
  static constexpr std::size_t kRows = 4;
  static constexpr std::size_t kColumns = 1024;  // power of two

  explicit FloodGate(FloodGateConfig config = {}, std::uint64_t seed = 0x6a09e667f3bcc909ull)
      : total_limit_(limit_of(config.total_per_s)),
        prefix_limit_(limit_of(config.prefix_per_s)),
        seed_(seed | 1) {}

  // True when a datagram from `addr` (IPv4, host order) may be looked at
  // now; false (the caller drops and counts it) when its prefix or the total
  // is over budget in this window.
  bool admit(std::uint32_t addr, Nanos now) noexcept {
    if (now - window_start_ >= kWindowNs || now < window_start_) {
      window_start_ = now;
      total_ = 0;
      for (auto& row : counts_) row.fill(0);
    }
    if (total_ >= total_limit_) return false;
    const std::uint32_t prefix = addr >> 8;
    std::array<std::uint32_t*, kRows> cells{};
    std::uint32_t estimate = UINT32_MAX;
    for (std::size_t r = 0; r < kRows; ++r) {
      cells[r] = &counts_[r][column(prefix, r)];
      if (*cells[r] < estimate) estimate = *cells[r];
    }
    if (estimate >= prefix_limit_) return false;
    for (auto* c : cells) ++*c;
    ++total_;
    return true;
  }

 private:
  static std::uint32_t limit_of(double per_s) noexcept {
    const double n = per_s * static_cast<double>(kWindowNs) * 1e-9;
    return n <= 1 ? 1 : n >= 4e9 ? UINT32_MAX : static_cast<std::uint32_t>(n);
  }
  std::size_t column(std::uint32_t prefix, std::size_t row) const noexcept {
    std::uint64_t h = (prefix + row * 0x9E3779B97F4A7C15ull) * seed_;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return static_cast<std::size_t>(h) & (kColumns - 1);
  }

  std::uint32_t total_limit_, prefix_limit_;
  std::uint64_t seed_;
  Nanos window_start_ = 0;
  std::uint32_t total_ = 0;
  std::array<std::array<std::uint32_t, kColumns>, kRows> counts_{};
};

}  // namespace jamnet::net
