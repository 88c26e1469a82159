// Wakeup: how a real-time worker sleeps until another thread hands it work or
// a deadline on the monotonic clock passes (the MIDI send and playout
// threads, the audio sender, the registry's control thread).
//
// A POSIX semaphore: post() is one atomic add (and a futex wake only when the
// worker sleeps), never a lock or an allocation, so real-time threads may
// post. Posts count up; the worker drains them before looking for work, so
// a hundred posts cost one wake, and a post that races with the look makes
// the next wait return at once (nothing is missed).
#pragma once

#include <semaphore.h>

#include <cerrno>
#include <ctime>

#include "jamnet/core/clock.hpp"

namespace jamnet {

class Wakeup {
 public:
  Wakeup() noexcept { ::sem_init(&sem_, 0, 0); }
  ~Wakeup() { ::sem_destroy(&sem_); }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // Any thread, real-time ones included.
  void post() noexcept { ::sem_post(&sem_); }

  // The worker: sleeps until a post (true) or until the monotonic clock
  // reads `deadline` (false). Posts made before the call return at once.
  bool wait_until(Nanos deadline) noexcept {
    const timespec ts{static_cast<time_t>(deadline / 1'000'000'000),
                      static_cast<long>(deadline % 1'000'000'000)};
    for (;;) {
      if (::sem_clockwait(&sem_, CLOCK_MONOTONIC, &ts) == 0) return true;
      if (errno != EINTR) return false;
    }
  }
  bool wait_for(Nanos ns) noexcept { return wait_until(monotonic_ns() + ns); }
  // The worker, before it looks for work: the posts so far are answered.
  void drain() noexcept {
    while (::sem_trywait(&sem_) == 0) {
    }
  }

 private:
  sem_t sem_;
};

}  // namespace jamnet
