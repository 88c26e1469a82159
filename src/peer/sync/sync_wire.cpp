#include "jamnet/peer/sync/sync_wire.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>

#include <string>

#include "jamnet/core/log.hpp"

namespace jamnet::sync {

namespace ctl = protocol::control;
using protocol::StreamType;

namespace {
constexpr Nanos kRoutesInterval = 20'000'000;  // discovery's routes, read every 20 ms
constexpr std::size_t kMaxInbox = 4096;        // frames waiting for the control thread
constexpr Nanos kRejectLogInterval = 1'000'000'000;
}  // namespace

SyncWire::SyncWire(net::Transport& transport, net::SessionRegistry& registry,
                   net::Discovery& discovery, const Uuid& session)
    : transport_(transport), registry_(registry), discovery_(discovery), session_(session) {
  // This machine's addresses (in its network namespace): a controller
  // (`jamnet transport`) run here sends from one of them, or from loopback.
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
      local_addrs_.push_back(
          ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr));
    }
    ::freeifaddrs(list);
  }
  local_addrs_.push_back(transport_.local().addr);
}

bool SyncWire::is_local(std::uint32_t addr) const noexcept {
  return (addr >> 24) == 127 ||
         std::find(local_addrs_.begin(), local_addrs_.end(), addr) != local_addrs_.end();
}

SyncWire::~SyncWire() {
  stop();
}

void SyncWire::subscribe(LocalRx local_rx) {
  local_rx_ = std::move(local_rx);
  sync_sub_ = registry_.subscribe(
      {session_, StreamType::kSync, 0},
      [this](const net::ReceivedFrame& rx) { queue_frame(rx, StreamType::kSync); });
  control_sub_ = registry_.subscribe(
      {session_, StreamType::kControl, 1},
      [this](const net::ReceivedFrame& rx) { queue_frame(rx, StreamType::kControl); });
  subscribed_ = true;
}

void SyncWire::stop() {
  if (!subscribed_) return;
  subscribed_ = false;
  registry_.unsubscribe(sync_sub_);
  registry_.unsubscribe(control_sub_);
}

void SyncWire::queue_frame(const net::ReceivedFrame& rx, StreamType type) {
  if (rx.frame.header.message_kind != kJsonControlKind) return;
  const auto sender = discovery_.peer_at(rx.from);
  // Clock sync is between peers only: from anywhere else it is dropped
  // before it is copied or parsed.
  if (type == StreamType::kSync && !sender) {
    unproven_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Inbound in{
      type,
      std::string(reinterpret_cast<const char*>(rx.frame.payload.data()), rx.frame.payload.size()),
      rx.from, type == StreamType::kSync ? local_rx_(rx) : 0};
  in.sender = sender;
  in.local = is_local(rx.from.addr);
  std::lock_guard lock(inbox_mu_);
  if (inbox_.size() >= kMaxInbox) {
    inbox_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  inbox_.push_back(std::move(in));
}

void SyncWire::drain(const std::function<void(const Inbound&)>& dispatch) {
  {
    std::lock_guard lock(inbox_mu_);
    draining_.swap(inbox_);
  }
  for (const auto& in : draining_) dispatch(in);
  draining_.clear();
}

SyncWire::RouteChanges SyncWire::refresh_routes(Nanos mono_now) {
  // Routes and departures from discovery (they change on a scale of seconds).
  RouteChanges changes;
  if (mono_now < next_routes_) return changes;
  next_routes_ = mono_now + kRoutesInterval;
  const auto routes = discovery_.routes();
  std::lock_guard lock(routes_mu_);
  std::unordered_map<Uuid, net::Endpoint, UuidHash> fresh;
  for (const auto& r : routes) fresh[r.id] = r.address;
  for (const auto& [id, ep] : routes_)
    if (!fresh.contains(id)) changes.left.push_back(id);
  for (const auto& [id, ep] : fresh)
    if (!routes_.contains(id)) changes.joined.push_back(id);
  routes_ = std::move(fresh);
  return changes;
}

void SyncWire::send_to(const std::optional<Uuid>& to, const ctl::ControlMessage& m,
                       StreamType type) {
  std::vector<net::Endpoint> targets;
  {
    std::lock_guard lock(routes_mu_);
    if (to) {
      if (auto it = routes_.find(*to); it != routes_.end()) targets.push_back(it->second);
    } else {
      for (const auto& [id, ep] : routes_) targets.push_back(ep);
    }
  }
  for (const auto& ep : targets) send_to_endpoint(ep, m, type);
}

void SyncWire::send_to_endpoint(const net::Endpoint& ep, const ctl::ControlMessage& m,
                                StreamType type) {
  const std::string text = ctl::serialize(m);
  net::SendOptions o;
  o.session = session_;
  o.topic = {type, static_cast<std::uint16_t>(type == StreamType::kControl ? 1 : 0)};
  o.kind = kJsonControlKind;
  o.format = protocol::FormatType::kStandardJson;
  (void)transport_.send(o, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, ep);
}

void SyncWire::log_reject(const ctl::ParseError& e, const net::Endpoint* from) {
  const Nanos now = monotonic_ns();
  Nanos last = last_reject_log_.load(std::memory_order_relaxed);
  if (now - last < kRejectLogInterval) return;
  if (!last_reject_log_.compare_exchange_strong(last, now)) return;
  log::warn("control message from " + (from ? from->to_string() : std::string("?")) +
            " rejected: " + std::string(ctl::to_string(e.reason)) + ": " + e.detail.substr(0, 200));
}

}  // namespace jamnet::sync
