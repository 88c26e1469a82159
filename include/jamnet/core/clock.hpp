// Time on this machine. Session time (the shared timeline) comes from the sync
// layer; until it exists, session time is the local monotonic clock.
#pragma once

#include <cstdint>
#include <ctime>
#include <limits>

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

// Times from the wire are checked before any arithmetic: a plausible one is
// in [0, kMaxWireNs] (2^60 ns, about 36 years), so sums and differences of a
// few of them cannot overflow. Where a result may still leave the range,
// sat_add / sat_sub clamp instead of overflowing.
inline constexpr Nanos kMaxWireNs = Nanos{1} << 60;
constexpr bool plausible_ns(std::int64_t t) noexcept {
  return t >= 0 && t <= kMaxWireNs;
}
constexpr Nanos sat_add(Nanos a, Nanos b) noexcept {
  Nanos r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}
constexpr Nanos sat_sub(Nanos a, Nanos b) noexcept {
  Nanos r = 0;
  if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? INT64_MIN : INT64_MAX;
  return r;
}

inline Nanos realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace jamnet
