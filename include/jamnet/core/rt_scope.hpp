// The stretches of real-time work that must not allocate, free, lock or block
// (ARCHITECTURE.md, Threads): one audio cycle, one datagram on the receive
// thread, one wake of MIDI playout or MIDI send, one block of the audio
// sender, one JACK MIDI period. Each is wrapped in an rt::Scope. Tests install
// hooks (tests/engine/engine_rt_safety_test.cpp traps malloc, free and mutex
// locks inside the scopes); without hooks a scope is one relaxed load.
#pragma once

#include <atomic>
#include <cstdint>

namespace jamnet::rt {

enum class Work : std::uint8_t {
  kAudioCycle,   // Engine::process: the audio callback
  kReceive,      // the transport's receive thread, per datagram
  kMidiPlayout,  // MIDI playout, per wake
  kMidiSend,     // MIDI send (burst copies, journal), per wake
  kAudioSend,    // the audio sender thread, per block
  kJackMidi,     // JACK MIDI in/out, per period
  kCount
};

struct Hooks {
  void (*enter)(Work) = nullptr;  // first thing in the stretch, on its thread
  void (*leave)(Work) = nullptr;  // last thing in it
};

namespace detail {
inline std::atomic<void (*)(Work)> g_enter{nullptr};
inline std::atomic<void (*)(Work)> g_leave{nullptr};
inline thread_local int t_depth = 0;
}  // namespace detail

// True inside a Scope on this thread: what may block (the log) stays out.
inline bool in_scope() noexcept {
  return detail::t_depth > 0;
}

// For tests; set before the threads it should see start.
inline void set_hooks(Hooks h) noexcept {
  detail::g_enter.store(h.enter, std::memory_order_release);
  detail::g_leave.store(h.leave, std::memory_order_release);
}

class Scope {
 public:
  explicit Scope(Work w) noexcept : work_(w) {
    ++detail::t_depth;
    if (auto* f = detail::g_enter.load(std::memory_order_acquire)) f(w);
  }
  ~Scope() {
    if (auto* f = detail::g_leave.load(std::memory_order_acquire)) f(work_);
    --detail::t_depth;
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Work work_;
};

}  // namespace jamnet::rt
