// Commands from control threads to the audio thread, in two lock-free queues:
// priority (note on/off, hits, live parameters: what a player hears at once)
// and normal (mixer and state maintenance). The audio thread drains both once
// per cycle within a count budget and a time budget, priority first, so a burst
// of normal traffic can neither delay a note nor stretch the cycle; redundant
// normal commands (the same kind and target) are coalesced to the newest.
// Source: 003 "Steady Pulse" phases 0 and 2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/histogram.hpp"

namespace jamnet::engine {

enum class CommandKind : std::uint16_t {
  // priority
  kNoteOn = 1,     // target: channel, a: note, b: velocity; at_ns: when it should sound (0: now)
  kNoteOff = 2,    // target: channel, a: note, b: velocity
  kHit = 3,        // a drum hit: target: channel, a: note, b: velocity
  kLiveParam = 4,  // a tight parameter move: target: parameter id, value
  // normal (coalesced by kind + target: only the newest per drain is applied)
  kGain = 16,       // target: output index (0xFFFF: master), value: linear gain
  kClickOn = 17,    // value != 0: click track on
  kTempo = 18,      // value: bpm
  kStateSync = 19,  // bulk state refresh (a: generation)
  kUser = 64,       // application-defined from here on
};

constexpr bool is_priority(CommandKind k) noexcept {
  return static_cast<std::uint16_t>(k) < 16;
}

struct Command {
  CommandKind kind = CommandKind::kUser;
  std::uint16_t target = 0;
  std::uint8_t a = 0, b = 0;
  float value = 0.0f;
  Nanos at_ns = 0;        // CLOCK_MONOTONIC time it should take effect; 0: as soon as drained
  Nanos enqueued_ns = 0;  // set by CommandQueues::push (for latency telemetry)
};
static_assert(sizeof(Command) <= 32);

struct DrainBudget {
  std::size_t max_priority = 4096;  // per cycle
  std::size_t max_normal = 256;     // per cycle
  Nanos max_ns = 200'000;           // time for both queues together; priority always gets its count
};

struct DrainStats {
  std::size_t priority = 0;       // priority commands applied this cycle
  std::size_t normal = 0;         // normal commands applied (after coalescing)
  std::size_t coalesced = 0;      // normal commands dropped as superseded in this drain
  std::size_t priority_left = 0;  // still queued after the drain (approximate)
  std::size_t normal_left = 0;
  Nanos max_priority_latency_ns = 0;  // largest (drain time - enqueued_ns) of this drain
  bool budget_hit = false;            // stopped by the count or the time budget
};

// Receives drained commands on the audio thread (must be real-time safe).
class CommandSink {
 public:
  virtual ~CommandSink() = default;
  virtual void apply(const Command& c) noexcept = 0;
};

// Multi-producer (any control thread, lock-free, never blocks), single consumer
// (the audio thread). Capacities are fixed at construction.
class CommandQueues {
 public:
  CommandQueues(std::size_t priority_capacity = 8192, std::size_t normal_capacity = 16384);
  ~CommandQueues();
  CommandQueues(const CommandQueues&) = delete;
  CommandQueues& operator=(const CommandQueues&) = delete;

  // Producer side: stamps enqueued_ns, routes by is_priority(kind). False when full (counted).
  bool push(Command c) noexcept;
  // Consumer side (audio thread): no allocation, no locks, no syscalls besides
  // reading CLOCK_MONOTONIC. `now_ns` is the cycle's time for latency figures;
  // each priority command's (now_ns - enqueued_ns) also goes into
  // `priority_latency` when given.
  DrainStats drain(CommandSink& sink, const DrainBudget& budget, Nanos now_ns,
                   Histogram* priority_latency = nullptr) noexcept;

  std::uint64_t rejected_full() const noexcept;
  std::size_t priority_depth() const noexcept;
  std::size_t normal_depth() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamnet::engine
