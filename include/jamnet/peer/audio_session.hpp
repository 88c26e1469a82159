// Audio over a session: JDAT frames on audio://SESSION/N, optionally as JELLIE
// (4 streams per block, docs/jdat.md), into one adaptive jitter buffer per
// remote peer, with PNBTR concealing what never arrives.
//
// Any period: send_block() takes any number of frames. They leave as packets
// of packet_frames() frames, each a self-contained JDAT packet that fits one
// datagram; a period larger than a datagram leaves as several whole sub-blocks
// (docs/jdat.md, "Periods larger than a datagram"); beyond 16 packets in one
// block they are spaced 50 us apart, so a receiver's socket buffer is not
// overrun by one burst. Each remote peer's stream
// is played at its own packet size, channel count and rate: the receiver
// takes them from the packets and resamples to ours.
//
// Streams: a peer sends its main stream on audio://SESSION/<config.stream>
// and may add more (add_stream(): a second bus, a voice, a click), each on
// its own index with its own channel count. Receivers hear every stream.
//
// Sources: remote audio is heard through source slots keyed by the peer's
// name and stream ("name" for its main stream 0, "name/N" for stream N), so a
// peer that restarts (a new id under the same name) comes back on the same
// slot (and, through AudioBridge, the same JACK ports). A slot whose peer left
// lingers for AudioConfig::source_linger_ns, then is freed; its receiver
// (jitter buffer and all) is freed as soon as the peer leaves.
//
// Threads:
// - send_block(): the capture side (a sender thread; it makes syscalls, so not
//   the audio callback itself).
// - frames arrive on the transport's receive thread: decoded (JELLIE blocks
//   reassembled) and handed through a lock-free SPSC queue per remote peer.
// - pull() / pull_source(): the playout side (audio thread). Drains the queue
//   into that peer's jitter buffer and reads one cycle; real-time safe (no
//   allocation, no locks).
// - forget() / maintain() / sources(): the control thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/media/jdat/jitter_buffer.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/protocol/jdat.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet {

struct AudioConfig {
  std::uint16_t stream = 0;  // audio://SESSION/stream
  int channels = 1;
  // Frames per network packet. 0 (the default) chooses from period_frames:
  // the period when it fits one datagram, else its largest divisor that does
  // (protocol::jdat::choose_packet_frames). A value set here must be 16..512
  // and fit one datagram.
  int frames_per_packet = 0;
  // The block size send_block() usually gets (the audio period). Any size
  // still works; this only picks the packet size.
  int period_frames = protocol::jdat::kDefaultFrames;
  int sample_rate = 48000;
  protocol::jdat::SampleFormat format = protocol::jdat::SampleFormat::kFloat32;
  bool jellie = false;                                        // send as JELLIE (mono only)
  protocol::FormatType wire = protocol::FormatType::kBinary;  // or kCompactJsonl (debugging)
  std::size_t max_payload = protocol::kDefaultMaxPayload;     // TOAST payload bytes per datagram
  // Largest pull() the playout side makes in one call (larger ones are split).
  int max_pull_frames = 8192;
  // A source slot (and the ports an AudioBridge gave it) stays this long
  // after its peer left or timed out, so a peer that restarts comes back on it.
  Nanos source_linger_ns = 10'000'000'000;
  // channels/frames/rate of each remote stream come from its packets. On an
  // underrun the session conceals and keeps time (packets that come later
  // are late) rather than pausing: a band's timing matters more than one
  // late packet's audio. Playout is pulled once per audio cycle on the
  // device's clock, so the buffer waits only for the next cycle after a
  // packet is ready (aligned_pulls).
  media::jdat::JitterBufferConfig jitter = [] {
    media::jdat::JitterBufferConfig j;
    j.hold_on_underrun = false;
    j.aligned_pulls = true;  // pull() comes once per audio cycle, on the device's clock
    return j;
  }();
  // Network -> playout hand-off per remote stream, in packets: at least
  // this many, and always enough for the jitter buffer's largest target plus
  // 100 ms of that stream (short packets at a high rate need more).
  std::size_t queue_packets = 512;
};

struct AudioReceiverStats {
  Uuid from;
  std::string name;                       // the source's name: "peer", or "peer/N" for its stream N
  std::uint16_t stream = 0;               // audio://SESSION/<stream>
  int channels = 0;                       // of the remote stream
  int packet_frames = 0;                  // frames per packet it sends
  int sample_rate = 0;                    // its rate (resampled to ours when it differs)
  std::uint64_t packets = 0;              // JDAT frames received (JELLIE: streams)
  std::uint64_t blocks = 0;               // blocks handed to the jitter buffer
  std::uint64_t jellie_exact = 0;         // JELLIE blocks rebuilt bit-exactly
  std::uint64_t jellie_recovered = 0;     // ... of which with 1 or 2 streams missing
  std::uint64_t jellie_interpolated = 0;  // one half interpolated (3 streams missing)
  std::uint64_t jellie_lost = 0;          // nothing usable: concealed by PNBTR
  std::uint64_t decode_errors = 0;
  std::uint64_t format_mismatch =
      0;  // frames whose layout differs from the stream's first: dropped
  std::uint64_t queue_full = 0;
  std::uint64_t backlog_skipped = 0;  // waited longer than max_target before playout started
  media::jdat::JitterBufferStats jitter;
  std::uint64_t concealed_blocks =
      0;           // packets' worth of audio PNBTR made up (lost, late, underruns)
  float peak = 0;  // largest |sample| of the last pull (the stream's level)
};

// One source slot, as the control thread sees it.
struct AudioSourceInfo {
  std::size_t index = 0;  // stable for the slot's life: AudioSession::pull_source(index, ...)
  std::string name;       // the peer's name, "peer/N" for its stream N > 0
  std::uint16_t stream = 0;
  std::optional<Uuid> peer;  // the peer heard on it now; nullopt while it lingers
  Nanos gone_since_ns = 0;   // when its peer left (lingering slots)
};

struct AudioStats {
  std::uint64_t blocks_sent = 0;    // send_block() calls
  std::uint64_t frames_sent = 0;    // frames given to send_block()
  std::uint64_t packets_sent = 0;   // JDAT packets, all destinations
  std::uint64_t bytes_sent = 0;     // TOAST frames on the wire, all destinations
  int packet_frames = 0;            // frames per packet we send
  std::uint64_t encode_errors = 0;  // packets that could not be encoded: not sent
  std::uint64_t send_errors = 0;    // datagrams the socket refused
  std::uint64_t bad_blocks = 0;     // send_block() calls with a partial frame: dropped
  std::string last_error;           // plain words for the latest of those; empty if none
  struct Stream {
    std::uint16_t stream = 0;  // audio://SESSION/<stream>
    int channels = 0, packet_frames = 0;
    std::uint64_t blocks = 0, frames = 0, packets = 0;
  };
  std::vector<Stream> streams;  // ours: the main one first, then add_stream()'s
  std::uint64_t receivers_created = 0;
  std::uint64_t receivers_freed = 0;
  // Streams not heard: every source slot taken, or their peer already
  // heard on kMaxStreams of them.
  std::uint64_t sources_refused = 0;
  std::vector<AudioReceiverStats> receivers;
};

// Whether a stream that stopped `since_end_ns` ago has had time to play out
// through the jitter buffer and a link of up to `link_delay_ns`. Counts taken
// later include the buffer running dry, which is not concealment of the stream.
bool stream_played_out(const AudioReceiverStats& s, Nanos since_end_ns, Nanos link_delay_ns);

// A source's name: the peer's name for stream 0, "name/N" for stream N.
std::string source_name(const std::string& peer_name, std::uint16_t stream);

// One more stream a peer sends besides its main one.
struct AudioStreamConfig {
  int channels = 1;
  int period_frames = protocol::jdat::kDefaultFrames;  // picks the packet size, as AudioConfig's
};

class AudioSession {
 public:
  static constexpr std::size_t kMaxSources = 32;
  // Streams one peer sends: its main one and up to kMaxStreams - 1 more.
  static constexpr std::size_t kMaxStreams = 16;

  // Fails when the configuration cannot work (say, channels that do not fit a
  // datagram even at the smallest packet): Peer::start reports it.
  static Result<void> check(const AudioConfig& config);

  AudioSession(const AudioConfig& config, net::Transport& transport, net::SessionRegistry& registry,
               net::Discovery& discovery, const Uuid& session);
  ~AudioSession();
  AudioSession(const AudioSession&) = delete;
  AudioSession& operator=(const AudioSession&) = delete;

  void stop();
  const AudioConfig& config() const noexcept { return config_; }
  int packet_frames() const noexcept;  // of the main stream

  // Any number of whole interleaved frames (channels each), sent to every
  // peer as packets of packet_frames() frames. One sender thread.
  void send_block(std::span<const float> interleaved);
  // Control thread: one more stream of our own, on the lowest free index
  // (the main stream's is config().stream). Returns its handle for
  // send_block(handle, ...); fails past kMaxStreams or for a layout that does
  // not fit a datagram.
  Result<std::size_t> add_stream(const AudioStreamConfig& config);
  // The same as send_block() on stream `handle` (0: the main stream), from
  // one thread per stream. A handle add_stream() did not return is counted
  // as a bad block.
  void send_block(std::size_t handle, std::span<const float> interleaved);
  std::uint16_t stream_index(std::size_t handle) const noexcept;
  // Playout of `from`'s main stream: frames * channels interleaved samples (our
  // channel count) for local time now_ns. Silence until that peer's stream
  // has started. A mono stream fills every channel; otherwise channel i
  // plays the stream's channel i (silence where it has none).
  void pull(const Uuid& from, std::span<float> out, Nanos now_ns);
  // The same for whoever is heard on source slot `index` now.
  void pull_source(std::size_t index, std::span<float> out, Nanos now_ns);

  // Control thread: `id` left, timed out or restarted: free its receivers
  // (every stream); their source slots linger.
  void forget(const Uuid& id);
  // Control thread, every few tens of ms: frees slots that lingered long
  // enough and receivers nothing reads any more.
  void maintain(Nanos now);
  std::vector<AudioSourceInfo> sources() const;

  AudioStats stats() const;
  // True once `from`'s stream has been heard (cheap: no statistics copied).
  bool heard_from(const Uuid& from) const;
  // One sender's figures (its main stream); nullopt until it has been heard.
  std::optional<AudioReceiverStats> stats_from(const Uuid& from) const;
  // ... and of its stream `stream`.
  std::optional<AudioReceiverStats> stats_from(const Uuid& from, std::uint16_t stream) const;
  // Per-packet time spent in `from`'s jitter buffer (ns); call when the
  // playout of that peer is stopped.
  std::vector<Nanos> held_ns_history(const Uuid& from) const;

 private:
  struct Receiver;
  struct Source {
    std::atomic<Receiver*> rx{nullptr};
    // control side, under mu_
    std::string name;  // source_name(peer, stream)
    std::uint16_t stream = 0;
    bool used = false;
    Nanos gone_since_ns = 0;
  };
  // Lock-free readers (pull, on_frame) announce themselves so a receiver is
  // freed only once nobody can still hold a pointer to it.
  struct ReadGuard {
    explicit ReadGuard(std::atomic<int>& r) : readers(r) {
      readers.fetch_add(1, std::memory_order_seq_cst);
    }
    ~ReadGuard() { readers.fetch_sub(1, std::memory_order_seq_cst); }
    std::atomic<int>& readers;
  };

  struct Sender;
  void on_frame(const net::ReceivedFrame& rx);
  void send_packet(Sender& s, const protocol::jdat::JdatHeader& h,
                   std::span<const std::uint32_t> words);
  void send_packetised(Sender& s, std::span<const float> interleaved);
  void note_error(std::atomic<std::uint64_t>& counter, const std::string& message);
  Receiver* find_receiver(const Uuid& id, std::uint16_t stream) const;
  Receiver* create_receiver(const Uuid& id, std::uint16_t stream,
                            const protocol::jdat::JdatHeader& h);
  void play(Receiver& r, std::span<float> out, Nanos now_ns);
  AudioReceiverStats receiver_stats(Receiver& r) const;
  void retire_locked(Receiver* r);
  void reclaim_locked();

  AudioConfig config_;
  net::Transport& transport_;
  net::SessionRegistry& registry_;
  net::Discovery& discovery_;
  Uuid session_;
  net::SubscriptionId sub_ = 0;
  std::atomic<bool> running_{true};

  // send side: one Sender per stream, each used by one sender thread;
  // published once (add_stream), freed with the session.
  std::array<std::unique_ptr<Sender>, kMaxStreams> sender_store_;
  std::array<std::atomic<Sender*>, kMaxStreams> senders_{};
  std::mutex streams_mu_;  // add_stream()
  std::atomic<std::uint64_t> encode_errors_{0}, send_errors_{0}, bad_blocks_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;
  // The first failed send, as plain values from the sender thread (worded
  // by stats(), off it): written once, then published by the flag.
  struct FirstSendFailure {
    net::SendFailure failure;
    net::Endpoint to;
    std::size_t payload_size = 0;
  } first_send_failure_;
  std::atomic<bool> first_send_failure_set_{false};

  // receive side
  mutable std::mutex mu_;  // control side of sources_, receivers_, retired_
  std::array<Source, kMaxSources> sources_{};
  std::vector<std::unique_ptr<Receiver>> receivers_;  // live (published in a source slot)
  std::vector<std::unique_ptr<Receiver>> retired_;    // unpublished, maybe still read
  mutable std::atomic<int> readers_{0};
  std::atomic<std::uint64_t> receivers_created_{0}, receivers_freed_{0}, sources_refused_{0};
};

}  // namespace jamnet
