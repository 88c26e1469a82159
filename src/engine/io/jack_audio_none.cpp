// JackAudioBackend when this build has no JACK: the interface exists, open()
// says why it cannot work. The real backend is src/engine/io/jack/jack_audio.cpp.
#include "jamnet/engine/io/jack_audio.hpp"

#ifndef JAMNET_HAVE_JACK

namespace jamnet::engine::io {

namespace {

Error no_jack() {
  return Error{Errc::kUnsupported, "jamnet was built without JACK (libjack-jackd2-dev not found)"};
}

}  // namespace

struct JackAudioBackend::Impl {};

JackAudioBackend::JackAudioBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JackAudioBackend::~JackAudioBackend() = default;

Result<std::unique_ptr<JackAudioBackend>> JackAudioBackend::open(const BackendConfig&) {
  return std::unexpected(no_jack());
}
Result<std::vector<std::string>> JackAudioBackend::list_ports(const std::string&, unsigned long,
                                                              PortType) {
  return std::unexpected(no_jack());
}

Result<void> JackAudioBackend::start(AudioCallback&) {
  return std::unexpected(no_jack());
}
void JackAudioBackend::stop() {}
std::string JackAudioBackend::client_name() const {
  return {};
}
std::uint32_t JackAudioBackend::sample_rate() const {
  return 0;
}
std::uint32_t JackAudioBackend::buffer_size() const {
  return 0;
}
std::uint64_t JackAudioBackend::xruns() const {
  return 0;
}
std::uint64_t JackAudioBackend::cycles() const {
  return 0;
}
Result<std::size_t> JackAudioBackend::add_output(const std::string&) {
  return std::unexpected(no_jack());
}
Result<void> JackAudioBackend::remove_output(std::size_t) {
  return std::unexpected(no_jack());
}
std::vector<std::string> JackAudioBackend::input_ports() const {
  return {};
}
std::vector<std::string> JackAudioBackend::output_ports() const {
  return {};
}
std::optional<TransportInfo> JackAudioBackend::transport() const {
  return std::nullopt;
}
std::optional<Error> JackAudioBackend::failure() const {
  return no_jack();
}
Result<void> JackAudioBackend::connect(const std::string&, const std::string&) {
  return std::unexpected(no_jack());
}
Result<void> JackAudioBackend::disconnect(const std::string&, const std::string&) {
  return std::unexpected(no_jack());
}
bool JackAudioBackend::pop_midi_input(protocol::jmid::Event&) {
  return false;
}
bool JackAudioBackend::push_midi_output(const protocol::jmid::Event&, Nanos) {
  return false;
}
std::string JackAudioBackend::midi_input_port() const {
  return {};
}
std::string JackAudioBackend::midi_output_port() const {
  return {};
}
JackMidi::Stats JackAudioBackend::midi_stats() const {
  return {};
}
std::uint64_t JackAudioBackend::clock_fallback_cycles() const {
  return 0;
}
Nanos JackAudioBackend::clock_offset_ns() const {
  return 0;
}

}  // namespace jamnet::engine::io

#endif  // JAMNET_HAVE_JACK
