// JackAudioBackend: the engine's audio cycles from a JACK server, with audio
// ports "<client>:<name>" for config.inputs/outputs and, with config.midi,
// "<client>:midi_in"/"<client>:midi_out" in the same client (same behaviour
// and timing as JackMidi: both run one implementation).
//
// Lifecycle: open() connects (never starting a server), registers the ports
// and activates the client at once, so its ports can be connected before
// start(); until start() (and after stop()) outputs play silence and MIDI
// runs as in JackMidi. start(cb) hands cycles to cb; stop() takes them back
// and returns only when cb.process is not running and will not run again.
// The destructor deactivates and closes the client.
//
// Threads: open/start/stop/add_output/connect/list_ports/transport are
// control-thread calls. The process callback never allocates, locks, logs or
// blocks: port pointer arrays are built at open/add_output and published to it
// atomically; port names are cached at registration time.
//
// Time: CycleInfo::frame_time is JACK's frame counter (jack_get_cycle_times,
// widened to 64 bits), the same in every client of a cycle; after an xrun,
// when JACK's figures can repeat a cycle's, it counts on instead so it never
// repeats or steps back, and rejoins JACK's at the next step. start_ns is that
// frame's CLOCK_MONOTONIC time through the mapping described in
// src/engine/io/jack/jack_time.hpp (shared with JackMidi).
//
// This header compiles without JACK; open() and list_ports() then return
// kUnsupported (jack_midi_available() tells which build this is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/engine/io/audio_backend.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::engine::io {

class JackAudioBackend final : public AudioBackend {
 public:
  // list_ports() flags: JACK's JackPortFlags values.
  static constexpr unsigned long kPortIsInput = 0x1;
  static constexpr unsigned long kPortIsOutput = 0x2;
  static constexpr unsigned long kPortIsPhysical = 0x4;
  enum class PortType { kAny, kAudio, kMidi };
  static constexpr std::size_t kMidiQueueCapacity = 4096;  // events per direction

  // Uses config.client_name, server_name, inputs, outputs and midi; the rate
  // and period are the server's. kNotFound when no server runs,
  // kInvalidArgument for a bad or duplicate port name, kUnsupported when
  // built without JACK.
  static Result<std::unique_ptr<JackAudioBackend>> open(const BackendConfig& config);

  // Full names of the server's ports matching `flags` (all of them: 0) and
  // `type`. Opens a short-lived client of its own: control thread only.
  static Result<std::vector<std::string>> list_ports(const std::string& server_name,
                                                     unsigned long flags = 0,
                                                     PortType type = PortType::kAny);

  ~JackAudioBackend() override;

  Result<void> start(AudioCallback& cb) override;
  void stop() override;
  std::string kind() const override { return "jack"; }
  std::string client_name() const override;  // the name JACK gave us (may differ from config)
  std::uint32_t sample_rate() const override;
  std::uint32_t buffer_size() const override;
  std::uint64_t xruns() const override;
  std::uint64_t cycles() const override;  // cycles handed to the callback
  Result<std::size_t> add_output(const std::string& name) override;
  Result<void> remove_output(std::size_t index) override;
  std::vector<std::string> input_ports() const override;
  std::vector<std::string> output_ports() const override;
  std::optional<TransportInfo> transport() const override;
  std::optional<Error> failure() const override;  // set when the server shut down

  // jack_connect / jack_disconnect between any two ports of the server (full
  // names). Connecting ports that are already connected succeeds.
  Result<void> connect(const std::string& source, const std::string& destination);
  Result<void> disconnect(const std::string& source, const std::string& destination);

  // MIDI (config.midi): the contract of JackMidi::pop_input / push_output.
  // False when this client has no MIDI ports.
  bool pop_midi_input(protocol::jmid::Event& e);
  bool push_midi_output(const protocol::jmid::Event& e, Nanos at_ns);
  std::string midi_input_port() const;   // "client:midi_in"; empty without MIDI
  std::string midi_output_port() const;  // "client:midi_out"; empty without MIDI
  // cycles = every JACK cycle since open (with or without a callback).
  JackMidi::Stats midi_stats() const;
  // Cycles whose start_ns came from the wake-up, not JACK's DLL (see jack_time.hpp).
  std::uint64_t clock_fallback_cycles() const;
  // CLOCK_MONOTONIC ns minus JACK time ns as measured at open(); information only.
  Nanos clock_offset_ns() const;

  struct Impl;

 private:
  explicit JackAudioBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamnet::engine::io
