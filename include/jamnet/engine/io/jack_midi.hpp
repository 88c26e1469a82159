// JackMidi: MIDI in and out through a JACK client ("<name>:midi_in",
// "<name>:midi_out"). There is no ALSA sequencer on our machines; JACK MIDI is
// the MIDI I/O (ARCHITECTURE.md).
//
// Threads: the JACK process callback converts between raw MIDI bytes and
// protocol::jmid::Event and talks to the rest only through two SPSC queues;
// it never allocates, locks, logs or blocks. pop_input() is called from one
// non-RT thread, push_output() from one non-RT thread (they may differ).
//
// Time: every timestamp here is CLOCK_MONOTONIC ns (jamnet::monotonic_ns()).
// JACK's own clock (jack_get_time(), jack_get_cycle_times()) is microseconds
// of CLOCK_MONOTONIC or, in Debian 12's jackd2, CLOCK_MONOTONIC_RAW; the
// callback reads both clocks every cycle and converts (see jack_midi.cpp).
//
// This header compiles without JACK; open() then returns kUnsupported and
// jack_midi_available() is false.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::engine::io {

// True when this build has the JACK backend (JAMNET_HAVE_JACK).
bool jack_midi_available() noexcept;

class JackMidi {
 public:
  struct Config {
    std::string client_name = "jamnet";  // the peer name: ports are "<name>:midi_in/out"
    std::string server_name;             // empty: the default server ($JACK_DEFAULT_SERVER)
    std::size_t queue_capacity = 4096;   // events per direction, rounded up to a power of two
  };

  struct Stats {
    std::uint64_t cycles = 0;         // process callbacks run
    std::uint64_t xruns = 0;          // reported by the server
    std::uint64_t input_events = 0;   // events queued for pop_input()
    std::uint64_t output_events = 0;  // events written to midi_out (a joined SysEx counts once)
    std::uint64_t late_events = 0;    // output due before the cycle it went out in
    std::uint64_t dropped_full = 0;   // lost because a queue (or the port buffer) was full
    std::uint64_t clock_fallback_cycles = 0;  // cycles timed by the wake-up, not JACK's DLL
  };

  // Connects to a running server (never starts one: JackNoStartServer),
  // registers the two ports and activates. Fails with kNotFound when no server
  // runs, kUnsupported when built without JACK.
  static Result<std::unique_ptr<JackMidi>> open(const Config& config);
  ~JackMidi();

  JackMidi(const JackMidi&) = delete;
  JackMidi& operator=(const JackMidi&) = delete;

  // Next event received on midi_in; e.ts_ns = CLOCK_MONOTONIC ns of the frame
  // it arrived at, e.seq = 0. False when none is waiting.
  bool pop_input(protocol::jmid::Event& e);

  // Queues `e` to play at CLOCK_MONOTONIC time `at_ns`: it goes out in the
  // cycle that covers at_ns, at the matching frame offset. Events due in the
  // past go out at offset 0 of the next cycle and are counted late. Push in
  // non-decreasing at_ns order: the callback holds back only the first event
  // that is not yet due, so an earlier one queued behind it waits for it.
  // SysEx chunks are joined into one JACK event (up to kMaxSysExBytes) and go
  // out at the time of the last chunk. False (counted in dropped_full) when
  // the queue is full.
  bool push_output(const protocol::jmid::Event& e, Nanos at_ns);

  std::string input_port() const;   // "client:midi_in" (the name JACK gave us)
  std::string output_port() const;  // "client:midi_out"
  std::string client_name() const;  // may differ from Config if JACK renamed it
  Stats stats() const;
  std::uint32_t sample_rate() const;
  std::uint32_t buffer_size() const;
  // CLOCK_MONOTONIC ns minus JACK time ns, as measured at open(): about 0
  // when JACK uses CLOCK_MONOTONIC. For information; the callback re-measures.
  Nanos clock_offset_ns() const;

  static constexpr std::size_t kMaxSysExBytes = 4096;

  struct Impl;

 private:
  explicit JackMidi(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamnet::engine::io
