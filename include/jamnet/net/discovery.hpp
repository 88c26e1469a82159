// Discovery and heartbeat: peers announce themselves (multicast group and
// configured unicast targets), ping each other for RTT, and time out.
//
// Where to reach a peer. A peer may be heard on several paths at once (the
// multicast group directly, and through a relay such as netsim). The address
// used is, in order of preference, the freshest of:
//   1. a configured --connect target the peer's frames come from (pinned);
//   2. the source of the peer's unicast announcements;
//   3. the source of its multicast announcements.
// Pings and pongs move an address only as 1. says (any frame from a
// configured target pins it); otherwise they only prove liveness. Unicast
// announcements go to configured targets and to peers learned by unicast;
// multicast-learned peers hear our multicast announcements. So a path through
// a relay, once configured, is the one used in both directions.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/published.hpp"
#include "jamnet/core/sample_stats.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"

namespace jamnet::net {

struct DiscoveryConfig {
  Uuid session;
  Uuid peer_id;
  std::uint64_t incarnation = 0;  // default: set from the clock at construction
  std::string name;
  std::vector<Endpoint> unicast_targets;  // --connect
  bool use_multicast = true;
  Nanos announce_interval_ns = 250'000'000;
  Nanos heartbeat_interval_ns = 100'000'000;
  Nanos peer_timeout_ns = 1'500'000'000;
};

enum class AddressSource : std::uint8_t { kPinned, kUnicast, kMulticast };
std::string_view to_string(AddressSource s) noexcept;

struct PeerInfo {
  Uuid id;
  std::string name;
  std::uint64_t incarnation = 0;
  Endpoint address;
  AddressSource source = AddressSource::kMulticast;
  Nanos first_seen_ns = 0;
  Nanos last_seen_ns = 0;
  Nanos first_rtt_ns = 0;  // when the first pong came back: the link is usable
  double rtt_last_ms = 0;
  double rtt_p50_ms = 0;
  double rtt_p99_ms = 0;
  std::uint64_t pings_sent = 0;
  std::uint64_t pongs_received = 0;
  std::uint32_t restarts = 0;
  // Heartbeat loss: pings without a pong, over those old enough to have one.
  double heartbeat_loss() const noexcept;
};

enum class PeerEventKind : std::uint8_t { kJoined, kRestarted, kLeft, kTimedOut };
struct PeerEvent {
  PeerEventKind kind;
  Uuid id;
  std::string name;
  Nanos at_ns;
  // kLeft, kTimedOut: the addresses it was known at, so what is kept per
  // address (transport figures, send sequence numbers) can go with it.
  std::vector<Endpoint> addresses = {};
};
std::string_view to_string(PeerEventKind k) noexcept;

class Discovery {
 public:
  Discovery(DiscoveryConfig config, Transport& transport, SessionRegistry& registry);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // Control thread: announce, ping, expire. Call every few milliseconds.
  void tick(Nanos now);
  // Tell everyone we leave (clean stop).
  void say_goodbye();

  std::vector<PeerInfo> peers() const;
  // Just where to send to each peer: cheap enough to call every few ms.
  struct Route {
    Uuid id;
    Endpoint address;
    Nanos first_seen_ns = 0;
  };
  std::vector<Route> routes() const;
  // Where each peer is and which addresses belong to whom, as one table that
  // real-time threads read without a lock or an allocation (the senders per
  // block, the receive thread per frame); replaced whole when it changes.
  struct RouteTable {
    std::vector<Route> routes;
    std::vector<std::pair<Endpoint, Uuid>> aliases;  // every path a peer was heard on
  };
  Published<RouteTable>::Reader route_table() const noexcept { return table_.read(); }
  std::optional<PeerInfo> peer(const Uuid& id) const;
  // Which peer frames from this address belong to (any path it was heard on).
  // Lock-free: called per frame on the receive thread.
  std::optional<Uuid> peer_at(const Endpoint& from) const noexcept;
  std::vector<PeerEvent> take_events();

  const DiscoveryConfig& config() const noexcept { return config_; }

 private:
  struct Path {
    Endpoint address;
    Nanos seen_ns = 0;
  };
  struct Entry {
    PeerInfo info;
    std::optional<Path> pinned, unicast, multicast;
    SampleWindow rtt_ms{512};
    std::vector<std::pair<std::uint32_t, Nanos>> inflight;
  };

  void on_discovery(const ReceivedFrame& rx);
  void on_heartbeat(const ReceivedFrame& rx);
  void touch(Entry& e, const Endpoint& from, bool via_multicast, bool is_announce, Nanos now);
  static void choose_address(Entry& e, Nanos now, Nanos timeout);
  bool is_target(const Endpoint& ep) const;
  std::vector<Endpoint> addresses_of(const Uuid& id) const;  // under mu_
  void send_announce_to(const Endpoint& to);
  void announce_all(Nanos now);
  SendOptions opts(protocol::StreamType type, std::uint16_t kind) const;
  void publish_locked();  // table_ from peers_ and aliases_, when they changed

  DiscoveryConfig config_;
  Transport& transport_;
  SessionRegistry& registry_;
  std::vector<SubscriptionId> subs_;

  mutable std::mutex mu_;
  std::unordered_map<Uuid, Entry, UuidHash> peers_;
  std::unordered_map<Endpoint, Uuid, EndpointHash> aliases_;
  std::vector<PeerEvent> events_;
  Published<RouteTable> table_;
  Nanos next_announce_ns_ = 0;
  Nanos next_ping_ns_ = 0;
  bool announce_soon_ = true;
  std::uint32_t next_ping_id_ = 1;
};

}  // namespace jamnet::net
