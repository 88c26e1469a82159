// The stress load of the real-time benchmarks (source 003 "Steady Pulse",
// phase 0): the second core kept busy by a spinning thread at normal
// priority, and, when an engine is given, a burst command load: 10 bursts of
// 1000 normal commands and 1 burst of 1000 priority commands per second.
// Runs from construction to destruction.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/engine/engine.hpp"

namespace jamnet::bench {

class StressLoad {
 public:
  explicit StressLoad(engine::Engine* e) {
    threads_.emplace_back([this] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(1 % std::max(1u, std::thread::hardware_concurrency()), &set);
      ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set);
      volatile std::uint64_t spin = 0;
      while (!stop_.load(std::memory_order_relaxed)) spin = spin + 1;
    });
    if (e == nullptr) return;
    // Gains and state refreshes.
    threads_.emplace_back([this, e] {
      std::mt19937 rng(1);
      Nanos next = monotonic_ns();
      while (!stop_.load()) {
        for (int i = 0; i < 1000; ++i) {
          engine::Command c;
          c.kind = (i % 100 == 0) ? engine::CommandKind::kStateSync : engine::CommandKind::kGain;
          c.target = static_cast<std::uint16_t>(rng() % 2);
          c.value = 0.5f + static_cast<float>(rng() % 100) / 200.0f;
          if (!e->push(c)) rejected_.fetch_add(1, std::memory_order_relaxed);
        }
        next += 100'000'000;
        sleep_until_ns(next);
      }
    });
    // Notes, hits, live params.
    threads_.emplace_back([this, e] {
      Nanos next = monotonic_ns() + 50'000'000;
      std::uint32_t n = 0;
      while (!stop_.load()) {
        sleep_until_ns(next);
        for (int i = 0; i < 1000; ++i, ++n) {
          engine::Command c;
          c.kind = n % 3 == 0   ? engine::CommandKind::kNoteOn
                   : n % 3 == 1 ? engine::CommandKind::kNoteOff
                                : engine::CommandKind::kLiveParam;
          c.a = static_cast<std::uint8_t>(48 + n % 24);
          c.b = 100;
          c.target = static_cast<std::uint16_t>(n % 16);
          c.value = static_cast<float>(n % 128) / 127.0f;
          if (!e->push(c)) rejected_.fetch_add(1, std::memory_order_relaxed);
        }
        next += 1'000'000'000;
      }
    });
  }
  ~StressLoad() { stop(); }
  StressLoad(const StressLoad&) = delete;
  StressLoad& operator=(const StressLoad&) = delete;

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::uint64_t rejected() const noexcept { return rejected_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> rejected_{0};
  std::vector<std::thread> threads_;
};

}  // namespace jamnet::bench
