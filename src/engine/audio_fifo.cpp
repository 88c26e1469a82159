#include "jamnet/engine/audio_fifo.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>

namespace jamnet::engine {
namespace {

static_assert(std::atomic<float>::is_always_lock_free, "samples are touched by the audio thread");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

template <class T>
float to_float(T v) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    return AudioFifo::i16_to_float(v);
  }
}

template <class T>
T from_float(float v) noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    return AudioFifo::float_to_i16(v);
  }
}

}  // namespace

AudioFifo::AudioFifo(std::uint32_t channels, std::size_t capacity_frames, std::uint32_t sample_rate,
                     OverflowPolicy policy)
    : channels_(std::max<std::uint32_t>(1, channels)),
      sample_rate_(std::max<std::uint32_t>(1, sample_rate)),
      capacity_(std::bit_ceil(std::max<std::size_t>(1, capacity_frames))),
      mask_(capacity_ - 1),
      policy_(policy),
      // Value-initialised: every sample starts at 0.0f.
      samples_(std::make_unique<std::atomic<float>[]>(capacity_ * channels_)) {}

std::int16_t AudioFifo::float_to_i16(float x) noexcept {
  if (std::isnan(x)) return 0;
  const float y = x * 32768.0f;  // exact: a power of two
  if (y >= 32767.0f) return 32767;
  if (y <= -32768.0f) return -32768;
  return static_cast<std::int16_t>(std::lrint(y));
}

template <class T>
std::size_t AudioFifo::write_impl(std::span<const T> in) noexcept {
  const std::size_t frames = in.size() / channels_;
  if (frames == 0) return 0;
  const std::uint64_t w = write_.load(std::memory_order_relaxed);
  std::uint64_t r = read_.load(std::memory_order_acquire);
  std::size_t skip = 0;  // leading input frames not stored (kDropOldest, write > capacity)
  std::size_t n = frames;
  std::uint64_t lost = 0;
  if (policy_ == OverflowPolicy::kDropNewest) {
    n = std::min<std::size_t>(frames, capacity_ - static_cast<std::size_t>(w - r));
    lost = frames - n;
  } else {
    if (frames > capacity_) {
      skip = frames - capacity_;
      n = capacity_;
      lost = skip;
    }
    // Evict the oldest unread frames until n fit. The reader may be claiming
    // frames at the same moment: whoever loses the exchange looks again.
    while (capacity_ - static_cast<std::size_t>(w - r) < n) {
      const std::uint64_t evict = n - (capacity_ - (w - r));
      if (read_.compare_exchange_weak(r, r + evict, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        lost += evict;
        break;
      }
    }
  }

  const T* src = in.data() + skip * channels_;
  for (std::size_t f = 0; f < n;) {
    // Up to the end of the ring, then from its start.
    const std::size_t slot = static_cast<std::size_t>((w + f) & mask_);
    const std::size_t run = std::min(n - f, capacity_ - slot);
    std::atomic<float>* dst = samples_.get() + slot * channels_;
    const std::size_t count = run * channels_;
    for (std::size_t i = 0; i < count; ++i) {
      dst[i].store(to_float(src[i]), std::memory_order_relaxed);
    }
    src += count;
    f += run;
  }
  write_.store(w + n, std::memory_order_release);
  frames_written_.fetch_add(n, std::memory_order_relaxed);
  if (lost > 0) overflow_frames_.fetch_add(lost, std::memory_order_relaxed);
  return n;
}

template <class T>
std::size_t AudioFifo::read_impl(std::span<T> out) noexcept {
  const std::size_t frames = out.size() / channels_;
  std::uint64_t r = read_.load(std::memory_order_acquire);
  std::size_t n = 0;
  for (int attempt = 1;; ++attempt) {
    const std::uint64_t w = write_.load(std::memory_order_acquire);
    n = std::min<std::size_t>(frames, w > r ? static_cast<std::size_t>(w - r) : 0);
    for (std::size_t f = 0; f < n;) {
      const std::size_t slot = static_cast<std::size_t>((r + f) & mask_);
      const std::size_t run = std::min(n - f, capacity_ - slot);
      const std::atomic<float>* src = samples_.get() + slot * channels_;
      T* dst = out.data() + f * channels_;
      const std::size_t count = run * channels_;
      for (std::size_t i = 0; i < count; ++i) {
        dst[i] = from_float<T>(src[i].load(std::memory_order_relaxed));
      }
      f += run;
    }
    if (n == 0) break;
    // Claim what was copied. Only a kDropOldest eviction can move read_ under
    // us; then the copy may hold overwritten samples and is made again from
    // the new read index (r now holds it).
    if (read_.compare_exchange_strong(r, r + n, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      break;
    }
    if (attempt == kMaxClaimAttempts) {
      n = 0;
      break;
    }
  }
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(n * channels_), out.end(), T{});
  if (n > 0) frames_read_.fetch_add(n, std::memory_order_relaxed);
  if (n < frames) {
    underrun_events_.fetch_add(1, std::memory_order_relaxed);
    silent_frames_.fetch_add(frames - n, std::memory_order_relaxed);
  }
  return n;
}

std::size_t AudioFifo::write(std::span<const float> interleaved) noexcept {
  return write_impl(interleaved);
}

std::size_t AudioFifo::write_i16(std::span<const std::int16_t> interleaved) noexcept {
  return write_impl(interleaved);
}

std::size_t AudioFifo::write_locked(std::span<const float> interleaved) {
  const std::lock_guard lock(writers_);
  return write_impl(interleaved);
}

std::size_t AudioFifo::write_i16_locked(std::span<const std::int16_t> interleaved) {
  const std::lock_guard lock(writers_);
  return write_impl(interleaved);
}

std::size_t AudioFifo::read(std::span<float> out) noexcept {
  return read_impl(out);
}

std::size_t AudioFifo::read_i16(std::span<std::int16_t> out) noexcept {
  return read_impl(out);
}

std::size_t AudioFifo::read_wait(std::span<float> out, Nanos timeout_ns) {
  const std::size_t want = std::min<std::size_t>(out.size() / channels_, capacity_);
  const Nanos deadline = monotonic_ns() + std::max<Nanos>(0, timeout_ns);
  while (buffered_frames() < want) {
    const Nanos now = monotonic_ns();
    if (now >= deadline) break;
    // Polling, not a condition variable: the producer may be the audio
    // thread, which must not make the syscall a notify can be.
    sleep_until_ns(std::min(deadline, now + kWaitPollNs));
  }
  return read_impl(out);
}

std::size_t AudioFifo::buffered_frames() const noexcept {
  // read_ first: write_ only grows and is never behind a read_ seen earlier.
  const std::uint64_t r = read_.load(std::memory_order_acquire);
  const std::uint64_t w = write_.load(std::memory_order_acquire);
  return w > r ? static_cast<std::size_t>(std::min<std::uint64_t>(w - r, capacity_)) : 0;
}

double AudioFifo::buffered_seconds() const noexcept {
  return static_cast<double>(buffered_frames()) / sample_rate_;
}

AudioFifo::Stats AudioFifo::stats() const noexcept {
  Stats s;
  s.frames_written = frames_written_.load(std::memory_order_relaxed);
  s.frames_read = frames_read_.load(std::memory_order_relaxed);
  s.overflow_frames = overflow_frames_.load(std::memory_order_relaxed);
  s.underrun_events = underrun_events_.load(std::memory_order_relaxed);
  s.silent_frames = silent_frames_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace jamnet::engine
