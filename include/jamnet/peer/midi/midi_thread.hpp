// The thread of a MIDI part (the send thread, the playout thread): started
// once, stopped by clearing its flag and waking it.
#pragma once

#include <atomic>
#include <thread>
#include <utility>

#include "jamnet/core/wakeup.hpp"

namespace jamnet::midi {

class MidiThread {
 public:
  template <class Loop>
  void start(Loop&& loop) {
    running_ = true;
    thread_ = std::thread(std::forward<Loop>(loop));
  }
  void stop(Wakeup& wake) {
    running_ = false;
    wake.post();
    if (thread_.joinable()) thread_.join();
  }
  bool running() const noexcept { return running_.load(); }

 private:
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace jamnet::midi
