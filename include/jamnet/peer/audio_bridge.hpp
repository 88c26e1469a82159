// AudioBridge: the engine's cycle <-> a peer's AudioSession. `jamnet peer --jack`
// runs it as the Engine's AudioProcessor:
// - capture: the local inputs (send_1..send_N) are interleaved into a
//   preallocated block ring each cycle; a sender thread sends them (sending is
//   a syscall, so it never happens on the audio thread);
// - playback: each remote peer whose audio has been heard gets N output ports
//   ("<peer>_1".."<peer>_N"), registered by the control thread (update()) and
//   published to the audio thread through atomics; the cycle pulls that peer's
//   jitter buffer straight into them.
// One network packet is one engine cycle: AudioConfig::frames_per_packet must
// equal the backend's buffer size (the CLI sets it so).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/core/spsc_queue.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/engine/engine.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/peer/audio_session.hpp"
#include "jamnet/sync/clock_source.hpp"

namespace jamnet {

struct AudioBridgeConfig {
  std::size_t send_queue_blocks = 64;  // capture -> sender hand-off
  int sender_rt_priority = 1;          // below the audio thread (JACK's is higher)
  Nanos sender_poll_ns = 100'000;      // sender's wait when no block is ready
  // Fed every cycle with the device's frame counter and its monotonic time,
  // so the sync layer can place transport events on the device's samples.
  sync::AudioDeviceClock* device_clock = nullptr;
};

struct AudioBridgeStats {
  std::uint64_t cycles = 0;
  std::uint64_t captured = 0;             // blocks queued for sending
  std::uint64_t sent = 0;                 // blocks sent
  std::uint64_t send_queue_full = 0;      // blocks dropped: the sender fell behind
  std::uint64_t size_mismatch = 0;        // cycles whose size differs from the packet size
  std::vector<std::string> remote_ports;  // registered output ports, in order
};

class AudioBridge final : public engine::AudioProcessor {
 public:
  static constexpr std::size_t kMaxRemotes = 32;

  static Result<std::unique_ptr<AudioBridge>> create(AudioSession& session,
                                                     engine::io::AudioBackend& backend,
                                                     const AudioBridgeConfig& config = {});
  ~AudioBridge() override;
  AudioBridge(const AudioBridge&) = delete;
  AudioBridge& operator=(const AudioBridge&) = delete;

  void start();  // the sender thread
  void stop();   // idempotent

  // Control thread, every status tick: gives ports to remote peers whose audio
  // has arrived. Returns the names of ports added by this call.
  std::vector<std::string> update(const std::vector<net::PeerInfo>& peers);
  AudioBridgeStats stats() const;

  void process(const engine::io::AudioBlock& block) noexcept override;

 private:
  AudioBridge(AudioSession& session, engine::io::AudioBackend& backend,
              const AudioBridgeConfig& config);
  void sender_loop();

  struct Remote {
    Uuid id;
    std::size_t first_output = 0;
  };

  AudioSession& session_;
  engine::io::AudioBackend& backend_;
  AudioBridgeConfig config_;
  std::size_t channels_;
  std::size_t frames_;

  // capture ring: slot = seq % slots; the queue carries seqs
  std::vector<float> ring_;
  std::size_t slots_;
  SpscQueue<std::uint64_t> ready_;
  std::uint64_t next_seq_ = 0;  // audio thread
  std::vector<float> scratch_;  // audio thread: one interleaved pull

  std::array<Remote, kMaxRemotes> remotes_{};
  std::atomic<std::size_t> remote_count_{0};
  std::vector<std::string> port_names_;  // control thread

  std::atomic<bool> running_{false};
  std::thread sender_;
  std::atomic<std::uint64_t> cycles_{0}, captured_{0}, sent_{0}, full_{0}, mismatch_{0};
};

}  // namespace jamnet
