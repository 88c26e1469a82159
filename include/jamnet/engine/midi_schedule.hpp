// Where inside an audio cycle a live MIDI event should sound.
//
// 003 "Steady Pulse" phase 5: MIDI input was timestamped but played at the
// start of whichever cycle drained it, so the timing jitter of the input
// thread and of the queue became timing jitter of the notes (up to a whole
// period). With the event's CLOCK_MONOTONIC timestamp and the cycle's start
// time, the event lands on the frame it was played at, one cycle later: a
// constant latency instead of a jittery one.
//
// Rounding is to the nearest frame, ties to the later frame, and is
// consistent across cycles: an event belongs to exactly one of two adjacent
// cycles. An event less than half a frame before the cycle start rounds to
// offset 0 and is not late; one further back is late (played at offset 0 now,
// as early as it still can be). An event whose frame lies beyond the cycle is
// not due: callers hold it back for a later cycle (its offset is clamped to
// the last frame for callers that play it anyway).
//
// Pure integer arithmetic, no overflow for any input: safe on the audio thread.
#pragma once

#include <cstdint>

#include "jamnet/core/clock.hpp"

namespace jamnet::engine {

struct CycleSlot {
  std::uint32_t offset = 0;  // frame inside the cycle, in [0, frames) (0 when frames == 0)
  bool late = false;         // its frame was before the cycle: played at offset 0
  bool due = false;          // to be played in this cycle (late events are due)
};

constexpr CycleSlot place_in_cycle(Nanos event_ns, Nanos cycle_start_ns, std::uint32_t sample_rate,
                                   std::uint32_t frames) noexcept {
  constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
  if (sample_rate == 0 || frames == 0) return {};
  const std::uint64_t rate = sample_rate;
  if (event_ns < cycle_start_ns) {
    // Unsigned subtraction: the exact distance even across the whole int64 range.
    const std::uint64_t back =
        static_cast<std::uint64_t>(cycle_start_ns) - static_cast<std::uint64_t>(event_ns);
    // round(-back * rate / 1e9) == 0  <=>  back * rate / 1e9 <= 1/2.
    const bool rounds_to_start = back < kNsPerSecond && 2 * back * rate <= kNsPerSecond;
    return {0, !rounds_to_start, true};
  }
  const std::uint64_t delta =
      static_cast<std::uint64_t>(event_ns) - static_cast<std::uint64_t>(cycle_start_ns);
  const std::uint64_t seconds = delta / kNsPerSecond;
  // A whole second per frame at least (rate >= 1): certainly beyond the cycle.
  // Checked first so that seconds * rate below cannot overflow.
  if (seconds >= frames) return {frames - 1, false, false};
  // floor(delta * rate / 1e9 + 1/2), split so no product exceeds 64 bits.
  const std::uint64_t offset =
      seconds * rate + ((delta % kNsPerSecond) * rate + kNsPerSecond / 2) / kNsPerSecond;
  if (offset >= frames) return {frames - 1, false, false};
  return {static_cast<std::uint32_t>(offset), false, true};
}

// The frame offset inside the cycle of `frames` frames that starts at
// `cycle_start_ns` at which an event stamped `event_ns` should sound. Late
// events: 0 and *late = true. Events beyond the cycle: frames - 1 (hold them
// back; see due_in_cycle).
constexpr std::uint32_t sample_offset_for(Nanos event_ns, Nanos cycle_start_ns,
                                          std::uint32_t sample_rate, std::uint32_t frames,
                                          bool* late = nullptr) noexcept {
  const CycleSlot slot = place_in_cycle(event_ns, cycle_start_ns, sample_rate, frames);
  if (late != nullptr) *late = slot.late;
  return slot.offset;
}

// True when the event should be played in this cycle (including late ones);
// false when it belongs to a later cycle.
constexpr bool due_in_cycle(Nanos event_ns, Nanos cycle_start_ns, std::uint32_t sample_rate,
                            std::uint32_t frames) noexcept {
  return place_in_cycle(event_ns, cycle_start_ns, sample_rate, frames).due;
}

}  // namespace jamnet::engine
