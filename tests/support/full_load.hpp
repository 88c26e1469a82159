// What the full-load trap test (tests/engine/engine_rt_safety_test.cpp) and
// the full-load benchmark (bench/full_load_bench.cpp) both run: a Session on
// a private jackd with MIDI on and a sine as its input, and the notes they
// send.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "jamnet/peer/session.hpp"

namespace jamnet::testing {

// A 440 Hz sine at 48 kHz as what a peer sends (audio thread, real-time safe).
inline void sine_input(void*, std::span<float* const> channels, std::uint32_t frames,
                       std::uint64_t frame_time) noexcept {
  for (float* ch : channels)
    for (std::uint32_t f = 0; f < frames; ++f)
      ch[f] = 0.2f * static_cast<float>(std::sin(2.0 * M_PI * 440.0 *
                                                 static_cast<double>(frame_time + f) / 48000.0));
}

// A Session on JACK server `server`, MIDI on, sending sine_input; no multicast.
inline SessionOptions jack_session_options(const char* name, const Uuid& session,
                                           const std::string& server) {
  SessionOptions o;
  o.peer.name = name;
  o.peer.session = session;
  o.peer.multicast.reset();
  o.peer.midi = MidiConfig{};
  o.audio = AudioIo::kJack;
  o.jack_server = server;
  o.input = sine_input;
  return o;
}

// The i-th note event of the load: on/off pairs over 4 channels and 24 keys.
inline protocol::jmid::Event load_note(std::uint32_t i) {
  protocol::jmid::Event e;
  e.kind = i % 2 ? protocol::jmid::Kind::kNoteOff : protocol::jmid::Kind::kNoteOn;
  e.channel = static_cast<std::uint8_t>(i % 4);
  e.data1 = static_cast<std::uint8_t>(48 + (i / 2) % 24);
  e.data2 = 90;
  return e;
}

}  // namespace jamnet::testing
