// Time on this machine. Session time (the shared timeline) comes from the sync
// layer; until it exists, session time is the local monotonic clock.
#pragma once

#include <cstdint>
#include <ctime>

namespace jamnet {

using Nanos = std::int64_t;

inline Nanos monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Sleeps until the monotonic clock reads `deadline` (absolute, so pacing
// loops do not accumulate drift); returns at once when it has passed.
inline void sleep_until_ns(Nanos deadline) noexcept {
  const timespec ts{static_cast<time_t>(deadline / 1'000'000'000),
                    static_cast<long>(deadline % 1'000'000'000)};
  ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
}

inline Nanos realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace jamnet
