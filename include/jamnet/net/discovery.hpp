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
#include "jamnet/protocol/discovery_message.hpp"
#include "jamnet/protocol/security.hpp"

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
  // A peer joins (and a known peer gains an address) only once it proved it
  // receives there: it echoed the stateless cookie our challenge sent to
  // that address. Pings are answered and byes taken only from proven
  // addresses. Off only in tests that feed frames from addresses that
  // cannot answer.
  bool require_address_proof = true;
  std::size_t max_peers = 256;  // more proven peers are refused (counted)
  // Challenges sent and answered, together, at most this many per second
  // (burst as many): a flood of announces costs a bounded trickle back.
  double challenges_per_s = 200;
};

// What discovery refused or limited (all counted, none silent).
struct DiscoveryStats {
  std::uint64_t challenges_sent = 0;       // to announces from addresses not proven yet
  std::uint64_t challenges_answered = 0;   // our announce with the cookie, sent back
  std::uint64_t challenges_limited = 0;    // not sent or answered: over the rate limit
  std::uint64_t challenges_too_small = 0;  // smaller than our announce (would amplify): ignored
  std::uint64_t bad_cookies = 0;           // a cookie not ours, or expired
  std::uint64_t unproven_dropped = 0;      // pings and byes from addresses not proven for that peer
  std::uint64_t bad_pongs = 0;             // times that do not add up
  std::uint64_t peers_refused = 0;         // proven peers beyond max_peers
  std::uint64_t aliases_evicted = 0;       // a peer's oldest address, past kMaxAliasesPerPeer
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
  // Just where to send to each peer: cheap enough to call every few ms. With
  // address proof, only peers that answered a ping (so they proved our
  // address too, and take our frames).
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
  DiscoveryStats stats() const;
  static constexpr std::size_t kMaxAliasesPerPeer = 4;
  static constexpr Nanos kCookiePeriodNs = 30'000'000'000;  // a cookie lasts 30 to 60 s

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
    std::vector<Path> paths;  // its proven addresses (aliases_), at most kMaxAliasesPerPeer
  };

  void on_discovery(const ReceivedFrame& rx);
  void on_heartbeat(const ReceivedFrame& rx);
  void touch(Entry& e, const Endpoint& from, bool via_multicast, bool is_announce, Nanos now);
  static void choose_address(Entry& e, Nanos now, Nanos timeout);
  bool is_target(const Endpoint& ep) const;
  std::vector<Endpoint> addresses_of(const Uuid& id) const;  // under mu_
  void send_announce_to(const Endpoint& to, const protocol::Cookie& cookie = {});
  void send_challenge_to(const Endpoint& to, const Uuid& id, bool via_multicast, std::size_t size,
                         Nanos now);
  // The cookie also says whether the challenged announce came by multicast,
  // so the answer (always unicast) is filed under the path it proves.
  protocol::Cookie cookie_for(const Endpoint& ep, const Uuid& id, bool via_multicast,
                              std::uint64_t period) const;
  // Whether `c` is ours for (ep, id) and not expired; if so, `via_multicast`
  // tells how the challenged announce came.
  bool cookie_ok(const Endpoint& ep, const Uuid& id, const protocol::Cookie& c, Nanos now,
                 bool& via_multicast) const;
  bool proven(const Endpoint& from, const Uuid& id) const;    // under mu_
  bool take_token(Nanos now);                                 // under mu_
  void add_alias(Entry& e, const Endpoint& from, Nanos now);  // under mu_
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
  bool ping_soon_ = false;  // a peer joined or restarted: ping now, its route waits for the pong
  std::uint32_t next_ping_id_ = 1;
  DiscoveryStats stats_;  // under mu_
  // Cookies we were challenged with, echoed in our announces to that address.
  struct Echo {
    Endpoint to;
    protocol::Cookie cookie{};
    Nanos at_ns = 0;
  };
  static constexpr std::size_t kMaxEchoes = 64;
  std::vector<Echo> echo_;  // under mu_
  protocol::SessionKey cookie_secret_ = protocol::SessionKey::random();
  double tokens_ = 0;
  Nanos tokens_at_ = 0;
};

}  // namespace jamnet::net
