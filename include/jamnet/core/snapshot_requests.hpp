// SnapshotRequests: how other threads read state that one real-time thread
// owns (the transport's per-source tables, the MIDI playout's per-peer
// state) without that thread ever waiting, locking contended or allocating.
//
// A reader asks (a counter), wakes the owner and waits; the owner, between
// two pieces of work, sees the request and publishes a snapshot into storage
// reserved up front, under a mutex it only try-locks (a reader copying the
// previous snapshot makes it try again at its next wake, never wait). When no
// thread serves (not started yet, or stopped) the reader publishes the
// snapshot itself, on its own thread. The snapshot storage belongs to the
// owning class; this holds the protocol and the mutex that guards it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "jamnet/core/clock.hpp"

namespace jamnet {

class SnapshotRequests {
 public:
  // A reader gives up waiting after this and reads the last snapshot served.
  static constexpr Nanos kReaderPatienceNs = 1'000'000'000;

  // The owner thread starts (before it runs) and stops (after it joined).
  void set_serving(bool on) noexcept { serving_.store(on, std::memory_order_release); }
  bool serving() const noexcept { return serving_.load(std::memory_order_acquire); }
  // A request waits: the owner should look again soon rather than sleep long.
  bool pending() const noexcept {
    return requested_.load(std::memory_order_relaxed) != served_.load(std::memory_order_relaxed);
  }

  // Owner thread: when a reader asked, publish() fills the snapshot. Never waits.
  template <class Publish>
  void serve(Publish&& publish) {
    const std::uint64_t want = requested_.load(std::memory_order_acquire);
    if (want == served_.load(std::memory_order_relaxed)) return;
    if (!mu_.try_lock()) return;
    publish();
    mu_.unlock();
    served_.store(want, std::memory_order_release);
  }

  // Reader (not real-time): a snapshot at least as new as this call, then
  // read() under the lock. wake() rouses the owner; publish_here() makes
  // the snapshot on this thread when no owner serves.
  template <class Wake, class PublishHere, class Read>
  void read_fresh(Wake&& wake, PublishHere&& publish_here, Read&& read) const {
    if (serving()) {
      const std::uint64_t want = requested_.fetch_add(1, std::memory_order_acq_rel) + 1;
      wake();
      const Nanos deadline = monotonic_ns() + kReaderPatienceNs;
      while (served_.load(std::memory_order_acquire) < want && serving() &&
             monotonic_ns() < deadline) {
        sleep_until_ns(monotonic_ns() + 20'000);
      }
      std::lock_guard lock(mu_);
      if (served_.load(std::memory_order_acquire) < want && !serving()) publish_here();
      read();
      return;
    }
    std::lock_guard lock(mu_);
    publish_here();
    read();
  }

  // For owners with more to do under the same lock once they stopped.
  std::mutex& mutex() const noexcept { return mu_; }

 private:
  std::atomic<bool> serving_{false};
  mutable std::atomic<std::uint64_t> requested_{0};
  std::atomic<std::uint64_t> served_{0};
  mutable std::mutex mu_;
};

}  // namespace jamnet
