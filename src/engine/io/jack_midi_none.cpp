// JackMidi when this build has no JACK: the interface exists, open() says why
// it cannot work. The real backend is src/engine/io/jack/jack_midi.cpp.
#include "jamnet/engine/io/jack_midi.hpp"

#ifndef JAMNET_HAVE_JACK

namespace jamnet::engine::io {

bool jack_midi_available() noexcept {
  return false;
}

struct JackMidi::Impl {};

JackMidi::JackMidi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JackMidi::~JackMidi() = default;

Result<std::unique_ptr<JackMidi>> JackMidi::open(const Config&) {
  return make_error(Errc::kUnsupported,
                    "jamnet was built without JACK (libjack-jackd2-dev not found)");
}

bool JackMidi::pop_input(protocol::jmid::Event&) {
  return false;
}
bool JackMidi::push_output(const protocol::jmid::Event&, Nanos) {
  return false;
}
std::string JackMidi::input_port() const {
  return {};
}
std::string JackMidi::output_port() const {
  return {};
}
std::string JackMidi::client_name() const {
  return {};
}
JackMidi::Stats JackMidi::stats() const {
  return {};
}
std::uint32_t JackMidi::sample_rate() const {
  return 0;
}
std::uint32_t JackMidi::buffer_size() const {
  return 0;
}
Nanos JackMidi::clock_offset_ns() const {
  return 0;
}

}  // namespace jamnet::engine::io

#endif  // JAMNET_HAVE_JACK
