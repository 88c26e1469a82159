// AudioFifo: a bounded FIFO of interleaved float32 audio between a producer
// (a decoder, a network thread, a TTS worker) and the audio callback.
//
// 004 §1.4 asked for an Arc<Mutex<VecDeque>>; the audio callback must not
// take a lock a producer may hold, so this is a lock-free single-producer
// single-consumer ring in the style of core/spsc_queue.hpp (indices in frames,
// written by one side each, release/acquire), holding sample blocks instead of
// objects. All storage is allocated in the constructor.
//
// Overfill: a write that does not fit keeps what fits (kDropNewest, default:
// the newest frames are dropped) or makes room by discarding the oldest
// unread frames (kDropOldest: the listener hears the newest audio, the latency
// stays bounded). Both are counted as overflow frames. kDropOldest moves the
// reader's index from the writer's side, so the reader claims its frames with
// a compare-exchange and copies again when the writer evicted them meanwhile;
// the samples are relaxed atomics, so a copy that races an eviction is a
// discarded copy, never a data race.
//
// Underrun: read() always fills its whole output, padding with silence, and
// counts the event and the silent frames.
//
// Threads: write()/write_i16() from one producer thread, read()/read_i16()/
// read_wait() from one consumer thread; both lock-free and allocation-free
// (read_wait sleeps: not for the audio thread). Several producer threads must
// all use write_locked()/write_i16_locked(), which serialise the producers on
// a mutex the consumer never touches, so the audio thread still never blocks.
// The observers (buffered_*, stats) may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "jamnet/core/clock.hpp"

namespace jamnet::engine {

enum class OverflowPolicy : std::uint8_t {
  kDropNewest,  // keep what fits of a write, drop the rest of it
  kDropOldest,  // discard the oldest unread frames to make room
};

// Used only by tests today; kept for the speech and GPU work that will use it.
class AudioFifo {
 public:
  struct Stats {
    std::uint64_t frames_written = 0;   // frames stored by writes
    std::uint64_t frames_read = 0;      // real (not padded) frames handed to reads
    std::uint64_t overflow_frames = 0;  // frames lost to overfill: rejected or evicted
    std::uint64_t underrun_events = 0;  // reads that had to pad with silence
    std::uint64_t silent_frames = 0;    // frames of padding
  };

  // How often read_wait looks at the fill level.
  static constexpr Nanos kWaitPollNs = 500'000;
  // A reader whose claim loses this many races in a row against a writer that
  // keeps evicting (kDropOldest, overfilled every time) gives up for this
  // cycle and outputs silence, so a read stays bounded.
  static constexpr int kMaxClaimAttempts = 8;

  // `capacity_frames` is rounded up to a power of two (at least 1); `channels`
  // and `sample_rate` to at least 1.
  AudioFifo(std::uint32_t channels, std::size_t capacity_frames, std::uint32_t sample_rate,
            OverflowPolicy policy = OverflowPolicy::kDropNewest);
  AudioFifo(const AudioFifo&) = delete;
  AudioFifo& operator=(const AudioFifo&) = delete;

  // Producer side. Takes whole frames (a trailing partial frame is ignored)
  // and returns the frames stored: fewer than given on overfill with
  // kDropNewest; with kDropOldest all of them, or the last capacity_frames()
  // when the write is bigger than the whole FIFO.
  std::size_t write(std::span<const float> interleaved) noexcept;
  // int16 input, converted as s / 32768.
  std::size_t write_i16(std::span<const std::int16_t> interleaved) noexcept;
  // The same for several producer threads (see the header comment).
  std::size_t write_locked(std::span<const float> interleaved);
  std::size_t write_i16_locked(std::span<const std::int16_t> interleaved);

  // Consumer side. Fills all of `out` (whole frames; a trailing partial frame
  // is zeroed), padding with silence on underrun; returns the real frames.
  std::size_t read(std::span<float> out) noexcept;
  // int16 output: round to nearest (ties to even), saturating; NaN is 0.
  std::size_t read_i16(std::span<std::int16_t> out) noexcept;
  // For consumers that are not the audio thread: sleep-polls every
  // kWaitPollNs until `out` can be filled (or the FIFO is full, when `out` is
  // bigger than it) or `timeout_ns` passed, then reads as read() does.
  std::size_t read_wait(std::span<float> out, Nanos timeout_ns);

  // Any thread; exact when both sides are idle, a snapshot otherwise.
  std::size_t buffered_frames() const noexcept;
  double buffered_seconds() const noexcept;  // 004's buffer_length_seconds()
  std::size_t free_frames() const noexcept { return capacity_ - buffered_frames(); }
  Stats stats() const noexcept;

  std::size_t capacity_frames() const noexcept { return capacity_; }
  double capacity_seconds() const noexcept { return static_cast<double>(capacity_) / sample_rate_; }
  std::uint32_t channels() const noexcept { return channels_; }
  std::uint32_t sample_rate() const noexcept { return sample_rate_; }
  OverflowPolicy policy() const noexcept { return policy_; }

  static float i16_to_float(std::int16_t s) noexcept { return static_cast<float>(s) / 32768.0f; }
  static std::int16_t float_to_i16(float x) noexcept;

 private:
  template <class T>
  std::size_t write_impl(std::span<const T> in) noexcept;
  template <class T>
  std::size_t read_impl(std::span<T> out) noexcept;

  static constexpr std::size_t kLine = 64;  // as in core/spsc_queue.hpp

  const std::uint32_t channels_;
  const std::uint32_t sample_rate_;
  const std::size_t capacity_;  // frames, a power of two
  const std::size_t mask_;
  const OverflowPolicy policy_;
  std::unique_ptr<std::atomic<float>[]> samples_;  // capacity_ * channels_
  std::mutex writers_;                             // write_locked only

  // Producer-owned index and counters.
  alignas(kLine) std::atomic<std::uint64_t> write_{0};
  std::atomic<std::uint64_t> frames_written_{0};
  std::atomic<std::uint64_t> overflow_frames_{0};
  // Consumer-owned index (also advanced by kDropOldest evictions) and counters.
  alignas(kLine) std::atomic<std::uint64_t> read_{0};
  std::atomic<std::uint64_t> frames_read_{0};
  std::atomic<std::uint64_t> underrun_events_{0};
  std::atomic<std::uint64_t> silent_frames_{0};
  alignas(kLine) char tail_pad_[1] = {};
};

}  // namespace jamnet::engine
