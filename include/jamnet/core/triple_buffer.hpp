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
//
// make_triple_buffer() turns that contract into types: it returns one
// TripleBufferWriter and one TripleBufferReader sharing the buffer. Neither
// handle can be copied, only moved, so there is exactly one of each and the
// thread that holds it is the only one that can write (or read). A
// second writer is then a compile error instead of a torn value at run time
// (source 003 "Steady Pulse" phase 1: a triple buffer written from two threads).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

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

template <class T>
struct TripleBufferPair;
template <class T>
TripleBufferPair<T> make_triple_buffer();

// The writing end. Move it to the writer thread's owner; write() must not be
// called on a moved-from handle (valid() is false there).
template <class T>
class TripleBufferWriter {
 public:
  TripleBufferWriter() = default;  // empty: valid() is false
  TripleBufferWriter(const TripleBufferWriter&) = delete;
  TripleBufferWriter& operator=(const TripleBufferWriter&) = delete;
  TripleBufferWriter(TripleBufferWriter&&) noexcept = default;
  TripleBufferWriter& operator=(TripleBufferWriter&&) noexcept = default;

  void write(const T& value) noexcept { buffer_->write(value); }
  bool valid() const noexcept { return buffer_ != nullptr; }

 private:
  template <class U>
  friend TripleBufferPair<U> make_triple_buffer();
  explicit TripleBufferWriter(std::shared_ptr<TripleBuffer<T>> buffer)
      : buffer_(std::move(buffer)) {}

  std::shared_ptr<TripleBuffer<T>> buffer_;
};

// The reading end. The reference read() returns stays valid and unchanged
// until the next read() on this handle.
template <class T>
class TripleBufferReader {
 public:
  TripleBufferReader() = default;  // empty: valid() is false
  TripleBufferReader(const TripleBufferReader&) = delete;
  TripleBufferReader& operator=(const TripleBufferReader&) = delete;
  TripleBufferReader(TripleBufferReader&&) noexcept = default;
  TripleBufferReader& operator=(TripleBufferReader&&) noexcept = default;

  const T& read() noexcept { return buffer_->read(); }
  bool valid() const noexcept { return buffer_ != nullptr; }

 private:
  template <class U>
  friend TripleBufferPair<U> make_triple_buffer();
  explicit TripleBufferReader(std::shared_ptr<TripleBuffer<T>> buffer)
      : buffer_(std::move(buffer)) {}

  std::shared_ptr<TripleBuffer<T>> buffer_;
};

template <class T>
struct TripleBufferPair {
  TripleBufferWriter<T> writer;
  TripleBufferReader<T> reader;
};

// Allocates the buffer (the only allocation: the handles then never allocate).
// The buffer lives until both handles are gone; drop the audio thread's handle
// off the audio thread, since the last owner frees it.
template <class T>
TripleBufferPair<T> make_triple_buffer() {
  auto buffer = std::make_shared<TripleBuffer<T>>();
  TripleBufferPair<T> pair;
  pair.writer = TripleBufferWriter<T>(buffer);
  pair.reader = TripleBufferReader<T>(std::move(buffer));
  return pair;
}

}  // namespace jamnet
