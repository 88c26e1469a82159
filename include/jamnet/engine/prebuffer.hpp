// PrebufferManager: when to start, pause and resume playing a stream that
// arrives in bursts (a TTS worker, a network peer, a file decoder) so that an
// underrun becomes one clean gap instead of a crackle every cycle.
//
//   kIdle ──data──► kBuffering ──≥ start──► kPlaying ──< pause──► kRebuffering
//                                             ▲                        │
//                                             └────────≥ start─────────┘
//   end of stream (from kBuffering, kPlaying, kRebuffering) ──► kDraining:
//   play out whatever is buffered, then kIdle.
//
// Two thresholds with a gap between them (hysteresis): playback starts, or
// resumes after an underrun, only once `start_frames` are buffered, and pauses
// when fewer than `pause_frames` are left, so the producer has a head start
// each time instead of the consumer chasing it sample by sample.
//
// Thresholds by machine tier (004 §1.6 "tier-dependent"; the weaker the
// machine, the burstier its producer and the more head start it needs):
//
//   tier        start   pause
//   kHighEnd    20 ms    5 ms
//   kMidRange   40 ms   10 ms
//   kModest     80 ms   20 ms
//   kLowEnd    120 ms   30 ms
//   kCpuOnly   200 ms   50 ms
//
// These suit the engine's streams (network audio, rendered audio). 004 §1.2
// gives 0.5–3.0 s for XTTS speech, whose producer delivers seconds at a time:
// the speech layer builds its config with from_ms(). Live network audio uses
// low_latency(): start at two periods, pause below one (the next cycle could
// not be filled).
//
// update() and pull() are for the audio thread (no allocation, no locks); the
// state and the counters are atomics that any thread may read.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "jamnet/engine/audio_fifo.hpp"

namespace jamnet::engine {

enum class Tier : std::uint8_t { kHighEnd, kMidRange, kModest, kLowEnd, kCpuOnly };

struct TierThresholds {
  double start_ms;
  double pause_ms;
};

// The table above.
constexpr TierThresholds tier_thresholds(Tier tier) noexcept {
  switch (tier) {
    case Tier::kHighEnd:
      return {20.0, 5.0};
    case Tier::kMidRange:
      return {40.0, 10.0};
    case Tier::kModest:
      return {80.0, 20.0};
    case Tier::kLowEnd:
      return {120.0, 30.0};
    case Tier::kCpuOnly:
      break;
  }
  return {200.0, 50.0};
}

struct PrebufferConfig {
  // Start (or resume) playing when at least this many frames are buffered.
  std::size_t start_frames = 1;
  // While playing, pause and rebuffer when fewer than this many are buffered
  // (0: never pause; an empty FIFO then plays silence, counted as underruns).
  std::size_t pause_frames = 0;

  // Milliseconds at `sample_rate`, rounded to the nearest frame.
  static PrebufferConfig from_ms(double start_ms, double pause_ms,
                                 std::uint32_t sample_rate) noexcept;
  static PrebufferConfig for_tier(Tier tier, std::uint32_t sample_rate) noexcept;
  // Live network audio: start at 2 periods, pause below 1 period.
  static PrebufferConfig low_latency(std::uint32_t period_frames) noexcept;
};

enum class PlaybackState : std::uint8_t { kIdle, kBuffering, kPlaying, kRebuffering, kDraining };

const char* to_string(PlaybackState state) noexcept;

// Used only by tests today; kept for the speech and GPU work that will use it.
class PrebufferManager {
 public:
  using State = PlaybackState;

  struct Stats {
    std::uint64_t transitions = 0;        // state changes
    std::uint64_t rebuffers = 0;          // kPlaying -> kRebuffering (underruns)
    std::uint64_t streams_completed = 0;  // back to kIdle after an end of stream
    std::uint64_t silent_cycles = 0;      // pull() cycles that output silence (not playing)
  };

  // The config is normalised: start_frames >= max(1, pause_frames), so that
  // starting never pauses at once.
  explicit PrebufferManager(PrebufferConfig config) noexcept;
  PrebufferManager(const PrebufferManager&) = delete;
  PrebufferManager& operator=(const PrebufferManager&) = delete;

  const PrebufferConfig& config() const noexcept { return config_; }

  bool should_start_playback(std::size_t buffered_frames) const noexcept {
    return buffered_frames >= config_.start_frames;
  }
  bool should_pause_playback(std::size_t buffered_frames) const noexcept {
    return buffered_frames < config_.pause_frames;
  }

  // Once per audio cycle, before consuming: advances the state machine as far
  // as `buffered_frames` takes it (kIdle with a full buffer goes straight to
  // kPlaying) and returns the new state. `end_of_stream`: the producer has
  // delivered its last frame (pass it on every call from then on; kDraining
  // ignores it, and a new stream starts from kIdle).
  State update(std::size_t buffered_frames, bool end_of_stream = false) noexcept;

  // update() with the FIFO's fill level, then fills `out` (interleaved, the
  // FIFO's channel count): from the FIFO while kPlaying or kDraining, silence
  // otherwise. Returns the real frames. While draining it reads only what is
  // buffered, so the end of a stream is not counted as an underrun.
  std::size_t pull(AudioFifo& fifo, std::span<float> out, bool end_of_stream = false) noexcept;

  // Back to kIdle (the owner thread, e.g. on a seek or a new stream).
  void reset() noexcept;

  State state() const noexcept { return state_.load(std::memory_order_relaxed); }
  // Whether audio from the FIFO goes out in this state.
  static constexpr bool is_playing(State s) noexcept {
    return s == State::kPlaying || s == State::kDraining;
  }
  Stats stats() const noexcept;

 private:
  State next_state(State s, std::size_t buffered, bool eos) const noexcept;

  PrebufferConfig config_;
  std::atomic<State> state_{State::kIdle};
  std::atomic<std::uint64_t> transitions_{0};
  std::atomic<std::uint64_t> rebuffers_{0};
  std::atomic<std::uint64_t> streams_completed_{0};
  std::atomic<std::uint64_t> silent_cycles_{0};
};

}  // namespace jamnet::engine
