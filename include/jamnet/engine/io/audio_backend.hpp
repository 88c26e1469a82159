// AudioBackend: where the engine's audio cycles come from. One interface, three
// implementations in engine/io/<backend>/ (ARCHITECTURE.md):
// - jack: a JACK client, cycles from the server (audio + optional MIDI ports);
// - null: a real-time timer thread, silence in, output discarded;
// - file: WAV/FLAC in and out through libsndfile, as fast as the CPU goes.
//
// Threads: open/start/stop/add_output/ports/transport are called from control
// threads. AudioCallback::process runs on the backend's audio thread: it must
// never allocate, lock, log or block (the engine's callback obeys this, and a
// test traps malloc/free/locks inside it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"

namespace jamnet::engine::io {

struct CycleInfo {
  std::uint64_t frame_time = 0;  // the backend's running frame counter at frame 0 of this cycle
  Nanos start_ns = 0;            // CLOCK_MONOTONIC ns of frame 0 of this cycle (the period's start)
  Nanos wake_ns = 0;             // CLOCK_MONOTONIC ns the callback was entered
  Nanos period_ns = 0;           // nominal period: frames / rate
  std::uint32_t frames = 0;      // frames in this cycle
  std::uint32_t sample_rate = 0;
};

// One cycle's buffers, non-interleaved: inputs[i][0..frames), outputs[j][0..frames).
// Outputs hold undefined data on entry: process() must write every frame.
struct AudioBlock {
  std::span<const float* const> inputs;
  std::span<float* const> outputs;
  CycleInfo info;
};

class AudioCallback {
 public:
  virtual ~AudioCallback() = default;
  virtual void process(const AudioBlock& block) noexcept = 0;
};

// JACK transport as seen by the server (jack_transport_query).
struct TransportInfo {
  bool rolling = false;
  std::uint64_t frame = 0;
  std::optional<double> bpm;  // when a timebase master provides BBT
  std::optional<std::int32_t> bar, beat, tick;
};

struct BackendConfig {
  std::string client_name = "jamnet";          // JACK client name = the peer name
  std::string server_name;                     // JACK server; empty: $JACK_DEFAULT_SERVER / default
  std::vector<std::string> inputs = {"in_1"};  // input port names
  std::vector<std::string> outputs = {"out_1"};  // output port names (more can be added later)
  std::uint32_t sample_rate = 48000;             // null/file; JACK takes the server's
  std::uint32_t frames = 128;                    // null/file period; JACK takes the server's
  bool realtime = true;  // null: SCHED_FIFO timer thread (falls back when refused)
  int rt_priority = 2;   // null backend thread priority
  // file backend: input file (mono or one channel per input; missing: silence),
  // output file (one channel per output, WAV or FLAC by extension), length.
  std::string input_path;
  std::string output_path;
  std::uint64_t max_frames = 0;  // file: stop after this many frames (0: at input end)
  bool midi = false;             // JACK: also register midi_in/midi_out in the same client
};

// The largest period a backend takes (null, file, host).
inline constexpr std::uint32_t kMaxBackendFrames = 1u << 16;

// Port names every backend accepts: not empty, no ':' (JACK's separator),
// each once; with config.midi, midi_in and midi_out are taken.
Result<void> check_port_names(const BackendConfig& config);

class AudioBackend {
 public:
  AudioBackend() = default;
  AudioBackend(const AudioBackend&) = delete;  // owns a client/thread the callback points into
  AudioBackend& operator=(const AudioBackend&) = delete;
  virtual ~AudioBackend() = default;
  // Starts cycles; `cb` must outlive stop(). Fails with a clear Error
  // (kInvalidArgument when already started). After stop() a backend may be
  // started again where that makes sense (null, jack; not file: kUnsupported).
  virtual Result<void> start(AudioCallback& cb) = 0;
  // Stops cycles; when it returns, process() is not running and will not run. Idempotent.
  virtual void stop() = 0;
  // File backend: true once every frame has been processed (then stop()).
  virtual bool finished() const { return false; }

  virtual std::string kind() const = 0;  // "jack", "null", "file"
  virtual std::string client_name() const = 0;
  virtual std::uint32_t sample_rate() const = 0;
  virtual std::uint32_t buffer_size() const = 0;
  virtual std::uint64_t xruns() const = 0;
  virtual std::uint64_t cycles() const = 0;

  // Adds an output port while running (control thread; never the callback's
  // work). Returns its index in AudioBlock::outputs, which grows by one from a
  // later cycle on. kUnsupported where the backend cannot (file after start).
  // A port removed earlier leaves its index free, and add_output reuses it.
  virtual Result<std::size_t> add_output(const std::string& name) = 0;
  // Removes an output added by add_output (control thread). From a later
  // cycle on its AudioBlock::outputs entry points at a scratch buffer nobody
  // hears, so indices of the other ports never move. kUnsupported where the
  // backend cannot (file after start).
  virtual Result<void> remove_output(std::size_t index) = 0;
  // Full port names ("client:port"), cached: built at open/add_output time, never on the callback.
  virtual std::vector<std::string> input_ports() const = 0;
  virtual std::vector<std::string> output_ports() const = 0;
  virtual std::optional<TransportInfo> transport() const { return std::nullopt; }
  // Set when cycles stopped on their own because something failed after
  // start() had succeeded (the JACK server shut down, a file write failed):
  // nothing else could report it. nullopt while healthy.
  virtual std::optional<Error> failure() const { return std::nullopt; }
};

}  // namespace jamnet::engine::io
