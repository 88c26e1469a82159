// MpscQueue<T>: a bounded lock-free multi-producer single-consumer queue.
//
// Dmitry Vyukov's bounded MPMC design with the consumer side simplified to one
// thread. Each slot carries a sequence number that says whose turn it is: a
// slot at position p is free for the producer that claims p when its sequence
// is p, and holds a value for the consumer when it is p + 1; the consumer hands
// it back for position p + capacity. Producers claim positions with one CAS on
// a shared counter, write the value, then publish it with a release store of
// the sequence, so the value and its "ready" mark travel together. All storage
// is allocated in the constructor; try_push/try_pop never allocate, lock or
// make a syscall.
//
// Progress: neither side ever waits. A producer that has claimed a slot but
// not yet published it (preempted between the CAS and the store) makes the
// consumer see "empty" at that slot until it publishes, and the values pushed
// behind it wait with it; nothing is lost or reordered. Per-producer FIFO
// holds: one producer's pushes claim increasing positions and the consumer
// takes positions in order.
//
// Contract: try_push from any number of threads, try_pop from one thread only.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace jamnet {

template <class T>
class MpscQueue {
  static_assert(std::is_default_constructible_v<T>, "slots are constructed up front");
  static_assert(std::is_nothrow_copy_assignable_v<T>, "try_push must not throw");
  static_assert(std::is_nothrow_move_assignable_v<T>, "try_pop must not throw");

 public:
  // The capacity is `min_capacity` rounded up to a power of two, at least 2
  // (with one slot the "free" and "full" sequence numbers would coincide).
  explicit MpscQueue(std::size_t min_capacity)
      : capacity_(std::bit_ceil(std::max<std::size_t>(min_capacity, 2))),
        mask_(capacity_ - 1),
        cells_(std::make_unique<Cell[]>(capacity_)) {
    for (std::size_t i = 0; i < capacity_; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }

  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Any thread. Returns false (and leaves the queue unchanged) when full.
  bool try_push(const T& value) noexcept { return push(value); }
  // Moves `value` in only when there is room; on false it is left as it was.
  // Handing back the last reference to something this way leaves the freeing
  // to the consumer (a copy could race the consumer's drop and free here).
  bool try_push(T&& value) noexcept { return push(std::move(value)); }

  // The consumer thread only. Returns false (and leaves `out` unchanged) when
  // nothing is ready at the head.
  bool try_pop(T& out) noexcept {
    const std::uint64_t pos = dequeue_.load(std::memory_order_relaxed);
    Cell& cell = cells_[pos & mask_];
    if (cell.seq.load(std::memory_order_acquire) != pos + 1) return false;
    out = std::move(cell.value);
    cell.seq.store(pos + capacity_, std::memory_order_release);
    dequeue_.store(pos + 1, std::memory_order_release);
    return true;
  }

  std::size_t capacity() const noexcept { return capacity_; }

  // Claimed minus taken positions: includes values still being written. A
  // snapshot that may be stale by the time it is used.
  std::size_t size_approx() const noexcept {
    const std::uint64_t d = dequeue_.load(std::memory_order_acquire);
    const std::uint64_t e = enqueue_.load(std::memory_order_acquire);
    return e >= d ? static_cast<std::size_t>(std::min<std::uint64_t>(e - d, capacity_)) : 0;
  }
  bool empty_approx() const noexcept { return size_approx() == 0; }

 private:
  template <class U>
  bool push(U&& value) noexcept {
    std::uint64_t pos = enqueue_.load(std::memory_order_relaxed);
    Cell* cell = nullptr;
    for (;;) {
      cell = &cells_[pos & mask_];
      const std::uint64_t seq = cell->seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        // Our turn at this slot if no other producer claims `pos` first; on
        // failure the CAS reloads `pos` and we look again.
        if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (diff < 0) {
        // The slot still holds the value from one lap ago: full.
        return false;
      } else {
        // Another producer took `pos` and already published; catch up.
        pos = enqueue_.load(std::memory_order_relaxed);
      }
    }
    cell->value = std::forward<U>(value);
    cell->seq.store(pos + 1, std::memory_order_release);
    return true;
  }
  // 64 bytes: the destructive interference size of x86-64 and most ARM cores
  // (std::hardware_destructive_interference_size warns on GCC as ABI-unstable).
  static constexpr std::size_t kLine = 64;

  struct Cell {
    std::atomic<std::uint64_t> seq{0};
    T value{};
  };

  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<Cell[]> cells_;

  // Shared by all producers.
  alignas(kLine) std::atomic<std::uint64_t> enqueue_{0};
  // Consumer-owned (read by size_approx from anywhere).
  alignas(kLine) std::atomic<std::uint64_t> dequeue_{0};
  // Keep whatever follows the queue off the consumer's line.
  alignas(kLine) char tail_pad_[1] = {};
};

}  // namespace jamnet
