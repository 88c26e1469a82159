// SpscQueue<T>: a bounded lock-free single-producer single-consumer ring.
//
// In the style of PipeWire's spa ringbuffer: two monotonically increasing
// indices, each written by exactly one side, published with release and read
// with acquire; the slot index is `index & mask` (the capacity is a power of
// two). All storage is allocated in the constructor; try_push/try_pop never
// allocate, lock or make a syscall, so either side may be the audio thread.
//
// Contract: try_push is called from one thread only (the producer) and
// try_pop from one thread only (the consumer). Nothing else synchronises them.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace jamnet {

template <class T>
class SpscQueue {
  static_assert(std::is_default_constructible_v<T>, "slots are constructed up front");
  static_assert(std::is_nothrow_move_assignable_v<T> || std::is_nothrow_copy_assignable_v<T>,
                "push/pop must not throw on the audio thread");

 public:
  // The capacity is `min_capacity` rounded up to a power of two (at least 1).
  explicit SpscQueue(std::size_t min_capacity)
      : capacity_(std::bit_ceil(min_capacity == 0 ? std::size_t{1} : min_capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<T[]>(capacity_)) {}

  SpscQueue(const SpscQueue&) = delete;
  SpscQueue& operator=(const SpscQueue&) = delete;

  // Producer side. Returns false (and leaves the queue unchanged) when full.
  bool try_push(const T& value) noexcept(std::is_nothrow_copy_assignable_v<T>) {
    const std::uint64_t w = write_.load(std::memory_order_relaxed);
    if (w - read_cache_ >= capacity_) {
      read_cache_ = read_.load(std::memory_order_acquire);
      if (w - read_cache_ >= capacity_) return false;
    }
    slots_[w & mask_] = value;
    write_.store(w + 1, std::memory_order_release);
    return true;
  }

  bool try_push(T&& value) noexcept(std::is_nothrow_move_assignable_v<T>) {
    const std::uint64_t w = write_.load(std::memory_order_relaxed);
    if (w - read_cache_ >= capacity_) {
      read_cache_ = read_.load(std::memory_order_acquire);
      if (w - read_cache_ >= capacity_) return false;
    }
    slots_[w & mask_] = std::move(value);
    write_.store(w + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. Returns false (and leaves `out` unchanged) when empty.
  bool try_pop(T& out) noexcept(std::is_nothrow_move_assignable_v<T>) {
    const std::uint64_t r = read_.load(std::memory_order_relaxed);
    if (r == write_cache_) {
      write_cache_ = write_.load(std::memory_order_acquire);
      if (r == write_cache_) return false;
    }
    out = std::move(slots_[r & mask_]);
    read_.store(r + 1, std::memory_order_release);
    return true;
  }

  // Producer side: every value or none (false, unchanged, when there is no
  // room for all of them). For samples: a block lands whole or not at all.
  bool try_push_all(std::span<const T> values) noexcept(std::is_nothrow_copy_assignable_v<T>) {
    const std::uint64_t w = write_.load(std::memory_order_relaxed);
    if (w + values.size() - read_cache_ > capacity_) {
      read_cache_ = read_.load(std::memory_order_acquire);
      if (w + values.size() - read_cache_ > capacity_) return false;
    }
    for (std::size_t i = 0; i < values.size(); ++i) slots_[(w + i) & mask_] = values[i];
    write_.store(w + values.size(), std::memory_order_release);
    return true;
  }

  // Consumer side: up to out.size() values, oldest first; returns how many.
  std::size_t pop_some(std::span<T> out) noexcept(std::is_nothrow_move_assignable_v<T>) {
    const std::uint64_t r = read_.load(std::memory_order_relaxed);
    write_cache_ = write_.load(std::memory_order_acquire);
    const auto n = static_cast<std::size_t>(
        std::min<std::uint64_t>(write_cache_ - r, static_cast<std::uint64_t>(out.size())));
    for (std::size_t i = 0; i < n; ++i) out[i] = std::move(slots_[(r + i) & mask_]);
    read_.store(r + n, std::memory_order_release);
    return n;
  }

  std::size_t capacity() const noexcept { return capacity_; }

  // Exact when called from either side while the other is idle; otherwise a
  // snapshot that may be stale by the time it is used.
  std::size_t size_approx() const noexcept {
    const std::uint64_t r = read_.load(std::memory_order_acquire);
    const std::uint64_t w = write_.load(std::memory_order_acquire);
    return w >= r ? static_cast<std::size_t>(w - r) : 0;
  }
  bool empty_approx() const noexcept { return size_approx() == 0; }

 private:
  // 64 bytes: the destructive interference size of x86-64 and most ARM cores
  // (std::hardware_destructive_interference_size warns on GCC as ABI-unstable).
  static constexpr std::size_t kLine = 64;

  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<T[]> slots_;

  // Producer-owned: its index and its cached view of the consumer's index.
  alignas(kLine) std::atomic<std::uint64_t> write_{0};
  std::uint64_t read_cache_ = 0;
  // Consumer-owned: its index and its cached view of the producer's index.
  alignas(kLine) std::atomic<std::uint64_t> read_{0};
  std::uint64_t write_cache_ = 0;
  // Keep whatever follows the queue off the consumer's line.
  alignas(kLine) char tail_pad_[1] = {};
};

}  // namespace jamnet
