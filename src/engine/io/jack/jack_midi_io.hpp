// Private to the JACK backends: one cycle of MIDI for a pair of JACK MIDI
// ports (midi_in -> queue, queue -> midi_out). JackMidi (a MIDI-only client)
// and JackAudioBackend (audio + MIDI in one client) both run their MIDI
// through this one class, so the two behave alike to the frame.
//
// Threads: process() runs on the JACK process callback and never allocates,
// locks, logs or blocks; it talks to the rest only through two SPSC queues.
// pop_input() is called from one non-RT thread, push_output() from one
// non-RT thread (they may differ). Counters are relaxed atomics.
#pragma once

#include <jack/jack.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "jack_time.hpp"
#include "jamnet/core/clock.hpp"
#include "jamnet/core/spsc_queue.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::engine::io::jack_detail {

// An output event and when it is due (CLOCK_MONOTONIC ns).
struct MidiOutItem {
  protocol::jmid::Event event;
  Nanos at_ns = 0;
};

class JackMidiIo {
 public:
  static constexpr std::size_t kMaxSysExBytes = JackMidi::kMaxSysExBytes;

  explicit JackMidiIo(std::size_t queue_capacity);
  JackMidiIo(const JackMidiIo&) = delete;
  JackMidiIo& operator=(const JackMidiIo&) = delete;

  // One cycle: reads every event of `in_buf` into the input queue (stamped
  // with the cycle's clock mapping) and writes the due output events into
  // `out_buf` (cleared first). Either buffer may be null (port absent).
  void process(void* in_buf, void* out_buf, jack_nframes_t nframes,
               const JackCycleClock& clock) noexcept;

  // See JackMidi::pop_input / push_output: same contract.
  bool pop_input(protocol::jmid::Event& e) noexcept;
  bool push_output(const protocol::jmid::Event& e, Nanos at_ns) noexcept;

  std::uint64_t input_events() const noexcept { return get(input_events_); }
  std::uint64_t output_events() const noexcept { return get(output_events_); }
  std::uint64_t late_events() const noexcept { return get(late_events_); }
  std::uint64_t dropped_full() const noexcept { return get(dropped_full_); }

 private:
  static void count(std::atomic<std::uint64_t>& c) noexcept {
    c.fetch_add(1, std::memory_order_relaxed);
  }
  static std::uint64_t get(const std::atomic<std::uint64_t>& c) noexcept {
    return c.load(std::memory_order_relaxed);
  }

  void read_input(void* buf, const JackCycleClock& clock) noexcept;
  void write_output(void* buf, jack_nframes_t nframes, const JackCycleClock& clock) noexcept;
  void emit(void* buf, jack_nframes_t offset, const std::uint8_t* data, std::size_t len,
            jack_nframes_t& last_offset) noexcept;

  SpscQueue<protocol::jmid::Event> in_queue_;  // RT thread -> pop_input()
  SpscQueue<MidiOutItem> out_queue_;           // push_output() -> RT thread

  // ---- owned by the process callback ----
  protocol::jmid::MidiParser parser_;
  MidiOutItem pending_;  // popped but due in a later cycle
  bool has_pending_ = false;
  std::array<std::uint8_t, kMaxSysExBytes> sysex_{};
  std::size_t sysex_len_ = 0;
  bool sysex_open_ = false;
  bool sysex_overflow_ = false;

  std::atomic<std::uint64_t> input_events_{0};
  std::atomic<std::uint64_t> output_events_{0};
  std::atomic<std::uint64_t> late_events_{0};
  std::atomic<std::uint64_t> dropped_full_{0};
};

}  // namespace jamnet::engine::io::jack_detail
