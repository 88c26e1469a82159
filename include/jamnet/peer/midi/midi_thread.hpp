// The thread of a MIDI part (the send thread, the playout thread): started
// once, stopped by clearing its flag and waking it through the part's
// condition variable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <thread>
#include <utility>

namespace jamnet::midi {

class MidiThread {
 public:
  template <class Loop>
  void start(Loop&& loop) {
    running_ = true;
    thread_ = std::thread(std::forward<Loop>(loop));
  }
  void stop(std::condition_variable& wake) {
    running_ = false;
    wake.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool running() const noexcept { return running_.load(); }

 private:
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace jamnet::midi
