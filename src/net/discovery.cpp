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
  add_alias(e, from, now);
  if (is_target(from)) {
    e.pinned = Path{from, now};
  } else if (is_announce) {
    (via_multicast ? e.multicast : e.unicast) = Path{from, now};
  }
  choose_address(e, now, config_.peer_timeout_ns);
}

bool Discovery::proven(const Endpoint& from, const Uuid& id) const {
  const auto it = aliases_.find(from);
  return it != aliases_.end() && it->second == id;
}

void Discovery::add_alias(Entry& e, const Endpoint& from, Nanos now) {
  auto mine = std::find_if(e.paths.begin(), e.paths.end(),
                           [&](const Path& p) { return p.address == from; });
  if (mine != e.paths.end()) {
    mine->seen_ns = now;
    return;
  }
  // The address was another peer's (it moved, or that one restarted with a
  // new id): it is this one's now.
  if (auto other = aliases_.find(from); other != aliases_.end()) {
    if (auto o = peers_.find(other->second); o != peers_.end())
      std::erase_if(o->second.paths, [&](const Path& p) { return p.address == from; });
  }
  if (e.paths.size() >= kMaxAliasesPerPeer) {
    auto oldest =
        std::min_element(e.paths.begin(), e.paths.end(),
                         [](const Path& a, const Path& b) { return a.seen_ns < b.seen_ns; });
    aliases_.erase(oldest->address);
    e.paths.erase(oldest);
    ++stats_.aliases_evicted;
  }
  e.paths.push_back({from, now});
  aliases_[from] = e.info.id;
}

bool Discovery::take_token(Nanos now) {
  const double burst = std::max(1.0, config_.challenges_per_s);
  if (tokens_at_ == 0 || now < tokens_at_) {
    tokens_ = burst;
  } else {
    tokens_ = std::min(
        burst, tokens_ + static_cast<double>(now - tokens_at_) * 1e-9 * config_.challenges_per_s);
  }
  tokens_at_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

protocol::Cookie Discovery::cookie_for(const Endpoint& ep, const Uuid& id, bool via_multicast,
                                       std::uint64_t period) const {
  std::array<std::uint8_t, 4 + 2 + 8 + 16 + 1> msg{};
  std::uint8_t* p = msg.data();
  for (int i = 0; i < 4; ++i) *p++ = static_cast<std::uint8_t>(ep.addr >> (24 - 8 * i));
  *p++ = static_cast<std::uint8_t>(ep.port >> 8);
  *p++ = static_cast<std::uint8_t>(ep.port);
  for (int i = 0; i < 8; ++i) *p++ = static_cast<std::uint8_t>(period >> (56 - 8 * i));
  p = std::copy(id.bytes.begin(), id.bytes.end(), p);
  *p = via_multicast ? 1 : 0;
  return protocol::mac16(cookie_secret_, msg);
}

bool Discovery::cookie_ok(const Endpoint& ep, const Uuid& id, const protocol::Cookie& c, Nanos now,
                          bool& via_multicast) const {
  if (now < 0) return false;
  const auto period = static_cast<std::uint64_t>(now / kCookiePeriodNs);
  for (const std::uint64_t pd : {period, period - 1}) {
    if (pd > period) break;  // period 0 has no previous one
    for (const bool mc : {false, true}) {
      if (c == cookie_for(ep, id, mc, pd)) {
        via_multicast = mc;
        return true;
      }
    }
  }
  return false;
}

void Discovery::on_discovery(const ReceivedFrame& rx) {
  const auto& h = rx.frame.header;
  const Nanos now = rx.rx_ns;
  if (h.message_kind == static_cast<std::uint16_t>(DiscoveryKind::kAnnounce)) {
    auto m = protocol::decode_announce(rx.frame.payload);
    if (!m || m->peer_id == config_.peer_id) return;
    bool reply = false, challenge = false;
    bool via_multicast = rx.via_multicast;
    {
      std::lock_guard lock(mu_);
      // An address not proven for this peer yet: it proves it by echoing
      // our cookie, so nobody can join (or move a peer) from an address
      // they cannot receive at, and a stranger's announce leaves no state.
      const bool has_cookie = m->cookie != protocol::Cookie{};
      // An answer to our challenge comes by unicast whichever way the peer
      // reached us; the cookie says which, and the path is filed under that.
      const bool cookie_valid =
          has_cookie && cookie_ok(rx.from, m->peer_id, m->cookie, now, via_multicast);
      const bool allowed =
          !config_.require_address_proof || proven(rx.from, m->peer_id) || cookie_valid;
      if (!allowed) {
        if (has_cookie) ++stats_.bad_cookies;
        if (take_token(now)) {
          challenge = true;
          ++stats_.challenges_sent;
        } else {
          ++stats_.challenges_limited;
        }
      } else {
        auto it = peers_.find(m->peer_id);
        if (it == peers_.end() && peers_.size() >= config_.max_peers) {
          ++stats_.peers_refused;
          return;
        }
        const bool inserted = it == peers_.end();
        if (inserted) it = peers_.try_emplace(m->peer_id).first;
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
        // A late or repeated answer (bad cookie, address already proven)
        // only refreshes: it says nothing of how the peer announces.
        touch(e, rx.from, via_multicast, !has_cookie || cookie_valid, now);
        // A newcomer should hear from us now, not at our next periodic announce.
        if (reply) announce_soon_ = ping_soon_ = true;
        publish_locked();
      }
    }
    if (challenge)
      send_challenge_to(rx.from, m->peer_id, rx.via_multicast, rx.frame.payload.size(), now);
    if (reply && !via_multicast) send_announce_to(rx.from);
  } else if (h.message_kind == static_cast<std::uint16_t>(DiscoveryKind::kChallenge)) {
    auto m = protocol::decode_challenge(rx.frame.payload);
    if (!m || m->peer_id == config_.peer_id) return;
    {
      std::lock_guard lock(mu_);
      // Our answer is our announce: never larger than what asked for it.
      if (m->size < protocol::announce_size(config_.name.size())) {
        ++stats_.challenges_too_small;
        return;
      }
      if (!take_token(now)) {
        ++stats_.challenges_limited;
        return;
      }
      ++stats_.challenges_answered;
      // Kept for our next announces there (a fixed few: the oldest goes).
      auto slot =
          std::find_if(echo_.begin(), echo_.end(), [&](const Echo& c) { return c.to == rx.from; });
      if (slot == echo_.end()) {
        if (echo_.size() < kMaxEchoes) {
          slot = echo_.insert(echo_.end(), Echo{});
        } else {
          slot = std::min_element(echo_.begin(), echo_.end(),
                                  [](const Echo& x, const Echo& y) { return x.at_ns < y.at_ns; });
        }
      }
      *slot = Echo{rx.from, m->cookie, now};
    }
    send_announce_to(rx.from, m->cookie);
  } else if (h.message_kind == static_cast<std::uint16_t>(DiscoveryKind::kBye)) {
    auto m = protocol::decode_bye(rx.frame.payload);
    if (!m) return;
    std::lock_guard lock(mu_);
    if (config_.require_address_proof && !proven(rx.from, m->peer_id)) {
      ++stats_.unproven_dropped;  // anyone could say someone else leaves
      return;
    }
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
      // Pongs only to a peer's proven addresses: no reflection at others.
      if (config_.require_address_proof && !proven(rx.from, m->peer_id)) {
        ++stats_.unproven_dropped;
        return;
      }
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
    // Our own send time, not the pong's copy of it; the peer's two times
    // only as their difference, and only when plausible. A pong that echoes
    // our send time to the nanosecond saw our ping: its address is proven.
    const Nanos t1 = f->second;
    e.inflight.erase(f);
    if (!plausible_ns(m->t2_ns) || !plausible_ns(m->t3_ns) || m->t3_ns < m->t2_ns ||
        m->t1_ns != t1 || now < t1) {
      ++stats_.bad_pongs;
      return;
    }
    touch(e, rx.from, rx.via_multicast, false, now);
    const Nanos rtt = (now - t1) - (m->t3_ns - m->t2_ns);
    e.rtt_ms.add(static_cast<double>(rtt) / 1e6);
    ++e.info.pongs_received;
    if (e.info.first_rtt_ns == 0) e.info.first_rtt_ns = now;
    publish_locked();
  }
}

void Discovery::send_challenge_to(const Endpoint& to, const Uuid& id, bool via_multicast,
                                  std::size_t size, Nanos now) {
  protocol::Challenge c;
  c.peer_id = config_.peer_id;
  c.cookie = cookie_for(to, id, via_multicast,
                        static_cast<std::uint64_t>(std::max<Nanos>(now, 0) / kCookiePeriodNs));
  c.size = size;
  auto o = opts(StreamType::kDiscovery, static_cast<std::uint16_t>(DiscoveryKind::kChallenge));
  o.untracked = true;  // no per-destination state for an address not proven
  (void)transport_.send(o, protocol::encode(c), to);
}

DiscoveryStats Discovery::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Discovery::send_announce_to(const Endpoint& to, const protocol::Cookie& cookie) {
  protocol::Announce a{config_.peer_id, config_.incarnation, config_.name};
  a.cookie = cookie;
  auto o = opts(StreamType::kDiscovery, static_cast<std::uint16_t>(DiscoveryKind::kAnnounce));
  o.untracked = cookie != protocol::Cookie{};  // an answer to a challenge: maybe nobody we know
  (void)transport_.send(o, protocol::encode(a), to);
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
  for (const auto& ep : to) {
    // Where we were challenged, the cookie rides along until it expires, so
    // on a lossy path one challenge that got through is enough.
    protocol::Cookie cookie{};
    {
      std::lock_guard lock(mu_);
      for (const auto& c : echo_)
        if (c.to == ep && now - c.at_ns < kCookiePeriodNs) cookie = c.cookie;
    }
    if (cookie == protocol::Cookie{}) {
      (void)transport_.send(o, payload, ep);
    } else {
      protocol::Announce with = a;
      with.cookie = cookie;
      (void)transport_.send(o, protocol::encode(with), ep);
    }
  }
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
    if (ping_soon_ || now >= next_ping_ns_) {
      ping_soon_ = false;
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
  for (const auto& [id, e] : peers_) {
    // A route is used once the peer answered a ping: it answers only
    // addresses it proved, so then both ends take each other's frames (media
    // sent earlier would be dropped there as from a stranger).
    if (config_.require_address_proof && e.info.first_rtt_ns == 0) continue;
    next.routes.push_back({id, e.info.address, e.info.first_seen_ns});
  }
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
