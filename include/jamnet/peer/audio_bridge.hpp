// AudioBridge: the engine's cycle <-> a peer's AudioSession. `jamnet peer --jack`
// runs it as the Engine's AudioProcessor:
// - capture: the local inputs (send_1..send_N) are interleaved into a
//   preallocated block ring each cycle, whatever the cycle's size; a sender
//   thread hands them to the session, which cuts them into packets (sending
//   is a syscall, so it never happens on the audio thread);
// - more streams: SendStream::write() from any one thread (the audio
//   thread too) puts samples in a lock-free ring; the same sender thread
//   hands them to the session as their own stream (AudioSession::add_stream);
// - playback: each source slot of the session (a remote peer, by name) gets
//   N output ports ("<peer>_1".."<peer>_N"), registered by the control thread
//   (update()) and published to the audio thread through atomics; the cycle
//   pulls that source's jitter buffer straight into them. A peer that
//   restarts comes back on the same slot, so its ports and their JACK
//   connections stay; the ports go when the session frees the slot
//   (AudioConfig::source_linger_ns after the peer left).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/core/spsc_queue.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/core/wakeup.hpp"
#include "jamnet/engine/engine.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/peer/audio_session.hpp"
#include "jamnet/sync/clock_source.hpp"

namespace jamnet {

// Called on the audio thread with each source's decoded audio for this cycle
// (interleaved, the session's channel count, before the mix gain): a
// recorder, a level meter, speech recognition. Must be real-time safe.
using AudioTapFn = void (*)(void* user, std::size_t source, std::span<const float> interleaved,
                            Nanos cycle_start_ns) noexcept;

// Called on the audio thread at the start of each cycle to fill what is sent
// (one buffer of `frames` per channel) instead of the backend's inputs: a
// generated or preloaded signal on the null backend (the demo, tests). Must
// be real-time safe.
using AudioInputFn = void (*)(void* user, std::span<float* const> channels, std::uint32_t frames,
                              std::uint64_t frame_time) noexcept;

// The personal mix of one remote source (by peer name), defined once for
// every app: gain in dB, mute, and pan from -1 (left) to +1 (right). Pan
// applies to 2-channel audio (a balance law: centre leaves both channels at
// the gain; towards one side the other channel falls linearly to silence);
// other channel counts take the gain alone.
struct MixSetting {
  double gain_db = 0;
  bool mute = false;
  double pan = 0;
};

struct AudioBridgeConfig {
  std::size_t send_queue_blocks = 64;  // capture -> sender hand-off
  int sender_rt_priority = 1;          // below the audio thread (JACK's is higher)
  Nanos sender_idle_ns = 20'000'000;   // sender's longest sleep (a ready block wakes it)
  // Fed every cycle with the device's frame counter and its monotonic time,
  // so the sync layer can place transport events on the device's samples.
  sync::AudioDeviceClock* device_clock = nullptr;
  // false: every source gets its own ports (<peer>_1..N, added to the
  // backend); true: the backend's first N outputs carry one mix of all
  // sources (the host-driven backend, a file, a plugin).
  bool mix_outputs = false;
  // false: listen only (nothing captured or sent; no sender thread).
  bool send = true;
  AudioTapFn tap = nullptr;
  void* tap_user = nullptr;
  AudioInputFn input = nullptr;
  void* input_user = nullptr;
};

struct AudioBridgeStats {
  std::uint64_t cycles = 0;
  std::uint64_t captured = 0;             // blocks queued for sending
  std::uint64_t sent = 0;                 // blocks sent
  std::uint64_t send_queue_full = 0;      // blocks dropped: the sender fell behind
  std::uint64_t too_large = 0;            // cycles larger than a capture slot: not sent
  std::uint64_t port_errors = 0;          // ports that could not be added or removed
  std::string last_error;                 // plain words for the latest port error
  std::vector<std::string> remote_ports;  // registered output ports, in order
  std::vector<std::pair<std::string, MixSetting>> mix;  // settings by source name
  // add_stream()'s
  struct Stream {
    std::uint16_t index = 0;
    int channels = 0;
    std::uint64_t frames_written = 0, frames_dropped = 0;
  };
  std::vector<Stream> streams;
};

// One more stream of our own (a second bus, a voice, a click track), besides
// the captured inputs. Its audio is whatever the app writes.
class SendStream {
 public:
  std::uint16_t index() const noexcept { return index_; }  // audio://SESSION/<index>
  int channels() const noexcept { return channels_; }
  // Any whole number of interleaved frames, from one thread at a time (the
  // audio thread may: no allocation or lock; the one syscall is a semaphore
  // post, a non-blocking futex wake when the sender sleeps). The frames are
  // queued and sent in order by the bridge's sender thread. False when they
  // do not fit the queue (kQueueFrames) or are not whole frames: dropped and
  // counted.
  bool write(std::span<const float> interleaved) noexcept;
  static constexpr std::size_t kQueueFrames = 32768;  // ~0.7 s at 48 kHz
  std::uint64_t frames_written() const noexcept { return written_.load(std::memory_order_relaxed); }
  std::uint64_t frames_dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

 private:
  friend class AudioBridge;
  SendStream(std::size_t handle, std::uint16_t index, int channels, Wakeup* wake)
      : handle_(handle),
        index_(index),
        channels_(channels),
        wake_(wake),
        queue_(kQueueFrames * static_cast<std::size_t>(channels)),
        out_(4096 * static_cast<std::size_t>(channels)) {}
  std::size_t handle_;  // AudioSession::send_block(handle, ...)
  std::uint16_t index_;
  int channels_;
  Wakeup* wake_;  // the bridge's sender
  SpscQueue<float> queue_;
  std::vector<float> out_;  // sender thread: up to 4096 frames taken from the queue
  std::atomic<std::uint64_t> written_{0}, dropped_{0};
};

struct AudioBridgeUpdate {
  std::vector<std::string> added;    // ports added by this call
  std::vector<std::string> removed;  // ports removed by this call
};

class AudioBridge final : public engine::AudioProcessor {
 public:
  static constexpr std::size_t kMaxRemotes = AudioSession::kMaxSources;

  static Result<std::unique_ptr<AudioBridge>> create(AudioSession& session,
                                                     engine::io::AudioBackend& backend,
                                                     const AudioBridgeConfig& config = {});
  ~AudioBridge() override;
  AudioBridge(const AudioBridge&) = delete;
  AudioBridge& operator=(const AudioBridge&) = delete;

  void start();  // the sender thread
  void stop();   // idempotent

  // Control thread: one more stream of ours (AudioSession::add_stream), fed
  // through SendStream::write(); it lives as long as the bridge. Needs
  // AudioBridgeConfig::send.
  Result<SendStream*> add_stream(const AudioStreamConfig& config);

  // Control thread, every few tens of ms: gives ports to the session's
  // source slots, and removes those of slots it freed.
  AudioBridgeUpdate update();
  AudioBridgeStats stats() const;
  // Control thread: the mix of source `name` (a peer name), now and for a
  // peer of that name heard later. At most kMaxMixSettings names are kept
  // (the oldest setting of a name not heard now goes first).
  Result<void> set_mix(const std::string& name, const MixSetting& m);
  static constexpr std::size_t kMaxMixSettings = 256;

  void process(const engine::io::AudioBlock& block) noexcept override;

 private:
  AudioBridge(AudioSession& session, engine::io::AudioBackend& backend,
              const AudioBridgeConfig& config);
  void sender_loop();
  void capture(const engine::io::AudioBlock& block) noexcept;

  struct Remote {
    std::atomic<bool> active{false};  // read by the audio thread
    // Linear; [1] is the right channel of stereo.
    std::array<std::atomic<float>, 2> gain{1.0f, 1.0f};
    // One per channel; set before active, read by the audio thread.
    std::vector<std::size_t> outputs;
    std::string name;  // control thread
  };

  AudioSession& session_;
  engine::io::AudioBackend& backend_;
  AudioBridgeConfig config_;
  std::size_t channels_;
  std::size_t slot_frames_;  // largest cycle a capture slot holds

  // capture ring: slot = seq % slots; the queue carries seqs
  std::vector<float> ring_;
  std::vector<std::uint32_t> ring_frames_;  // frames in each slot
  std::size_t slots_;
  SpscQueue<std::uint64_t> ready_;
  std::uint64_t next_seq_ = 0;  // audio thread
  std::vector<float> scratch_;  // audio thread: one interleaved pull
  std::vector<float> input_;    // audio thread: config_.input's buffers
  std::vector<float*> input_ptrs_;

  std::array<std::unique_ptr<SendStream>, AudioSession::kMaxStreams> stream_store_;
  std::array<std::atomic<SendStream*>, AudioSession::kMaxStreams> streams_{};  // read by the sender

  std::array<Remote, kMaxRemotes> remotes_{};
  std::vector<std::string> port_names_;                  // control thread
  std::vector<std::pair<std::string, MixSetting>> mix_;  // control thread
  void apply_mix(Remote& r);
  std::string last_error_;  // control thread

  std::atomic<bool> running_{false};
  Wakeup wake_;  // posted when a block or stream frames are ready for the sender
  std::thread sender_;
  std::atomic<std::uint64_t> cycles_{0}, captured_{0}, sent_{0}, full_{0}, too_large_{0},
      port_errors_{0};
};

}  // namespace jamnet
