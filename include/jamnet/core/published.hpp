// Published<T>: a read-mostly value that real-time threads read without a
// lock or an allocation while other threads replace it now and then (who
// listens to which topic, where each peer is).
//
// Writers build a new immutable T and publish() it; readers take a Reader,
// which pins whatever T was current while it lives. A replaced T is freed by
// a later writer (or by reclaim()) once no reader is inside: readers count
// themselves in and out of a shared counter, and the writer frees only when
// it reads zero after the swap (every reader that could still hold the old
// pointer counted itself in before loading it). Writers never wait for
// readers, so a reader may publish (a handler that subscribes) without
// deadlock; the old values then wait for the next writer or reclaim().
//
// Contract: read() from any thread, real-time ones included; publish() and
// reclaim() from non-real-time threads (they allocate and lock).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace jamnet {

template <class T>
class Published {
 public:
  explicit Published(std::unique_ptr<const T> initial = std::make_unique<const T>())
      : current_(initial.get()) {
    owned_ = std::move(initial);
  }
  ~Published() = default;
  Published(const Published&) = delete;
  Published& operator=(const Published&) = delete;

  class Reader {
   public:
    explicit Reader(const Published& p) noexcept : p_(p) {
      p_.readers_.fetch_add(1, std::memory_order_seq_cst);
      value_ = p_.current_.load(std::memory_order_seq_cst);
    }
    ~Reader() { p_.readers_.fetch_sub(1, std::memory_order_seq_cst); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    const T& operator*() const noexcept { return *value_; }
    const T* operator->() const noexcept { return value_; }

   private:
    const Published& p_;
    const T* value_;
  };

  Reader read() const noexcept { return Reader(*this); }

  void publish(std::unique_ptr<const T> next) {
    std::lock_guard lock(mu_);
    current_.store(next.get(), std::memory_order_seq_cst);
    retired_.push_back(std::move(owned_));
    owned_ = std::move(next);
    reclaim_locked();
  }

  // Copy of the current value, changed by `edit`, published: the usual way
  // to add or remove one entry. Writers are serialised.
  template <class Edit>
  void update(Edit edit) {
    std::lock_guard lock(mu_);
    auto next = std::make_unique<T>(*owned_);
    edit(*next);
    current_.store(next.get(), std::memory_order_seq_cst);
    retired_.push_back(std::move(owned_));
    owned_ = std::move(next);
    reclaim_locked();
  }

  // Waits (up to `limit_ns`) until no reader but the caller's own `own`
  // pins is inside: after an entry was removed, no other thread still uses
  // it. False on timeout.
  bool wait_for_readers(long long limit_ns, int own = 0) const {
    const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(limit_ns);
    while (readers_.load(std::memory_order_seq_cst) > own) {
      if (std::chrono::steady_clock::now() >= end) return false;
      std::this_thread::yield();
    }
    return true;
  }

  // Frees replaced values no reader can still see.
  void reclaim() {
    std::lock_guard lock(mu_);
    reclaim_locked();
  }

 private:
  // Bounded: past kMaxRetired old values the writer waits a little (readers
  // pin for microseconds) rather than let them pile up while readers are
  // always inside somewhere (a busy receive thread).
  static constexpr std::size_t kMaxRetired = 16;
  void reclaim_locked() {
    if (retired_.empty()) return;
    if (readers_.load(std::memory_order_seq_cst) == 0 ||
        (retired_.size() >= kMaxRetired && wait_for_readers(2'000'000)))
      retired_.clear();
  }

  std::atomic<const T*> current_;
  mutable std::atomic<int> readers_{0};
  std::mutex mu_;  // writers
  std::unique_ptr<const T> owned_;
  std::vector<std::unique_ptr<const T>> retired_;
};

}  // namespace jamnet
