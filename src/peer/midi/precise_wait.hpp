// How the MIDI send and playout threads wait for an instant: a condition
// variable for the long stretch (new work wakes it), clock_nanosleep for the
// last few hundred microseconds, and a short spin at the end.
#pragma once

#include <chrono>

#include "jamnet/core/clock.hpp"

namespace jamnet::midi {

// Farther than this from its deadline, a thread waits on its condition
// variable (until kCoarseMarginNs before the deadline) instead of sleeping.
inline constexpr Nanos kCoarseWaitNs = 300'000;
inline constexpr Nanos kCoarseMarginNs = 200'000;
// The spin at the end of a wait: long enough to absorb clock_nanosleep's
// usual wake-up lateness under SCHED_FIFO, short enough that two real-time
// threads spinning do not starve a 2-core machine.
inline constexpr Nanos kSpinNs = 30'000;

inline std::chrono::steady_clock::time_point steady_at(Nanos monotonic) {
  // steady_clock is CLOCK_MONOTONIC on Linux.
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(monotonic));
}

// Sleeps until `at` on CLOCK_MONOTONIC (absolute clock_nanosleep to kSpinNs
// before it), then spins, so a burst copy or a note leaves within a few
// microseconds of its time.
inline void sleep_precisely_until(Nanos at) noexcept {
  const Nanos coarse = at - kSpinNs;
  if (monotonic_ns() < coarse) sleep_until_ns(coarse);
  while (monotonic_ns() < at) {
  }
}

}  // namespace jamnet::midi
