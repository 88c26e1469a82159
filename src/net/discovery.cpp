#include "jamnet/net/discovery.hpp"

#include <algorithm>
#include <utility>

#include "jamnet/protocol/discovery_message.hpp"

namespace jamnet::net {

using protocol::DiscoveryKind;
using protocol::HeartbeatKind;
using protocol::StreamType;

std::string_view to_string(AddressSource s) noexcept {
  switch (s) {
    case AddressSource::kPinned:
      return "pinned";
    case AddressSource::kUnicast:
      return "unicast";
    case AddressSource::kMulticast:
      return "multicast";
  }
  return "?";
}

std::string_view to_string(PeerEventKind k) noexcept {
  switch (k) {
    case PeerEventKind::kJoined:
      return "joined";
    case PeerEventKind::kRestarted:
      return "restarted";
    case PeerEventKind::kLeft:
      return "left";
    case PeerEventKind::kTimedOut:
      return "timed out";
  }
  return "?";
}

double PeerInfo::heartbeat_loss() const noexcept {
  if (pings_sent == 0) return 0.0;
  const double answered = static_cast<double>(std::min(pongs_received, pings_sent));
  return 1.0 - answered / static_cast<double>(pings_sent);
}

Discovery::Discovery(DiscoveryConfig config, Transport& transport, SessionRegistry& registry)
    : config_(std::move(config)), transport_(transport), registry_(registry) {
  if (config_.incarnation == 0) config_.incarnation = static_cast<std::uint64_t>(realtime_ns());
  registry_.join(config_.session);
  subs_.push_back(registry_.subscribe({config_.session, StreamType::kDiscovery, std::nullopt},
                                      [this](const ReceivedFrame& rx) { on_discovery(rx); }));
  subs_.push_back(registry_.subscribe({config_.session, StreamType::kHeartbeat, std::nullopt},
                                      [this](const ReceivedFrame& rx) { on_heartbeat(rx); }));
}

Discovery::~Discovery() {
  for (auto id : subs_) registry_.unsubscribe(id);
}

SendOptions Discovery::opts(StreamType type, std::uint16_t kind) const {
  SendOptions o;
  o.session = config_.session;
  o.topic = {type, 0};
  o.kind = kind;
  return o;
}

bool Discovery::is_target(const Endpoint& ep) const {
  return std::find(config_.unicast_targets.begin(), config_.unicast_targets.end(), ep) !=
         config_.unicast_targets.end();
}

void Discovery::choose_address(Entry& e, Nanos now, Nanos timeout) {
  auto fresh = [&](const std::optional<Path>& p) { return p && now - p->seen_ns <= timeout; };
  if (fresh(e.pinned)) {
    e.info.address = e.pinned->address;
    e.info.source = AddressSource::kPinned;
  } else if (fresh(e.unicast)) {
    e.info.address = e.unicast->address;
    e.info.source = AddressSource::kUnicast;
  } else if (fresh(e.multicast)) {
    e.info.address = e.multicast->address;
    e.info.source = AddressSource::kMulticast;
  }
}

void Discovery::touch(Entry& e, const Endpoint& from, bool via_multicast, bool is_announce,
                      Nanos now) {
  e.info.last_seen_ns = now;
  aliases_[from] = e.info.id;
  if (is_target(from)) {
    e.pinned = Path{from, now};
  } else if (is_announce) {
    (via_multicast ? e.multicast : e.unicast) = Path{from, now};
  }
  choose_address(e, now, config_.peer_timeout_ns);
}

void Discovery::on_discovery(const ReceivedFrame& rx) {
  const auto& h = rx.frame.header;
  const Nanos now = rx.rx_ns;
  if (h.message_kind == static_cast<std::uint16_t>(DiscoveryKind::kAnnounce)) {
    auto m = protocol::decode_announce(rx.frame.payload);
    if (!m || m->peer_id == config_.peer_id) return;
    bool reply = false;
    {
      std::lock_guard lock(mu_);
      auto [it, inserted] = peers_.try_emplace(m->peer_id);
      Entry& e = it->second;
      if (inserted) {
        e.info.id = m->peer_id;
        e.info.first_seen_ns = now;
        events_.push_back({PeerEventKind::kJoined, m->peer_id, m->name, now});
        reply = true;
      } else if (e.info.incarnation != m->incarnation) {
        ++e.info.restarts;
        e.info.first_seen_ns = now;
        e.info.first_rtt_ns = 0;
        e.inflight.clear();
        events_.push_back({PeerEventKind::kRestarted, m->peer_id, m->name, now});
        reply = true;
      }
      e.info.name = m->name;
      e.info.incarnation = m->incarnation;
      touch(e, rx.from, rx.via_multicast, true, now);
      // A newcomer should hear from us now, not at our next periodic announce.
      if (reply) announce_soon_ = true;
      publish_locked();
    }
    if (reply && !rx.via_multicast) send_announce_to(rx.from);
  } else if (h.message_kind == static_cast<std::uint16_t>(DiscoveryKind::kBye)) {
    auto m = protocol::decode_bye(rx.frame.payload);
    if (!m) return;
    std::lock_guard lock(mu_);
    auto it = peers_.find(m->peer_id);
    if (it != peers_.end() && it->second.info.incarnation == m->incarnation) {
      events_.push_back(
          {PeerEventKind::kLeft, m->peer_id, it->second.info.name, now, addresses_of(m->peer_id)});
      std::erase_if(aliases_, [&](const auto& kv) { return kv.second == m->peer_id; });
      peers_.erase(it);
      publish_locked();
    }
  }
}

void Discovery::on_heartbeat(const ReceivedFrame& rx) {
  const auto& h = rx.frame.header;
  const Nanos now = rx.rx_ns;
  if (h.message_kind == static_cast<std::uint16_t>(HeartbeatKind::kPing)) {
    auto m = protocol::decode_ping(rx.frame.payload);
    if (!m || m->peer_id == config_.peer_id) return;
    {
      std::lock_guard lock(mu_);
      auto it = peers_.find(m->peer_id);
      if (it != peers_.end()) touch(it->second, rx.from, rx.via_multicast, false, now);
      publish_locked();
    }
    protocol::Pong pong{config_.peer_id, m->ping_id, m->t1_ns, now, monotonic_ns()};
    (void)transport_.send(
        opts(StreamType::kHeartbeat, static_cast<std::uint16_t>(HeartbeatKind::kPong)),
        protocol::encode(pong), rx.from);
  } else if (h.message_kind == static_cast<std::uint16_t>(HeartbeatKind::kPong)) {
    auto m = protocol::decode_pong(rx.frame.payload);
    if (!m) return;
    std::lock_guard lock(mu_);
    auto it = peers_.find(m->peer_id);
    if (it == peers_.end()) return;
    Entry& e = it->second;
    auto f = std::find_if(e.inflight.begin(), e.inflight.end(),
                          [&](const auto& p) { return p.first == m->ping_id; });
    if (f == e.inflight.end()) return;  // unknown or already answered
    e.inflight.erase(f);
    touch(e, rx.from, rx.via_multicast, false, now);
    publish_locked();
    const Nanos rtt = (now - m->t1_ns) - std::max<Nanos>(0, m->t3_ns - m->t2_ns);
    e.rtt_ms.add(static_cast<double>(rtt) / 1e6);
    ++e.info.pongs_received;
    if (e.info.first_rtt_ns == 0) e.info.first_rtt_ns = now;
  }
}

void Discovery::send_announce_to(const Endpoint& to) {
  const protocol::Announce a{config_.peer_id, config_.incarnation, config_.name};
  (void)transport_.send(
      opts(StreamType::kDiscovery, static_cast<std::uint16_t>(DiscoveryKind::kAnnounce)),
      protocol::encode(a), to);
}

void Discovery::announce_all(Nanos now) {
  const protocol::Announce a{config_.peer_id, config_.incarnation, config_.name};
  const auto payload = protocol::encode(a);
  const auto o = opts(StreamType::kDiscovery, static_cast<std::uint16_t>(DiscoveryKind::kAnnounce));
  if (config_.use_multicast && transport_.group()) (void)transport_.send_to_group(o, payload);
  std::vector<Endpoint> to(config_.unicast_targets);
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : peers_) {
      if (e.info.source == AddressSource::kUnicast &&
          now - e.unicast->seen_ns <= config_.peer_timeout_ns) {
        to.push_back(e.info.address);
      }
    }
  }
  std::sort(to.begin(), to.end(), [](const Endpoint& a, const Endpoint& b) {
    return std::tie(a.addr, a.port) < std::tie(b.addr, b.port);
  });
  to.erase(std::unique(to.begin(), to.end()), to.end());
  for (const auto& ep : to) (void)transport_.send(o, payload, ep);
}

std::vector<Endpoint> Discovery::addresses_of(const Uuid& id) const {
  std::vector<Endpoint> out;
  for (const auto& [ep, who] : aliases_)
    if (who == id) out.push_back(ep);
  return out;
}

void Discovery::tick(Nanos now) {
  bool announce = false;
  std::vector<std::pair<Endpoint, protocol::Ping>> pings;
  {
    std::lock_guard lock(mu_);
    if (announce_soon_ || now >= next_announce_ns_) {
      announce = true;
      announce_soon_ = false;
      next_announce_ns_ = now + config_.announce_interval_ns;
    }
    for (auto it = peers_.begin(); it != peers_.end();) {
      Entry& e = it->second;
      if (now - e.info.last_seen_ns > config_.peer_timeout_ns) {
        events_.push_back(
            {PeerEventKind::kTimedOut, e.info.id, e.info.name, now, addresses_of(e.info.id)});
        std::erase_if(aliases_, [&](const auto& kv) { return kv.second == e.info.id; });
        it = peers_.erase(it);
        continue;
      }
      choose_address(e, now, config_.peer_timeout_ns);
      ++it;
    }
    publish_locked();
    if (now >= next_ping_ns_) {
      next_ping_ns_ = now + config_.heartbeat_interval_ns;
      for (auto& [id, e] : peers_) {
        // Pings older than the timeout will not be answered any more.
        std::erase_if(e.inflight,
                      [&](const auto& p) { return now - p.second > config_.peer_timeout_ns; });
        if (e.inflight.size() > 64) e.inflight.erase(e.inflight.begin());
        const std::uint32_t ping_id = next_ping_id_++;
        e.inflight.emplace_back(ping_id, now);
        ++e.info.pings_sent;
        pings.push_back({e.info.address, protocol::Ping{config_.peer_id, ping_id, now}});
      }
    }
  }
  if (announce) announce_all(now);
  const auto o = opts(StreamType::kHeartbeat, static_cast<std::uint16_t>(HeartbeatKind::kPing));
  for (const auto& [to, ping] : pings) (void)transport_.send(o, protocol::encode(ping), to);
}

void Discovery::say_goodbye() {
  const auto payload = protocol::encode(protocol::Bye{config_.peer_id, config_.incarnation});
  const auto o = opts(StreamType::kDiscovery, static_cast<std::uint16_t>(DiscoveryKind::kBye));
  if (config_.use_multicast && transport_.group()) (void)transport_.send_to_group(o, payload);
  std::vector<Endpoint> to(config_.unicast_targets);
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : peers_) to.push_back(e.info.address);
  }
  for (const auto& ep : to) (void)transport_.send(o, payload, ep);
}

std::vector<PeerInfo> Discovery::peers() const {
  std::lock_guard lock(mu_);
  std::vector<PeerInfo> out;
  for (const auto& [id, e] : peers_) {
    PeerInfo info = e.info;
    if (e.rtt_ms.size() > 0) {
      info.rtt_last_ms = e.rtt_ms.last();
      info.rtt_p50_ms = e.rtt_ms.percentile(0.5);
      info.rtt_p99_ms = e.rtt_ms.percentile(0.99);
    }
    // Only pings no longer in flight count against the peer.
    info.pings_sent -= std::min<std::uint64_t>(info.pings_sent, e.inflight.size());
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const PeerInfo& a, const PeerInfo& b) { return a.name < b.name; });
  return out;
}

std::vector<Discovery::Route> Discovery::routes() const {
  return table_.read()->routes;
}

void Discovery::publish_locked() {
  RouteTable next;
  next.routes.reserve(peers_.size());
  for (const auto& [id, e] : peers_)
    next.routes.push_back({id, e.info.address, e.info.first_seen_ns});
  next.aliases.assign(aliases_.begin(), aliases_.end());
  const auto same_route = [](const Route& a, const Route& b) {
    return a.id == b.id && a.address == b.address && a.first_seen_ns == b.first_seen_ns;
  };
  {
    const auto cur = table_.read();
    if (std::ranges::equal(cur->routes, next.routes, same_route) &&
        std::ranges::equal(cur->aliases, next.aliases))
      return;  // a heartbeat that changed nothing: no new table
  }
  table_.publish(std::make_unique<const RouteTable>(std::move(next)));
}

std::optional<PeerInfo> Discovery::peer(const Uuid& id) const {
  for (auto& p : peers()) {
    if (p.id == id) return p;
  }
  return std::nullopt;
}

std::optional<Uuid> Discovery::peer_at(const Endpoint& from) const noexcept {
  const auto t = table_.read();
  for (const auto& [ep, id] : t->aliases)
    if (ep == from) return id;
  return std::nullopt;
}

std::vector<PeerEvent> Discovery::take_events() {
  std::lock_guard lock(mu_);
  return std::exchange(events_, {});
}

}  // namespace jamnet::net
