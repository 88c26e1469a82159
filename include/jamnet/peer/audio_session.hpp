// Audio over a session: JDAT frames on audio://SESSION/N, optionally as JELLIE
// (4 streams per block, docs/jdat.md), into one adaptive jitter buffer per
// remote peer, with PNBTR concealing what never arrives.
//
// Threads:
// - send_block(): the capture side (a sender thread; it makes syscalls, so not
//   the audio callback itself).
// - frames arrive on the transport's receive thread: decoded (JELLIE blocks
//   reassembled) and handed through a lock-free SPSC queue per remote peer.
// - pull(): the playout side (audio thread). It drains the queue into that
//   peer's jitter buffer and reads one cycle; real-time safe (no allocation,
//   no locks) once the peer's receiver exists.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/media/jdat/jitter_buffer.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/protocol/jdat.hpp"

namespace jamnet {

struct AudioConfig {
  std::uint16_t stream = 0;  // audio://SESSION/stream
  int channels = 1;
  int frames_per_packet = protocol::jdat::kDefaultFrames;
  int sample_rate = 48000;
  protocol::jdat::SampleFormat format = protocol::jdat::SampleFormat::kFloat32;
  bool jellie = false;                                        // send as JELLIE (mono only)
  protocol::FormatType wire = protocol::FormatType::kBinary;  // or kCompactJsonl (debugging)
  // channels/frames/rate are taken from above. On an underrun the session
  // conceals and keeps time (packets that come later are late) rather than
  // pausing: a band's timing matters more than one late packet's audio.
  // Playout is pulled once per audio cycle on the device's clock, so the
  // buffer waits only for the next cycle after a packet is ready (aligned_pulls).
  media::jdat::JitterBufferConfig jitter = [] {
    media::jdat::JitterBufferConfig j;
    j.hold_on_underrun = false;
    j.aligned_pulls = true;  // pull() comes once per audio cycle, on the device's clock
    return j;
  }();
  std::size_t queue_packets = 512;  // network -> playout hand-off per remote peer
};

struct AudioReceiverStats {
  Uuid from;
  std::uint64_t packets = 0;              // JDAT frames received (JELLIE: streams)
  std::uint64_t blocks = 0;               // blocks handed to the jitter buffer
  std::uint64_t jellie_exact = 0;         // JELLIE blocks rebuilt bit-exactly
  std::uint64_t jellie_recovered = 0;     // ... of which with 1 or 2 streams missing
  std::uint64_t jellie_interpolated = 0;  // one half interpolated (3 streams missing)
  std::uint64_t jellie_lost = 0;          // nothing usable: concealed by PNBTR
  std::uint64_t decode_errors = 0;
  std::uint64_t format_mismatch = 0;  // frames whose layout differs from ours: dropped
  std::uint64_t queue_full = 0;
  std::uint64_t backlog_skipped = 0;  // waited longer than max_target before playout started
  media::jdat::JitterBufferStats jitter;
  std::uint64_t concealed_blocks =
      0;  // packets' worth of audio PNBTR made up (lost, late, underruns)
};

struct AudioStats {
  std::uint64_t blocks_sent = 0;
  std::uint64_t packets_sent = 0;
  std::uint64_t bytes_sent = 0;  // TOAST frames on the wire, all destinations
  std::vector<AudioReceiverStats> receivers;
};

class AudioSession {
 public:
  AudioSession(const AudioConfig& config, net::Transport& transport, net::SessionRegistry& registry,
               net::Discovery& discovery, const Uuid& session);
  ~AudioSession();
  AudioSession(const AudioSession&) = delete;
  AudioSession& operator=(const AudioSession&) = delete;

  void stop();
  const AudioConfig& config() const noexcept { return config_; }

  // One block: frames_per_packet interleaved frames, sent to every peer.
  void send_block(std::span<const float> interleaved);
  // Playout of what `from` sends: frames * channels interleaved samples for
  // local time now_ns. Silence until that peer's stream has started.
  void pull(const Uuid& from, std::span<float> out, Nanos now_ns);
  AudioStats stats() const;
  // True once `from`'s stream has been heard (cheap: no statistics copied).
  bool heard_from(const Uuid& from) const { return find_receiver(from) != nullptr; }
  // One sender's figures; nullopt until that peer has been heard.
  std::optional<AudioReceiverStats> stats_from(const Uuid& from) const;
  // Per-packet time spent in `from`'s jitter buffer (ns); call when the
  // playout of that peer is stopped.
  std::vector<Nanos> held_ns_history(const Uuid& from) const;

 private:
  struct Receiver;
  void on_frame(const net::ReceivedFrame& rx);
  Receiver* receiver_for(const Uuid& id);
  Receiver* find_receiver(const Uuid& id) const;
  AudioReceiverStats receiver_stats(Receiver& r) const;

  AudioConfig config_;
  net::Transport& transport_;
  net::SessionRegistry& registry_;
  net::Discovery& discovery_;
  Uuid session_;
  net::SubscriptionId sub_ = 0;
  std::atomic<bool> running_{true};

  // send side (one sender thread)
  std::uint64_t next_frame_;
  std::vector<std::uint32_t> words_;
  std::vector<std::uint8_t> payload_;
  std::atomic<std::uint64_t> blocks_sent_{0}, packets_sent_{0}, bytes_sent_{0};

  // receivers: created on the network thread, never removed while running.
  // The playout side finds them through published_ without a lock.
  static constexpr std::size_t kMaxReceivers = 32;
  mutable std::mutex receivers_mu_;
  std::unordered_map<Uuid, std::unique_ptr<Receiver>, UuidHash> receivers_;
  std::array<std::atomic<Receiver*>, kMaxReceivers> published_{};
  std::atomic<std::size_t> published_count_{0};
};

}  // namespace jamnet
