// Polls `pred` until it holds or `limit` passes; the result of a last look.
// For tests that wait on other threads (receive, control, playout).
#pragma once

#include <chrono>
#include <thread>

namespace jamnet::testing {

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(2000),
              std::chrono::milliseconds poll = std::chrono::milliseconds(2)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(poll);
  }
  return pred();
}

}  // namespace jamnet::testing
