// JACK MIDI backend (compiled only when JACK is found; JAMNET_HAVE_JACK).
//
// The frame <-> CLOCK_MONOTONIC mapping and the per-cycle MIDI work are shared
// with the JACK audio backend: jack_time.hpp explains the mapping,
// jack_midi_io.hpp does the MIDI; this file is the MIDI-only client around them.
#include "jamnet/engine/io/jack_midi.hpp"

#include <jack/jack.h>
#include <jack/midiport.h>

#include <atomic>

#include "jack_midi_io.hpp"
#include "jack_time.hpp"

namespace jamnet::engine::io {

namespace jmid = protocol::jmid;

bool jack_midi_available() noexcept {
  return true;
}

struct JackMidi::Impl {
  explicit Impl(std::size_t capacity) : midi(capacity) {}

  jack_client_t* client = nullptr;
  jack_port_t* in_port = nullptr;
  jack_port_t* out_port = nullptr;
  Nanos clock_offset_ns = 0;

  jack_detail::JackMidiIo midi;

  std::atomic<std::uint64_t> cycles{0};
  std::atomic<std::uint64_t> xruns{0};
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
    const auto clock =
        jack_detail::read_cycle_clock(client, nframes, sample_rate.load(std::memory_order_relaxed));
    if (clock.fallback) count(clock_fallback_cycles);
    midi.process(jack_port_get_buffer(in_port, nframes), jack_port_get_buffer(out_port, nframes),
                 nframes, clock);
    return 0;
  }
};

JackMidi::JackMidi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JackMidi>> JackMidi::open(const Config& config) {
  auto impl = std::make_unique<Impl>(config.queue_capacity);
  auto client = jack_detail::open_client(config.client_name, config.server_name);
  if (!client) return std::unexpected(client.error());
  impl->client = *client;
  // From here the client is closed by ~JackMidi.
  std::unique_ptr<JackMidi> self(new JackMidi(std::move(impl)));
  Impl& s = *self->impl_;

  s.clock_offset_ns = jack_detail::measure_clock_offset();
  s.sample_rate.store(jack_get_sample_rate(s.client), std::memory_order_relaxed);

  s.in_port = jack_port_register(s.client, "midi_in", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput, 0);
  s.out_port =
      jack_port_register(s.client, "midi_out", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput, 0);
  if (s.in_port == nullptr || s.out_port == nullptr) {
    return make_error(Errc::kIo,
                      "cannot register JACK MIDI ports for '" + self->client_name() + "'");
  }
  if (auto r = jack_detail::set_callbacks_and_activate(s.client, s, self->client_name()); !r)
    return std::unexpected(r.error());
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
  return impl_->midi.pop_input(e);
}

bool JackMidi::push_output(const jmid::Event& e, Nanos at_ns) {
  return impl_->midi.push_output(e, at_ns);
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
  const auto& m = impl_->midi;
  return Stats{get(impl_->cycles),
               get(impl_->xruns),
               m.input_events(),
               m.output_events(),
               m.late_events(),
               m.dropped_full(),
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
