// JACK MIDI backend (compiled only when JACK is found; JAMNET_HAVE_JACK).
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
//   cycle). Frame offset i of the cycle is t0 + i * (t1 - t0) / nframes; both
//   directions use this one mapping, so a round trip between two clients in
//   the same cycle costs only the frame rounding.
//   When the DLL's figures are not believable (the cycle start more than a
//   period away from now, or a period off by more than 25 %; jackd's dummy
//   driver on a loaded VM runs slower than its nominal rate and its DLL lags
//   by hundreds of ms) the cycle is taken to start at the callback's wake-up
//   and to last the nominal period (Stats::clock_fallback_cycles).
#include "jamnet/engine/io/jack_midi.hpp"

#include <jack/jack.h>
#include <jack/midiport.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>

#include "jamnet/core/spsc_queue.hpp"

namespace jamnet::engine::io {

namespace jmid = protocol::jmid;

bool jack_midi_available() noexcept {
  return true;
}

namespace {

struct OutItem {
  jmid::Event event;
  Nanos at_ns = 0;
};

}  // namespace

struct JackMidi::Impl {
  explicit Impl(std::size_t capacity) : in_queue(capacity), out_queue(capacity) {}

  jack_client_t* client = nullptr;
  jack_port_t* in_port = nullptr;
  jack_port_t* out_port = nullptr;
  Nanos clock_offset_ns = 0;

  SpscQueue<jmid::Event> in_queue;  // RT thread -> pop_input()
  SpscQueue<OutItem> out_queue;     // push_output() -> RT thread

  // ---- owned by the process callback ----
  jmid::MidiParser parser;
  OutItem pending;  // popped but due in a later cycle
  bool has_pending = false;
  std::array<std::uint8_t, kMaxSysExBytes> sysex{};
  std::size_t sysex_len = 0;
  bool sysex_open = false;
  bool sysex_overflow = false;

  std::atomic<std::uint64_t> cycles{0};
  std::atomic<std::uint64_t> xruns{0};
  std::atomic<std::uint64_t> input_events{0};
  std::atomic<std::uint64_t> output_events{0};
  std::atomic<std::uint64_t> late_events{0};
  std::atomic<std::uint64_t> dropped_full{0};
  std::atomic<std::uint64_t> clock_fallback_cycles{0};
  std::atomic<bool> server_gone{false};
  std::atomic<std::uint32_t> sample_rate{48000};  // set before activation; kept by on_sample_rate

  static void count(std::atomic<std::uint64_t>& c) noexcept {
    c.fetch_add(1, std::memory_order_relaxed);
  }

  // ---- the real-time part: no allocation, locks, logging or blocking ----
  int process(jack_nframes_t nframes) noexcept {
    count(cycles);
    if (nframes == 0) return 0;
    // Both clocks read together, once a cycle: JACK's (CLOCK_MONOTONIC_RAW
    // for Debian's jackd2 1.9.21, CLOCK_MONOTONIC in other builds) and ours.
    // Re-reading the offset every cycle follows NTP slewing between the two.
    const Nanos now = monotonic_ns();
    const jack_time_t jack_now = jack_get_time();
    const Nanos offset = now - static_cast<Nanos>(jack_now) * 1000;
    const Nanos nominal = static_cast<Nanos>(nframes) * 1'000'000'000 /
                          std::max<Nanos>(1, sample_rate.load(std::memory_order_relaxed));

    jack_nframes_t cur_frames = 0;
    jack_time_t cur_us = 0, next_us = 0;
    float period_us = 0.0f;
    Nanos t0 = 0, t1 = 0;
    const bool have_dll =
        jack_get_cycle_times(client, &cur_frames, &cur_us, &next_us, &period_us) == 0;
    const Nanos since_start = (static_cast<Nanos>(jack_now) - static_cast<Nanos>(cur_us)) * 1000;
    const Nanos dll_period = (static_cast<Nanos>(next_us) - static_cast<Nanos>(cur_us)) * 1000;
    if (have_dll && since_start >= -nominal / 2 && since_start <= nominal * 3 / 2 &&
        dll_period >= nominal * 3 / 4 && dll_period <= nominal * 5 / 4) {
      // The server's DLL-filtered times of this cycle and the next: smooth
      // and the same for every client in the cycle.
      t0 = static_cast<Nanos>(cur_us) * 1000 + offset;
      t1 = static_cast<Nanos>(next_us) * 1000 + offset;
    } else {
      // No believable estimate: jackd's dummy driver on a loaded VM runs
      // slower than its nominal rate and its DLL lags by hundreds of ms.
      // This cycle then starts now and lasts the nominal period.
      count(clock_fallback_cycles);
      t0 = now;
      t1 = now + nominal;
    }
    const double ns_per_frame = static_cast<double>(t1 - t0) / nframes;

    read_input(nframes, t0, ns_per_frame);
    write_output(nframes, t0, t1, ns_per_frame);
    return 0;
  }

  void read_input(jack_nframes_t nframes, Nanos t0, double ns_per_frame) noexcept {
    void* buf = jack_port_get_buffer(in_port, nframes);
    const std::uint32_t n = jack_midi_get_event_count(buf);
    for (std::uint32_t i = 0; i < n; ++i) {
      jack_midi_event_t ev;
      if (jack_midi_event_get(&ev, buf, i) != 0) continue;
      const Nanos ts = t0 + static_cast<Nanos>(std::llround(ev.time * ns_per_frame));
      parser.feed({ev.buffer, ev.size}, [&](const jmid::Event& parsed) {
        jmid::Event e = parsed;
        e.ts_ns = ts;
        e.seq = 0;
        if (in_queue.try_push(e)) {
          count(input_events);
        } else {
          count(dropped_full);
        }
      });
    }
  }

  void write_output(jack_nframes_t nframes, Nanos t0, Nanos t1, double ns_per_frame) noexcept {
    void* buf = jack_port_get_buffer(out_port, nframes);
    jack_midi_clear_buffer(buf);
    jack_nframes_t last_offset = 0;  // JACK wants non-decreasing offsets
    // A cycle's t0 and the previous cycle's t1 come from a filter and may
    // differ by a little: an event less than a frame early is on time.
    const Nanos late_before = t0 - static_cast<Nanos>(ns_per_frame);
    for (;;) {
      if (!has_pending) {
        if (!out_queue.try_pop(pending)) break;
        has_pending = true;
      }
      if (pending.at_ns >= t1) break;  // due in a later cycle: hold it
      has_pending = false;

      jack_nframes_t offset = 0;
      if (pending.at_ns > t0) {
        const double f =
            static_cast<double>(pending.at_ns - t0) / ns_per_frame + 0.5;  // nearest frame
        offset = std::min<jack_nframes_t>(nframes - 1, static_cast<jack_nframes_t>(f));
      } else if (pending.at_ns < late_before) {
        count(late_events);
      }
      offset = std::max(offset, last_offset);

      std::array<std::uint8_t, jmid::kMaxSysExChunk + 8> bytes;
      const std::size_t len = jmid::to_midi(pending.event, bytes);
      if (pending.event.kind == jmid::Kind::kSysEx) {
        if (pending.event.sysex_index == 0) {
          sysex_len = 0;
          sysex_open = true;
          sysex_overflow = false;
        }
        if (!sysex_open) continue;  // a chunk without its start
        if (sysex_len + len > sysex.size()) {
          sysex_overflow = true;
        } else {
          std::memcpy(sysex.data() + sysex_len, bytes.data(), len);
          sysex_len += len;
        }
        if (!pending.event.sysex_last) continue;
        sysex_open = false;
        if (sysex_overflow) {
          count(dropped_full);
          continue;
        }
        emit(buf, offset, sysex.data(), sysex_len, last_offset);
        continue;
      }
      if (len == 0) continue;
      emit(buf, offset, bytes.data(), len, last_offset);
    }
  }

  void emit(void* buf, jack_nframes_t offset, const std::uint8_t* data, std::size_t len,
            jack_nframes_t& last_offset) noexcept {
    if (jack_midi_event_write(buf, offset, data, len) == 0) {
      count(output_events);
      last_offset = offset;
    } else {
      count(dropped_full);  // the port buffer is full
    }
  }
};

namespace {

int on_process(jack_nframes_t nframes, void* arg) {
  return static_cast<JackMidi::Impl*>(arg)->process(nframes);
}

int on_xrun(void* arg) {
  JackMidi::Impl::count(static_cast<JackMidi::Impl*>(arg)->xruns);
  return 0;
}

int on_sample_rate(jack_nframes_t rate, void* arg) {
  static_cast<JackMidi::Impl*>(arg)->sample_rate.store(rate, std::memory_order_relaxed);
  return 0;
}

void on_shutdown(void* arg) {
  static_cast<JackMidi::Impl*>(arg)->server_gone.store(true, std::memory_order_relaxed);
}

// CLOCK_MONOTONIC minus JACK time, from the tightest of a few bracketed reads.
Nanos measure_clock_offset() {
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

}  // namespace

JackMidi::JackMidi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JackMidi>> JackMidi::open(const Config& config) {
  if (config.client_name.empty())
    return make_error(Errc::kInvalidArgument, "JACK client name is empty");
  if (config.client_name.size() >= static_cast<std::size_t>(jack_client_name_size())) {
    return make_error(Errc::kInvalidArgument,
                      "JACK client name '" + config.client_name + "' is too long");
  }
  auto impl = std::make_unique<Impl>(config.queue_capacity);

  int options = JackNoStartServer;
  if (!config.server_name.empty()) options |= JackServerName;
  jack_status_t status{};
  impl->client = jack_client_open(config.client_name.c_str(), static_cast<jack_options_t>(options),
                                  &status, config.server_name.c_str());
  const std::string server = config.server_name.empty()
                                 ? std::string("the default JACK server")
                                 : "JACK server '" + config.server_name + "'";
  if (impl->client == nullptr) {
    if (status & (JackServerFailed | JackServerError)) {
      return make_error(Errc::kNotFound, "no JACK server is running (" + server +
                                             "); start one, e.g. `jackd -d dummy -r 48000 -p 64`");
    }
    return make_error(Errc::kIo, "cannot open JACK client '" + config.client_name + "' on " +
                                     server + " (jack_status " +
                                     std::to_string(static_cast<unsigned>(status)) + ")");
  }
  // From here the client is closed by ~JackMidi.
  std::unique_ptr<JackMidi> self(new JackMidi(std::move(impl)));
  Impl& s = *self->impl_;

  s.clock_offset_ns = measure_clock_offset();
  s.sample_rate.store(jack_get_sample_rate(s.client), std::memory_order_relaxed);

  s.in_port = jack_port_register(s.client, "midi_in", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput, 0);
  s.out_port =
      jack_port_register(s.client, "midi_out", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput, 0);
  if (s.in_port == nullptr || s.out_port == nullptr) {
    return make_error(Errc::kIo,
                      "cannot register JACK MIDI ports for '" + self->client_name() + "'");
  }
  if (jack_set_process_callback(s.client, on_process, &s) != 0 ||
      jack_set_xrun_callback(s.client, on_xrun, &s) != 0 ||
      jack_set_sample_rate_callback(s.client, on_sample_rate, &s) != 0) {
    return make_error(Errc::kIo, "cannot set JACK callbacks");
  }
  jack_on_shutdown(s.client, on_shutdown, &s);
  if (jack_activate(s.client) != 0) {
    return make_error(Errc::kIo, "cannot activate JACK client '" + self->client_name() + "'");
  }
  return self;
}

JackMidi::~JackMidi() {
  if (impl_ && impl_->client != nullptr) {
    if (!impl_->server_gone.load()) jack_deactivate(impl_->client);
    jack_client_close(impl_->client);
    impl_->client = nullptr;
  }
}

bool JackMidi::pop_input(jmid::Event& e) {
  return impl_->in_queue.try_pop(e);
}

bool JackMidi::push_output(const jmid::Event& e, Nanos at_ns) {
  if (impl_->out_queue.try_push(OutItem{e, at_ns})) return true;
  Impl::count(impl_->dropped_full);
  return false;
}

std::string JackMidi::input_port() const {
  return jack_port_name(impl_->in_port);
}
std::string JackMidi::output_port() const {
  return jack_port_name(impl_->out_port);
}
std::string JackMidi::client_name() const {
  return jack_get_client_name(impl_->client);
}

JackMidi::Stats JackMidi::stats() const {
  const auto get = [](const std::atomic<std::uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
  };
  return Stats{get(impl_->cycles),
               get(impl_->xruns),
               get(impl_->input_events),
               get(impl_->output_events),
               get(impl_->late_events),
               get(impl_->dropped_full),
               get(impl_->clock_fallback_cycles)};
}

std::uint32_t JackMidi::sample_rate() const {
  return jack_get_sample_rate(impl_->client);
}
std::uint32_t JackMidi::buffer_size() const {
  return jack_get_buffer_size(impl_->client);
}
Nanos JackMidi::clock_offset_ns() const {
  return impl_->clock_offset_ns;
}

}  // namespace jamnet::engine::io
