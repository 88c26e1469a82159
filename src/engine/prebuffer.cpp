#include "jamnet/engine/prebuffer.hpp"

#include <algorithm>
#include <cmath>

namespace jamnet::engine {
namespace {

std::size_t ms_to_frames(double ms, std::uint32_t sample_rate) noexcept {
  if (!(ms > 0.0)) return 0;  // also NaN
  return static_cast<std::size_t>(std::llround(ms * sample_rate / 1000.0));
}

// Every path through the state machine settles within this many steps
// (kIdle -> kBuffering -> kDraining -> kIdle is the longest).
constexpr int kMaxStepsPerUpdate = 4;

}  // namespace

PrebufferConfig PrebufferConfig::from_ms(double start_ms, double pause_ms,
                                         std::uint32_t sample_rate) noexcept {
  return PrebufferConfig{ms_to_frames(start_ms, sample_rate), ms_to_frames(pause_ms, sample_rate)};
}

PrebufferConfig PrebufferConfig::for_tier(Tier tier, std::uint32_t sample_rate) noexcept {
  const TierThresholds t = tier_thresholds(tier);
  return from_ms(t.start_ms, t.pause_ms, sample_rate);
}

PrebufferConfig PrebufferConfig::low_latency(std::uint32_t period_frames) noexcept {
  const std::size_t period = std::max<std::uint32_t>(1, period_frames);
  return PrebufferConfig{2 * period, period};
}

const char* to_string(PlaybackState state) noexcept {
  switch (state) {
    case PlaybackState::kIdle:
      return "idle";
    case PlaybackState::kBuffering:
      return "buffering";
    case PlaybackState::kPlaying:
      return "playing";
    case PlaybackState::kRebuffering:
      return "rebuffering";
    case PlaybackState::kDraining:
      return "draining";
  }
  return "?";
}

PrebufferManager::PrebufferManager(PrebufferConfig config) noexcept : config_(config) {
  config_.start_frames = std::max({config_.start_frames, config_.pause_frames, std::size_t{1}});
}

PrebufferManager::State PrebufferManager::next_state(State s, std::size_t buffered,
                                                     bool eos) const noexcept {
  switch (s) {
    case State::kIdle:
      return buffered > 0 ? State::kBuffering : State::kIdle;
    case State::kBuffering:
    case State::kRebuffering:
      // The producer is done: waiting for the start threshold could wait
      // forever, so play out what there is.
      if (eos) return buffered > 0 ? State::kDraining : State::kIdle;
      return should_start_playback(buffered) ? State::kPlaying : s;
    case State::kPlaying:
      if (eos) return State::kDraining;
      return should_pause_playback(buffered) ? State::kRebuffering : State::kPlaying;
    case State::kDraining:
      return buffered == 0 ? State::kIdle : State::kDraining;
  }
  return State::kIdle;
}

PrebufferManager::State PrebufferManager::update(std::size_t buffered_frames,
                                                 bool end_of_stream) noexcept {
  State s = state_.load(std::memory_order_relaxed);
  for (int step = 0; step < kMaxStepsPerUpdate; ++step) {
    const State n = next_state(s, buffered_frames, end_of_stream);
    if (n == s) break;
    transitions_.fetch_add(1, std::memory_order_relaxed);
    if (s == State::kPlaying && n == State::kRebuffering) {
      rebuffers_.fetch_add(1, std::memory_order_relaxed);
    }
    if (n == State::kIdle) streams_completed_.fetch_add(1, std::memory_order_relaxed);
    s = n;
  }
  state_.store(s, std::memory_order_relaxed);
  return s;
}

std::size_t PrebufferManager::pull(AudioFifo& fifo, std::span<float> out,
                                   bool end_of_stream) noexcept {
  const std::size_t buffered = fifo.buffered_frames();
  const State s = update(buffered, end_of_stream);
  if (s == State::kPlaying) return fifo.read(out);
  if (s == State::kDraining) {
    // Only what is there; the rest of the cycle is the end of the stream.
    const std::size_t want = out.size() / fifo.channels();
    const std::size_t n = std::min(want, buffered) * fifo.channels();
    const std::size_t got = fifo.read(out.first(n));
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), 0.0f);
    return got;
  }
  std::fill(out.begin(), out.end(), 0.0f);
  silent_cycles_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

void PrebufferManager::reset() noexcept {
  if (state_.exchange(State::kIdle, std::memory_order_relaxed) != State::kIdle) {
    transitions_.fetch_add(1, std::memory_order_relaxed);
  }
}

PrebufferManager::Stats PrebufferManager::stats() const noexcept {
  Stats s;
  s.transitions = transitions_.load(std::memory_order_relaxed);
  s.rebuffers = rebuffers_.load(std::memory_order_relaxed);
  s.streams_completed = streams_completed_.load(std::memory_order_relaxed);
  s.silent_cycles = silent_cycles_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace jamnet::engine
