// Session: the one object an app holds to take part in a JAMNet session. It
// owns the Peer (transport, discovery, clock sync and transport, MIDI, audio
// streams), the audio engine on the chosen backend, the bridge between the
// two, and the threads that tie them together, configured by one options
// struct. `jamnet peer` is a thin shell over it; a DAW plugin, the hub, the
// web control room and the speech pipeline use the same API (docs/api.md).
//
// Audio backends (SessionOptions::audio):
// - kJack: a JACK client named after the peer; NAME:send_1..N go to the
//   session and each remote peer plays on its own ports NAME:<peer>_1..N;
// - kNull: a real-time timer, silence in; kFile: WAV/FLAC in and out;
// - kHost: the app's own audio thread calls process() with any block size
//   from 1 to max_block_frames, varying per call (a plugin, TTS);
// - kNone: no audio.
// With kHost, kNull and kFile the outputs carry one mix of every remote
// source; with kJack each source has its ports. Either way set_mix() sets a
// source's gain, mute and pan (the personal mix), and the tap sees each
// source's decoded audio before the mix.
//
// Threads: start() and everything else but process() from app threads.
// process() only from the host's audio thread: real-time safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "jamnet/core/published.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/core/spsc_queue.hpp"
#include "jamnet/engine/telemetry.hpp"
#include "jamnet/peer/audio_bridge.hpp"
#include "jamnet/peer/peer.hpp"

namespace jamnet {

namespace engine {
class Engine;
namespace io {
class HostBackend;
class JackAudioBackend;
class JackMidi;
}  // namespace io
}  // namespace engine
namespace sync {
class AudioDeviceClock;
}

enum class AudioIo : std::uint8_t { kNone, kNull, kJack, kFile, kHost };
std::string_view to_string(AudioIo io) noexcept;

struct SessionOptions {
  // Who and where: name, session, addresses, discovery, sync, MIDI
  // (peer.midi set: MIDI on). peer.audio is filled in from the fields below.
  PeerConfig peer;

  AudioIo audio = AudioIo::kNone;
  bool send_audio = true;                 // false: listen only (nothing sent)
  int channels = 1;                       // sent, and received per source
  std::uint32_t sample_rate = 48000;      // null, file, host (JACK: the server's)
  std::uint32_t block_frames = 128;       // null/file period; host: its usual block
  std::uint32_t max_block_frames = 1024;  // host: the largest process() call (up to 65536)
  bool jellie = false;                    // send as JELLIE (mono)
  double max_drift_ppm = 1000;            // clock drift the jitter buffers absorb
  Nanos port_linger_ns = 10'000'000'000;  // a departed peer's ports/slot stay this long
  std::string jack_server;                // empty: $JACK_DEFAULT_SERVER / default
  bool jack_midi = false;                 // JACK MIDI ports NAME:midi_in / midi_out
  std::string input_path, output_path;    // kFile
  std::uint64_t max_frames = 0;           // kFile: stop after this many (0: input's end)
  // A MIDI file's events (ts_ns from its start) played to the session once
  // someone is there to hear them; midi_loop repeats.
  std::vector<protocol::jmid::Event> midi_file;
  bool midi_loop = false;
  std::size_t midi_file_wait_peers = 1;  // start once this many peers are there
  bool realtime = true;                  // null backend: SCHED_FIFO
  AudioTapFn tap = nullptr;
  void* tap_user = nullptr;
  // Fills what is sent each cycle instead of the backend's inputs (a signal
  // on the null backend); audio thread, real-time safe.
  AudioInputFn input = nullptr;
  void* input_user = nullptr;
};

// MIDI inside one process() block (kHost), at a frame offset: what a plugin
// host hands over and expects back.
struct BlockMidiEvent {
  std::uint32_t frame = 0;  // 0 .. frames-1 of the block
  protocol::jmid::Event event;
};
struct BlockMidi {
  std::span<const BlockMidiEvent> in;  // to the session, at their frames
  std::span<BlockMidiEvent> out;       // filled with the session's MIDI due in this block
  std::size_t out_count = 0;           // set by process()
};

struct SessionEvent {
  enum class Kind : std::uint8_t {
    kJoined,
    kRestarted,
    kLeft,
    kTimedOut,   // a peer (id, name)
    kTransport,  // play state or tempo changed (detail)
    kClock,      // clock lock or master changed (detail)
    kPortAdded,
    kPortRemoved,  // kJack: a source's port (detail: the port)
    kAudioError,   // audio could not be sent or played (detail)
    kSecurity,     // keyed session: frames dropped by the seal, first of each kind (detail)
  };
  Kind kind = Kind::kJoined;
  Uuid peer;
  std::string name;
  std::string detail;
  Nanos at_ns = 0;
};
std::string_view to_string(SessionEvent::Kind k) noexcept;

// One remote audio source (a peer's stream, by name), for a status display.
struct SourceStatus {
  std::size_t index = 0;
  std::string name;  // the peer's name; "name/N" for its stream N > 0
  std::uint16_t stream = 0;
  std::optional<Uuid> peer;  // nullopt while its slot lingers after it left
  std::string path;          // "multicast", "unicast" or "pinned" (how we reach it)
  int channels = 0, sample_rate = 0, packet_frames = 0;
  double level_dbfs = -120;  // the last cycle's peak
  double buffer_ms = 0;      // jitter-buffer depth
  double target_ms = 0;
  std::uint64_t missing = 0, concealed = 0;
  MixSetting mix;
};

struct SessionStatus {
  PeerReport report;  // what --report-json and the status line show
  std::optional<AudioBridgeStats> bridge;
  std::vector<SourceStatus> sources;
  bool clock_locked = false;
  std::optional<Uuid> clock_master;
  std::optional<sync::TransportState> transport;
  std::string audio_backend;             // "jack", "null", "file", "host", "" (none)
  std::uint64_t refused_blocks = 0;      // kHost: process() calls answered with silence
  std::uint64_t block_midi_late = 0;     // kHost: session MIDI that came out after its time
  std::uint64_t block_midi_dropped = 0;  // kHost: MIDI lost because a hand-off queue was full
  std::string to_json() const;
};

namespace detail {
// A MIDI event and when it plays (at namespace scope: a nested class with
// member initialisers is not yet default-constructible inside its incomplete
// enclosing class, for clang).
struct TimedMidiEvent {
  protocol::jmid::Event event;
  Nanos at_ns = 0;
};
}  // namespace detail

class Session {
 public:
  static Result<std::unique_ptr<Session>> start(SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Note-offs for what we hold, a bye, then everything stops. Idempotent.
  void stop(bool say_goodbye = true);
  // kFile: every frame processed; any backend: it failed on its own
  // (failure() says why). The app then stops.
  bool finished() const;
  std::optional<Error> failure() const;

  // kHost only, from the host's audio thread: one block. inputs: channels
  // pointers (null or a null entry: silence); outputs: channels pointers,
  // every frame written (the mix of every source). host_time: CLOCK_MONOTONIC
  // ns of frame 0 (0: now). False, outputs silent, when frames is outside
  // 1..max_block_frames or the session is not running.
  // midi (optional, needs options.peer.midi): events in at their frames go
  // to the session; the session's MIDI due within this block comes out at
  // its frame (a late one at frame 0; one that does not fit `out` waits for
  // the next block).
  bool process(const float* const* inputs, float* const* outputs, std::uint32_t frames,
               Nanos host_time = 0, BlockMidi* midi = nullptr) noexcept;

  // The personal mix: `source` is a peer's name or id (as the status shows).
  // Kept for a name not heard yet, and across its restarts.
  Result<void> set_mix(const std::string& source, const MixSetting& mix);
  Result<void> set_mix(const std::string& source, double gain_db, bool mute = false,
                       double pan = 0) {
    return set_mix(source, MixSetting{gain_db, mute, pan});
  }

  // One more audio stream of ours besides the main one (a second bus, a
  // voice, a click): `channels` channels at the session's rate, fed with
  // SendStream::write() (real-time safe) and heard by the others as the
  // source "<our name>/<index>". Needs an audio backend and send_audio; at
  // most AudioSession::kMaxStreams - 1 of them; they last as long as the
  // session.
  Result<SendStream*> add_send_stream(int channels);

  // MIDI to every peer (ts_ns 0: now). Needs options.peer.midi.
  Result<void> send_midi(std::span<const protocol::jmid::Event> events);
  // MIDI from the session, on the playout thread at each event's time (also
  // played on the JACK MIDI port when there is one). Keep it short. On
  // return the previous handler is no longer running (so what it captured
  // may go); do not call this from inside a handler.
  void set_midi_handler(MidiHandler handler);

  // Events since the last call (the newest kMaxEvents are kept).
  std::vector<SessionEvent> take_events();
  static constexpr std::size_t kMaxEvents = 1024;
  SessionStatus status() const;
  // The engine's last telemetry window (seq 0: none yet, or no audio).
  engine::TelemetrySnapshot telemetry() const;

  const Uuid& id() const noexcept;
  std::uint32_t sample_rate() const noexcept { return rate_; }
  int channels() const noexcept { return options_.channels; }
  std::string audio_client_name() const;  // JACK: the client name JACK gave us
  // The parts, for what this API does not cover yet.
  Peer& peer() noexcept { return *peer_; }
  engine::Engine* engine() noexcept { return engine_.get(); }  // null without audio

 private:
  explicit Session(SessionOptions options);
  Result<void> open();
  void control_loop();
  void explain_security_drops();
  void midi_source_loop();
  void push_event(SessionEvent e);

  SessionOptions options_;
  std::uint32_t rate_ = 48000;
  std::unique_ptr<Peer> peer_;
  // Declared before the engine: the audio thread uses them until it stops.
  std::unique_ptr<sync::AudioDeviceClock> device_clock_;
  std::unique_ptr<AudioBridge> bridge_;
  std::unique_ptr<engine::Engine> engine_;
  engine::io::AudioBackend* backend_ = nullptr;
  engine::io::HostBackend* host_ = nullptr;
  engine::io::JackAudioBackend* jack_audio_ = nullptr;
  std::unique_ptr<engine::io::JackMidi> jack_midi_;
  // kHost MIDI: process() <-> the MIDI source thread and the playout handler.
  using TimedEvent = detail::TimedMidiEvent;
  std::unique_ptr<SpscQueue<protocol::jmid::Event>> host_midi_in_;
  std::unique_ptr<SpscQueue<TimedEvent>> host_midi_out_;
  std::optional<TimedEvent> host_midi_next_;  // audio thread: popped, not yet due
  std::atomic<std::uint64_t> block_midi_late_{0}, block_midi_dropped_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
  std::thread control_, midi_source_;

  mutable std::mutex mu_;  // events_, bridge_ control calls
  std::deque<SessionEvent> events_;
  std::uint64_t events_dropped_ = 0;
  // The app's handler, read per event on the playout thread without a lock.
  Published<MidiHandler> midi_handler_;
  std::string shown_audio_error_;
  std::uint64_t security_shown_ = 0;  // bit per kind of keyed drop already explained
};

}  // namespace jamnet
