// The UDP transport: one unicast socket for everything a node sends and most of
// what it receives, plus an optional multicast socket. A receive thread
// decodes TOAST frames, drops duplicates, counts everything per sender and
// stream, and hands frames to the SessionRegistry.
//
// The receive thread is real-time (ARCHITECTURE.md, Threads): per datagram
// it neither allocates nor takes a lock. Its per-sender and per-stream counts
// live in tables it alone owns, allocated once and capped (max_sources,
// max_streams; when full, the entry heard from longest ago is evicted and
// counted). Readers (stream_stats, source_stats, totals, forget) ask the
// thread for a fresh copy and wait for it, a few microseconds when it is idle.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/fixed_map.hpp"
#include "jamnet/core/mpsc_queue.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/core/snapshot_requests.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/net/flood_gate.hpp"
#include "jamnet/net/sequence_tracker.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/udp_socket.hpp"
#include "jamnet/protocol/security.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::net {

// A keyed session (docs/protocol.md, Security): its frames are sealed on
// send, and on receive must open with its key and must not be replays;
// those that do not are dropped and counted before any per-stream state is
// made for them. Other sessions on the same transport are not affected.
struct KeyedSession {
  Uuid session;
  protocol::SessionKey key;
  Uuid self;                      // our peer id: the nonces' sender tag
  std::uint64_t incarnation = 0;  // fresh per start: nonces never repeat across restarts
  unsigned epoch_bits = 24;       // a new epoch key every 2^epoch_bits frames sent
};

struct TransportConfig {
  Endpoint bind = Endpoint::loopback(0);
  std::optional<Endpoint> multicast;  // group:port to join, and to send group frames to
  // Interface address for multicast in and out. Default: the bind address, or
  // 127.0.0.1 when binding to loopback; any (kernel's choice) when bind is 0.0.0.0.
  std::optional<std::uint32_t> multicast_iface;
  protocol::CodecLimits limits;
  // Session timeline for the header timestamp; the sync layer replaces it.
  std::function<Nanos()> session_clock = monotonic_ns;
  // Caps of the per-sender and per-stream tables (bounded state).
  std::size_t max_sources = 1024;
  std::size_t max_streams = 4096;
  std::optional<KeyedSession> keyed;
  // Work on datagrams from sources not verified yet (docs/protocol.md,
  // Bounded state): limited in total and per /24.
  FloodGateConfig flood;
  // False: no receive thread; the caller hands datagrams to receive() (the
  // whole-session fuzzer, replay tools). The socket is still bound (sends work).
  bool receive_thread = true;
};

// Counts for one stream (topic) from one sender address.
struct StreamStats {
  Endpoint from;
  Uuid session;
  Topic topic;
  bool via_multicast = false;
  SequenceCounts counts;
  std::uint64_t bytes = 0;
  Nanos last_rx_ns = 0;
};

// Counts for one sender address, before any frame field is trusted.
struct SourceStats {
  Endpoint from;
  std::uint64_t datagrams = 0;
  std::uint64_t corrupt = 0;          // failed the CRC
  std::uint64_t malformed = 0;        // any other decode error
  std::uint64_t foreign_session = 0;  // valid frame of a session we did not join
  protocol::FrameErrorCounts errors;
};

struct TransportTotals {
  std::uint64_t frames_sent = 0;
  std::uint64_t send_failures = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t frames_delivered = 0;
  std::uint64_t own_multicast_ignored = 0;
  std::uint64_t sources_evicted = 0;  // per-sender entries pushed out of a full table
  std::uint64_t streams_evicted = 0;  // per-stream entries (and their dedupe state) likewise
  // Datagrams from sources not verified yet, dropped unread: over the flood
  // gate's budget (a flood, or a very busy /24).
  std::uint64_t flood_dropped = 0;
  protocol::FrameErrorCounts errors;
  // Frames of the keyed session dropped before delivery (all zero when open).
  std::uint64_t keyed_opened = 0;
  std::uint64_t keyed_failed = 0;     // did not authenticate: wrong key, damaged, forged, too short
  std::uint64_t keyed_replayed = 0;   // authenticated but seen before, or too old
  std::uint64_t keyed_bad_epoch = 0;  // an epoch older than its sender's previous one
  std::uint64_t keyed_stale = 0;      // a new sender run's frame sealed over 120 s from our clock
  std::uint64_t keyed_senders_evicted = 0;
};

struct SendOptions {
  Uuid session;
  Topic topic;
  std::uint16_t kind = 0;
  protocol::FormatType format = protocol::FormatType::kBinary;
  std::optional<Nanos> timestamp_ns;  // default: the session clock now
  // No per-destination sequence counter (a random sequence instead): for
  // answers to addresses not proven, which must leave no state behind.
  bool untracked = false;
};

// Why a real-time send failed, in plain values (no text is built there).
struct SendFailure {
  enum class Kind : std::uint8_t { kEncode, kIo } kind = Kind::kIo;
  protocol::FrameError frame_error = protocol::FrameError::kPayloadTooLarge;  // kEncode
  int err = 0;                                                                // kIo: errno
};
// The failure in plain words, naming the destination.
std::string describe(const SendFailure& f, std::size_t payload_size, const Endpoint& to,
                     const protocol::CodecLimits& limits);

class Transport {
 public:
  static Result<std::unique_ptr<Transport>> start(const TransportConfig& config,
                                                  SessionRegistry& registry);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  void stop();

  // Encodes and sends one frame; returns its sequence number. Thread-safe.
  Result<std::uint32_t> send(const SendOptions& opts, std::span<const std::uint8_t> payload,
                             const Endpoint& to);
  // The same for real-time threads: a failure builds no text (counted in
  // send_failures; describe() words it later, off that thread). The first
  // frame to a new destination creates its sequence counter (once).
  std::expected<std::uint32_t, SendFailure> send_rt(const SendOptions& opts,
                                                    std::span<const std::uint8_t> payload,
                                                    const Endpoint& to);
  // Sends to the multicast group; an error when multicast is off.
  Result<std::uint32_t> send_to_group(const SendOptions& opts,
                                      std::span<const std::uint8_t> payload);

  Endpoint local() const noexcept { return data_.local(); }
  std::optional<Endpoint> group() const noexcept { return config_.multicast; }
  Nanos session_now() const { return config_.session_clock(); }
  const protocol::CodecLimits& limits() const noexcept { return config_.limits; }
  // The largest payload one frame carries (less the seal when keyed):
  // what packet sizing must budget for.
  std::size_t max_payload() const noexcept;
  bool keyed() const noexcept { return config_.keyed.has_value(); }

  // A peer at `from` is gone: its per-source and per-stream figures go
  // (what they added to totals() stays).
  void forget(const Endpoint& from);
  // Without a receive thread (TransportConfig::receive_thread false): one
  // datagram as if it arrived from `from` at `rx_ns` (monotonic), handled on
  // the caller's thread. Ignored (false) while a receive thread runs.
  bool receive(std::span<const std::uint8_t> bytes, const Endpoint& from, bool via_multicast,
               Nanos rx_ns);
  // Fresh copies from the receive thread (they wait for it, briefly).
  std::vector<StreamStats> stream_stats() const;
  std::vector<SourceStats> source_stats() const;
  TransportTotals totals() const;

 private:
  Transport(TransportConfig config, SessionRegistry& registry);
  void receive_loop();
  void drain(UdpSocket& sock, bool via_multicast);
  void handle(std::span<const std::uint8_t> bytes, const Datagram& dg, bool via_multicast);
  void serve_requests();
  void apply_forget(const Endpoint& from);
  void publish_locked() const;
  void drain_forgets_and_publish() const;
  void wake() const;

  TransportConfig config_;
  SessionRegistry& registry_;
  UdpSocket data_;
  std::optional<UdpSocket> group_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::vector<std::uint8_t> rx_buffer_;
  // Keyed session: the sealer (any sending thread) and the opener with the
  // plaintext buffer (the receive thread's).
  std::unique_ptr<protocol::Sealer> sealer_;
  std::unique_ptr<protocol::Opener> opener_;
  std::vector<std::uint8_t> plain_;

  using StreamKey =
      std::tuple<std::uint32_t, std::uint16_t, bool, Uuid, std::uint8_t, std::uint16_t>;
  struct StreamKeyHash {
    std::size_t operator()(const StreamKey& k) const noexcept;
  };
  struct StreamState {
    SequenceTracker tracker;
    std::uint64_t bytes = 0;
    Nanos last_rx_ns = 0;
  };
  struct SourceState {
    SourceStats stats;
    Nanos last_rx_ns = 0;
    bool verified = false;  // a frame of it reached a joined session (keyed: opened)
  };
  FloodGate gate_;
  // Owned by the receive thread while it runs (by the caller when it does not).
  FixedMap<Endpoint, SourceState, EndpointHash> sources_;
  FixedMap<StreamKey, StreamState, StreamKeyHash> streams_;
  TransportTotals totals_;
  std::atomic<std::uint64_t> frames_sent_{0};
  std::atomic<std::uint64_t> send_failures_{0};

  // Readers' requests, served between datagrams: forgets, then a snapshot.
  mutable MpscQueue<Endpoint> forget_requests_{64};
  // The receive thread owns the tables while it serves; readers get copies.
  SnapshotRequests requests_;
  mutable std::vector<SourceStats> snap_sources_;
  mutable std::vector<StreamStats> snap_streams_;
  mutable TransportTotals snap_totals_;
};

}  // namespace jamnet::net
