// A Peer is one node of a session: transport, discovery and heartbeat, MIDI,
// audio and sync, and a control thread that drives them. Its control thread
// also acts on peers that leave, time out or restart (their notes released,
// their audio receivers freed) before apps see the event.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/audio_session.hpp"
#include "jamnet/peer/midi_session.hpp"
#include "jamnet/peer/sync_session.hpp"
#include "jamnet/protocol/security.hpp"

namespace jamnet {

// A session is named by a UUID; people may use a name instead, which maps to a
// fixed UUID, the same on every machine: the UUID v5 of the name (RFC 9562,
// in JAMNet's namespace). With a key, the id comes from the key and the name
// (protocol::keyed_session_id), so two bands that pick the same name never
// meet. A UUID given as text is taken as it is when there is no key.
Uuid session_id_from(std::string_view name_or_uuid);
Uuid session_id_from(std::string_view name_or_uuid, const protocol::SessionKey& key);

inline constexpr std::uint16_t kDefaultMulticastPort = 47700;
inline constexpr std::uint32_t kDefaultMulticastGroup = 0xEFFF4A4Du;  // 239.255.74.77

struct PeerConfig {
  std::string name = "peer";
  Uuid session;
  std::optional<Uuid> id;  // default: random per process
  net::Endpoint bind = net::Endpoint::loopback(0);
  std::optional<net::Endpoint> multicast =
      net::Endpoint{kDefaultMulticastGroup, kDefaultMulticastPort};
  std::optional<std::uint32_t> multicast_iface;
  std::vector<net::Endpoint> connect;
  Nanos announce_interval_ns = 250'000'000;
  Nanos heartbeat_interval_ns = 100'000'000;
  Nanos peer_timeout_ns = 1'500'000'000;
  // Test traffic ("probes"): CONTROL frames to every discovered peer.
  double probe_rate_hz = 0;
  std::size_t probe_payload_bytes = 200;
  std::uint64_t probe_count = 0;             // per peer; 0 = no limit
  Nanos probe_start_delay_ns = 500'000'000;  // let a new peer's address settle first
  std::optional<MidiConfig> midi;            // MIDI (JMID) on this session
  std::optional<AudioConfig> audio;          // audio (JDAT / JELLIE) on this session
  std::optional<SyncConfig> sync;            // clock sync and transport on this session
  // A keyed session: every frame sealed with this key (docs/protocol.md,
  // Security); `session` must then be session_id_from(name, key). Unset: an
  // open session, as before.
  std::optional<protocol::SessionKey> key;
  // For harnesses that feed frames themselves (the whole-session fuzzer):
  // no receive thread (datagrams go in through transport().receive()), and
  // peers need not prove their addresses. Leave both on otherwise.
  bool receive_thread = true;
  bool require_address_proof = true;
};

// What this peer knows about one remote peer.
struct LinkReport {
  net::PeerInfo info;
  std::uint64_t probes_sent = 0;
  std::uint64_t probes_received = 0;  // unique, delivered to the application
  std::uint64_t probes_lost = 0;
  std::uint64_t probes_reordered = 0;
  std::uint64_t duplicates_dropped = 0;  // by the transport, before the application
  std::uint64_t app_duplicates = 0;      // delivered twice to the application: must stay 0
  std::uint64_t corrupt = 0;             // frames from this peer that failed the CRC
  double probe_loss() const noexcept;
};

struct PeerReport {
  Uuid id;
  std::string name;
  std::uint64_t incarnation = 0;
  net::Endpoint local;
  std::vector<LinkReport> links;
  net::TransportTotals totals;
  bool keyed = false;  // a keyed session: frames sealed (docs/protocol.md, Security)
  // What the caps on state keyed by outside input turned away or forgot
  // (docs/protocol.md, Bounded state).
  net::DiscoveryStats discovery;
  net::RegistryStats registry;
  std::uint64_t probes_unproven = 0;
  std::optional<MidiStats> midi;
  std::optional<AudioStats> audio;
  std::optional<SyncReport> sync;
  nlohmann::ordered_json to_json_value() const;
  std::string to_json() const;  // to_json_value(), printed on one line
};

// Message kinds of the CONTROL stream used by the foundation.
enum class ControlKind : std::uint16_t { kProbe = 0xF001 };

class Peer {
 public:
  static Result<std::unique_ptr<Peer>> start(const PeerConfig& config);
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  // Stops the threads, after telling the others (say_goodbye) or silently, as
  // a crash would. Idempotent.
  void stop(bool say_goodbye = true);

  const Uuid& id() const noexcept { return id_; }
  const PeerConfig& config() const noexcept { return config_; }
  net::Endpoint local() const noexcept { return transport_->local(); }
  std::vector<net::PeerInfo> peers() const { return discovery_->peers(); }
  // Peers that joined, left, timed out or restarted since the last call
  // (the newest kMaxQueuedEvents are kept).
  std::vector<net::PeerEvent> take_events();
  static constexpr std::size_t kMaxQueuedEvents = 1024;
  PeerReport report() const;

  net::Transport& transport() noexcept { return *transport_; }
  net::SessionRegistry& registry() noexcept { return registry_; }
  net::Discovery& discovery() noexcept { return *discovery_; }
  // Null unless PeerConfig::midi was set.
  MidiSession* midi() noexcept { return midi_.get(); }
  // Null unless PeerConfig::audio was set.
  AudioSession* audio() noexcept { return audio_.get(); }
  // Null unless PeerConfig::sync was set.
  SyncSession* sync() noexcept { return sync_.get(); }

 private:
  explicit Peer(const PeerConfig& config);
  void control_loop();
  void dispatch_events();
  void send_probes(Nanos now);
  void on_probe(const net::ReceivedFrame& rx);

  PeerConfig config_;
  Uuid id_;
  net::SessionRegistry registry_;
  std::unique_ptr<net::Transport> transport_;
  std::unique_ptr<net::Discovery> discovery_;
  std::unique_ptr<MidiSession> midi_;
  std::unique_ptr<AudioSession> audio_;
  std::unique_ptr<SyncSession> sync_;
  std::thread control_;
  std::atomic<bool> running_{false};

  struct ProbeState {
    Nanos start_ns = 0;
    std::uint64_t sent = 0;
  };
  std::unordered_map<Uuid, ProbeState, UuidHash> probes_out_;  // control thread only
  mutable std::mutex probe_mu_;
  std::unordered_map<Uuid, std::uint64_t, UuidHash> probes_sent_;
  struct Delivered {
    std::unordered_set<std::uint32_t> seqs;
    std::uint64_t duplicates = 0;
  };
  std::unordered_map<net::Endpoint, Delivered, net::EndpointHash> delivered_;
  static constexpr std::size_t kMaxProbeSeqs = 1'000'000;  // per address
  std::atomic<std::uint64_t> probes_unproven_{0};
  std::vector<std::uint8_t> probe_payload_;
  std::mutex events_mu_;
  std::vector<net::PeerEvent> events_;
  std::uint64_t events_dropped_ = 0;
};

}  // namespace jamnet
