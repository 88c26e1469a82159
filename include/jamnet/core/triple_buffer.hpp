// TripleBuffer<T>: hands the latest value from one writer thread to a reader
// thread without locks and without waiting on either side. The writer fills
// its back slot and swaps it with the middle one; the reader swaps the middle
// slot for its front slot when the writer has published since. Each side owns
// one slot at any time, so neither ever sees a half-written value. Values in
// between may be skipped: this carries state (statistics, a parameter set),
// not a stream.
//
// Contract: write() from one thread only, read() from one thread only (or
// serialise readers yourself). T is copied, so keep it trivially copyable
// when the writer is the audio thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace jamnet {

template <class T>
class TripleBuffer {
 public:
  TripleBuffer() = default;
  TripleBuffer(const TripleBuffer&) = delete;
  TripleBuffer& operator=(const TripleBuffer&) = delete;

  // Writer side: publish a new value.
  void write(const T& value) noexcept {
    slots_[back_] = value;
    back_ = middle_.exchange(static_cast<std::uint8_t>(back_ | kFresh), std::memory_order_acq_rel) &
            kIndex;
  }

  // Reader side: the latest published value (a default T before the first write).
  const T& read() noexcept {
    if (middle_.load(std::memory_order_relaxed) & kFresh)
      front_ = middle_.exchange(front_, std::memory_order_acq_rel) & kIndex;
    return slots_[front_];
  }

 private:
  static constexpr std::uint8_t kIndex = 0x3;
  static constexpr std::uint8_t kFresh = 0x4;  // the middle slot holds a value not yet read
  std::array<T, 3> slots_{};
  std::uint8_t back_ = 0;                // writer's slot
  std::atomic<std::uint8_t> middle_{1};  // exchanged between the two
  std::uint8_t front_ = 2;               // reader's slot
};

}  // namespace jamnet
