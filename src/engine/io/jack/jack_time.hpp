// Private to the JACK backends (jack_midi.cpp, jack_audio.cpp): the one
// frame <-> CLOCK_MONOTONIC mapping both use, and the client opening both do.
//
// Time mapping (frame <-> CLOCK_MONOTONIC ns).
//   JACK's clock, jack_get_time() and jack_get_cycle_times(), is microseconds
//   of the clock libjack reads in GetMicroSeconds(): CLOCK_MONOTONIC in
//   jackd2's source tree, but CLOCK_MONOTONIC_RAW in Debian 12's jackd2
//   1.9.21 (measured: jack_get_time() - CLOCK_MONOTONIC_RAW < 3 us, while
//   CLOCK_MONOTONIC is 119 ms ahead of it on our VM). The two run at
//   different rates when NTP slews, so we do not trust either claim: at the
//   top of every cycle we read both clocks and convert with that offset.
//   The cycle's first frame is at t0 and the next cycle's at t1, from
//   jack_get_cycle_times() (the server's DLL: the same for every client in a
//   cycle). Frame offset i of the cycle is t0 + i * (t1 - t0) / nframes; every
//   direction (audio and MIDI, in and out) uses this one mapping, so a round
//   trip between two clients in the same cycle costs only the frame rounding.
//   When the DLL's figures are not believable (the cycle start more than a
//   period away from now, or a period off by more than 25 %; jackd's dummy
//   driver on a loaded VM runs slower than its nominal rate and its DLL lags
//   by hundreds of ms) the cycle is taken to start at the callback's wake-up
//   and to last the nominal period (`fallback`).
#pragma once

#include <jack/jack.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"

namespace jamnet::engine::io::jack_detail {

struct JackCycleClock {
  Nanos wake_ns = 0;          // CLOCK_MONOTONIC when the callback read the clocks
  Nanos t0 = 0;               // CLOCK_MONOTONIC ns of this cycle's first frame
  Nanos t1 = 0;               // ... and of the next cycle's first frame
  double ns_per_frame = 0.0;  // (t1 - t0) / nframes
  jack_nframes_t frame = 0;   // JACK's frame counter at this cycle's first frame
  bool fallback = false;      // the DLL's figures were not believable (see above)
};

// Reads the cycle's clock mapping. Process callback only: no allocation,
// locks or logging (jack_get_cycle_times reads shared memory).
inline JackCycleClock read_cycle_clock(const jack_client_t* client, jack_nframes_t nframes,
                                       std::uint32_t sample_rate) noexcept {
  JackCycleClock c;
  // Both clocks read together, once a cycle: JACK's (CLOCK_MONOTONIC_RAW
  // for Debian's jackd2 1.9.21, CLOCK_MONOTONIC in other builds) and ours.
  // Re-reading the offset every cycle follows NTP slewing between the two.
  const Nanos now = monotonic_ns();
  const jack_time_t jack_now = jack_get_time();
  const Nanos offset = now - static_cast<Nanos>(jack_now) * 1000;
  const Nanos nominal = static_cast<Nanos>(nframes) * 1'000'000'000 /
                        std::max<Nanos>(1, static_cast<Nanos>(sample_rate));
  c.wake_ns = now;

  jack_nframes_t cur_frames = 0;
  jack_time_t cur_us = 0, next_us = 0;
  float period_us = 0.0f;
  const bool have_dll =
      jack_get_cycle_times(client, &cur_frames, &cur_us, &next_us, &period_us) == 0;
  c.frame = have_dll ? cur_frames : jack_last_frame_time(client);
  const Nanos since_start = (static_cast<Nanos>(jack_now) - static_cast<Nanos>(cur_us)) * 1000;
  const Nanos dll_period = (static_cast<Nanos>(next_us) - static_cast<Nanos>(cur_us)) * 1000;
  if (have_dll && since_start >= -nominal / 2 && since_start <= nominal * 3 / 2 &&
      dll_period >= nominal * 3 / 4 && dll_period <= nominal * 5 / 4) {
    // The server's DLL-filtered times of this cycle and the next: smooth
    // and the same for every client in the cycle.
    c.t0 = static_cast<Nanos>(cur_us) * 1000 + offset;
    c.t1 = static_cast<Nanos>(next_us) * 1000 + offset;
  } else {
    // No believable estimate: this cycle starts now and lasts the nominal period.
    c.fallback = true;
    c.t0 = now;
    c.t1 = now + nominal;
  }
  c.ns_per_frame = nframes > 0 ? static_cast<double>(c.t1 - c.t0) / nframes : 0.0;
  return c;
}

// CLOCK_MONOTONIC minus JACK time, from the tightest of a few bracketed reads.
// For information only: the callback re-measures every cycle.
inline Nanos measure_clock_offset() noexcept {
  Nanos best_width = INT64_MAX, best_offset = 0;
  for (int i = 0; i < 5; ++i) {
    const Nanos a = monotonic_ns();
    const Nanos j = static_cast<Nanos>(jack_get_time()) * 1000;
    const Nanos b = monotonic_ns();
    if (b - a < best_width) {
      best_width = b - a;
      best_offset = a + (b - a) / 2 - j;
    }
  }
  return best_offset;
}

inline std::string describe_server(const std::string& server_name) {
  return server_name.empty() ? std::string("the default JACK server")
                             : "JACK server '" + server_name + "'";
}

// Connects to a running server, never starting one (JackNoStartServer): a
// peer must not spawn a jackd as a side effect. kNotFound when none runs.
// JACK may rename the client when the name is taken (jack_get_client_name
// tells the real one).
inline Result<jack_client_t*> open_client(const std::string& client_name,
                                          const std::string& server_name) {
  if (client_name.empty()) return make_error(Errc::kInvalidArgument, "JACK client name is empty");
  if (client_name.size() >= static_cast<std::size_t>(jack_client_name_size())) {
    return make_error(Errc::kInvalidArgument, "JACK client name '" + client_name + "' is too long");
  }
  int options = JackNoStartServer;
  if (!server_name.empty()) options |= JackServerName;
  jack_status_t status{};
  jack_client_t* client = jack_client_open(
      client_name.c_str(), static_cast<jack_options_t>(options), &status, server_name.c_str());
  if (client != nullptr) return client;
  const std::string server = describe_server(server_name);
  if (status & (JackServerFailed | JackServerError)) {
    return make_error(Errc::kNotFound, "no JACK server is running (" + server +
                                           "); start one, e.g. `jackd -d dummy -r 48000 -p 64`");
  }
  return make_error(Errc::kIo, "cannot open JACK client '" + client_name + "' on " + server +
                                   " (jack_status " +
                                   std::to_string(static_cast<unsigned>(status)) + ")");
}

// Registers the process, xrun, sample-rate and shutdown callbacks of a
// client whose state `s` has process(nframes), an xruns counter (Impl::count),
// a sample_rate atomic and a server_gone flag; then activates the client.
template <class Impl>
Result<void> set_callbacks_and_activate(jack_client_t* client, Impl& s, const std::string& name) {
  const auto process = [](jack_nframes_t n, void* a) { return static_cast<Impl*>(a)->process(n); };
  const auto xrun = [](void* a) {
    Impl::count(static_cast<Impl*>(a)->xruns);
    return 0;
  };
  const auto rate = [](jack_nframes_t r, void* a) {
    static_cast<Impl*>(a)->sample_rate.store(r, std::memory_order_relaxed);
    return 0;
  };
  const auto gone = [](void* a) {
    static_cast<Impl*>(a)->server_gone.store(true, std::memory_order_relaxed);
  };
  if (jack_set_process_callback(client, process, &s) != 0 ||
      jack_set_xrun_callback(client, xrun, &s) != 0 ||
      jack_set_sample_rate_callback(client, rate, &s) != 0) {
    return make_error(Errc::kIo, "cannot set JACK callbacks");
  }
  jack_on_shutdown(client, gone, &s);
  if (jack_activate(client) != 0)
    return make_error(Errc::kIo, "cannot activate JACK client '" + name + "'");
  return {};
}

}  // namespace jamnet::engine::io::jack_detail
