// The sync session's wire: sync and control frames come in on the
// transport's receive thread and wait in a bounded inbox until the control
// thread drains it; messages go out to one peer or to all, by the routes
// discovery knows (read at most every 20 ms, which also tells who joined and
// who left). Rejected messages are logged here, at most a line a second.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/sync/sync_types.hpp"
#include "jamnet/protocol/control.hpp"

namespace jamnet::sync {

class SyncWire {
 public:
  // A frame as the receive thread leaves it for the control thread.
  struct Inbound {
    protocol::StreamType type;
    std::string text;
    net::Endpoint from;
    Nanos rx_local = 0;  // kernel receive time on the local clock (t2 / t4)
    // The peer whose proven address `from` is (discovery), if any: what a
    // message says about its sender is believed only when it matches.
    std::optional<Uuid> sender;
    bool local = false;  // from this machine (loopback or one of its addresses): a controller
  };
  // Maps a frame's receive time onto the local clock (sync frames only).
  using LocalRx = std::function<Nanos(const net::ReceivedFrame&)>;
  struct RouteChanges {
    std::vector<Uuid> joined, left;
  };

  SyncWire(net::Transport& transport, net::SessionRegistry& registry, net::Discovery& discovery,
           const Uuid& session);
  ~SyncWire();
  SyncWire(const SyncWire&) = delete;
  SyncWire& operator=(const SyncWire&) = delete;

  void subscribe(LocalRx local_rx);  // starts taking frames
  void stop();                       // unsubscribes; idempotent

  // Control thread: what arrived since the last call, in arrival order.
  void drain(const std::function<void(const Inbound&)>& dispatch);
  // Control thread: discovery's routes, read at most every kRoutesInterval.
  RouteChanges refresh_routes(Nanos mono_now);

  // To one peer (by id) or, with no id, to every peer.
  void send_to(const std::optional<Uuid>& to, const protocol::control::ControlMessage& m,
               protocol::StreamType type);
  void send_to_endpoint(const net::Endpoint& ep, const protocol::control::ControlMessage& m,
                        protocol::StreamType type);
  // One line a second at most, so a flood of bad packets cannot flood the log.
  void log_reject(const protocol::control::ParseError& e, const net::Endpoint* from);

  std::uint64_t inbox_dropped() const noexcept {
    return inbox_dropped_.load(std::memory_order_relaxed);
  }
  // Sync frames from addresses no peer has proven (dropped), and control
  // messages refused for the same reason by their handlers.
  std::uint64_t unproven_dropped() const noexcept {
    return unproven_dropped_.load(std::memory_order_relaxed);
  }
  void count_unproven() noexcept { unproven_dropped_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void queue_frame(const net::ReceivedFrame& rx, protocol::StreamType type);
  bool is_local(std::uint32_t addr) const noexcept;
  std::vector<std::uint32_t> local_addrs_;  // this machine's IPv4 addresses, at start

  net::Transport& transport_;
  net::SessionRegistry& registry_;
  net::Discovery& discovery_;
  Uuid session_;
  LocalRx local_rx_;
  net::SubscriptionId sync_sub_ = 0, control_sub_ = 0;
  bool subscribed_ = false;
  std::atomic<Nanos> last_reject_log_{0};

  mutable std::mutex routes_mu_;
  std::unordered_map<Uuid, net::Endpoint, UuidHash> routes_;
  Nanos next_routes_ = 0;  // control thread only

  // The receive thread only copies a frame in (with its kernel receive
  // time); the JSON parse, schema check and handlers run on the control
  // thread. Bounded: beyond kMaxInbox pending frames, new ones are dropped
  // and counted.
  std::mutex inbox_mu_;
  std::vector<Inbound> inbox_, draining_;
  std::atomic<std::uint64_t> inbox_dropped_{0}, unproven_dropped_{0};
};

}  // namespace jamnet::sync
