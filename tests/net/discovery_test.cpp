// Discovery on fake time. Announce, bye, ping and pong frames are built with
// the protocol encoders and the TOAST codec, as a real peer would send them,
// and handed to the SessionRegistry as ReceivedFrames with chosen `from`
// addresses and rx_ns; tick() is called with the test's own "now". Nothing
// waits on the wall clock for time to pass: the only waits are for the
// registry's control thread to have run the handlers (a fence frame queued
// behind the test's frames) and for loopback datagrams to arrive.
//
// Discovery sends through a real Transport bound to 127.0.0.1:0. Every
// address a fake peer "sends from" is a loopback socket of the test's own
// (Capture), so what Discovery sends back (announces, pings, pongs, byes)
// lands there and is checked.
#include "jamnet/net/discovery.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "jamnet/protocol/discovery_message.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::net {
namespace {

using namespace std::chrono_literals;
using protocol::DiscoveryKind;
using protocol::HeartbeatKind;
using protocol::StreamType;

constexpr Nanos kMs = 1'000'000;
constexpr Nanos kT0 = 1'000'000 * kMs;  // fake monotonic time the tests start at

constexpr auto kAnnounce = static_cast<std::uint16_t>(DiscoveryKind::kAnnounce);
constexpr auto kBye = static_cast<std::uint16_t>(DiscoveryKind::kBye);
constexpr auto kChallenge = static_cast<std::uint16_t>(DiscoveryKind::kChallenge);
constexpr auto kPing = static_cast<std::uint16_t>(HeartbeatKind::kPing);
constexpr auto kPong = static_cast<std::uint16_t>(HeartbeatKind::kPong);

// A frame Discovery sent, as it came off the wire.
struct Sent {
  protocol::FrameHeader header;
  std::vector<std::uint8_t> payload;
  bool is(StreamType type, std::uint16_t kind) const {
    return header.stream_type == type && header.message_kind == kind;
  }
};

// A loopback socket standing for one address of a fake peer; it keeps what
// Discovery sends to it.
struct Capture {
  UdpSocket sock = UdpSocket::bind(Endpoint::loopback(0)).value();
  std::vector<Sent> got;

  Endpoint at() const { return sock.local(); }
  // Reads what has arrived, waiting up to `limit` for `want` frames in all.
  bool wait(std::size_t want, std::chrono::milliseconds limit = 3000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      read_all();
      if (got.size() >= want) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      pollfd p{sock.fd(), POLLIN, 0};
      (void)::poll(&p, 1, static_cast<int>(left.count()));
    }
  }
  void read_all() {
    std::vector<std::uint8_t> buf(protocol::kAbsoluteMaxDatagram);
    Datagram dg;
    while (sock.receive(buf, dg)) {
      auto f = protocol::decode_frame(std::span(buf.data(), dg.size));
      ASSERT_TRUE(f.has_value()) << "Discovery sent an undecodable frame";
      got.push_back({f->header, {f->payload.begin(), f->payload.end()}});
    }
  }
  std::vector<Sent> of(StreamType type, std::uint16_t kind) const {
    std::vector<Sent> out;
    for (const auto& s : got)
      if (s.is(type, kind)) out.push_back(s);
    return out;
  }
};

struct DiscoveryTest : ::testing::Test {
  Uuid session = Uuid::random();
  Uuid self = Uuid::random();
  Uuid alice = Uuid::random();
  DiscoveryConfig config;

  SessionRegistry registry;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Discovery> disc;  // last: goes before the transport and registry

  std::mutex fence_mu;
  std::condition_variable fence_cv;
  int fences_seen = 0;
  int fences_sent = 0;
  std::uint32_t next_seq = 1;

  void SetUp() override {
    config.session = session;
    config.peer_id = self;
    config.incarnation = 1000;
    config.name = "self";
    // Most tests feed frames from addresses that answer nothing: the
    // address proof has tests of its own (AddressProof*), which turn it on.
    config.require_address_proof = false;
    transport = Transport::start(TransportConfig{}, registry).value();
    // Fence: the control thread runs deferred frames in order, so when it has
    // run this handler it has run Discovery's handlers for every frame before.
    registry.subscribe({session, StreamType::kControl, std::nullopt}, [this](const ReceivedFrame&) {
      std::lock_guard lock(fence_mu);
      ++fences_seen;
      fence_cv.notify_all();
    });
  }
  void make() { disc = std::make_unique<Discovery>(config, *transport, registry); }

  // Encodes one frame with the TOAST codec, decodes it again and dispatches
  // it as received from `from` at fake time `rx_ns`; returns once the control
  // thread has handled it. False when the registry did not take it (session
  // not joined).
  bool receive(StreamType type, std::uint16_t kind, const std::vector<std::uint8_t>& payload,
               const Endpoint& from, Nanos rx_ns, bool via_multicast = false,
               std::optional<Uuid> in_session = std::nullopt) {
    protocol::FrameHeader h;
    h.stream_type = type;
    h.message_kind = kind;
    h.session_id = in_session.value_or(session);
    h.sequence = next_seq++;
    h.timestamp_ns = rx_ns;
    const auto bytes = protocol::encode_frame(h, payload).value();
    const auto view = protocol::decode_frame(bytes).value();
    const bool taken = registry.dispatch(ReceivedFrame{view, from, via_multicast, 0, rx_ns});
    settle();
    return taken;
  }
  void settle() {
    int want = 0;
    {
      std::lock_guard lock(fence_mu);
      want = ++fences_sent;
    }
    protocol::FrameHeader h;
    h.stream_type = StreamType::kControl;
    h.session_id = session;
    const auto bytes = protocol::encode_frame(h, {}).value();
    const auto view = protocol::decode_frame(bytes).value();
    ASSERT_TRUE(registry.dispatch(ReceivedFrame{view, Endpoint::loopback(1), false, 0, 0}));
    std::unique_lock lock(fence_mu);
    ASSERT_TRUE(fence_cv.wait_for(lock, 5s, [&] { return fences_seen >= want; }))
        << "the registry's control thread did not run the handlers";
  }

  bool announce(const Uuid& id, std::uint64_t incarnation, const std::string& name,
                const Endpoint& from, Nanos at, bool via_multicast = false,
                std::optional<Uuid> in_session = std::nullopt) {
    return receive(StreamType::kDiscovery, kAnnounce,
                   protocol::encode(protocol::Announce{id, incarnation, name}), from, at,
                   via_multicast, in_session);
  }
  bool announce_msg(const protocol::Announce& m, const Endpoint& from, Nanos at) {
    return receive(StreamType::kDiscovery, kAnnounce, protocol::encode(m), from, at);
  }
  bool bye(const Uuid& id, std::uint64_t incarnation, const Endpoint& from, Nanos at,
           std::optional<Uuid> in_session = std::nullopt) {
    return receive(StreamType::kDiscovery, kBye, protocol::encode(protocol::Bye{id, incarnation}),
                   from, at, false, in_session);
  }
  void ping(const Uuid& id, std::uint32_t ping_id, Nanos t1, const Endpoint& from, Nanos at) {
    receive(StreamType::kHeartbeat, kPing, protocol::encode(protocol::Ping{id, ping_id, t1}), from,
            at);
  }
  void pong(const Uuid& id, std::uint32_t ping_id, Nanos t1, Nanos t2, Nanos t3,
            const Endpoint& from, Nanos at) {
    receive(StreamType::kHeartbeat, kPong,
            protocol::encode(protocol::Pong{id, ping_id, t1, t2, t3}), from, at);
  }

  // Waits until every frame the transport has sent reached one of `caps`
  // (all of Discovery's destinations in a test are Captures), so their
  // counts are exact.
  bool collect(std::initializer_list<Capture*> caps) {
    const auto sent = transport->totals().frames_sent;
    const auto end = std::chrono::steady_clock::now() + 3s;
    for (;;) {
      std::size_t n = 0;
      for (auto* c : caps) {
        c->read_all();
        n += c->got.size();
      }
      if (n >= sent) return n == sent;
      if (std::chrono::steady_clock::now() > end) return false;
      pollfd p[8];
      nfds_t k = 0;
      for (auto* c : caps) p[k++] = {c->sock.fd(), POLLIN, 0};
      (void)::poll(p, k, 50);
    }
  }

  // The one peer Discovery knows (a failure, and an empty PeerInfo, if not one).
  PeerInfo one_peer() {
    auto ps = disc->peers();
    if (ps.size() != 1) {
      ADD_FAILURE() << "expected one peer, have " << ps.size();
      return {};
    }
    return ps[0];
  }
  // Where routes() sends to its one peer.
  Endpoint route() {
    auto rs = disc->routes();
    if (rs.size() != 1) {
      ADD_FAILURE() << "expected one route, have " << rs.size();
      return {};
    }
    return rs[0].address;
  }
};

std::vector<Endpoint> sorted(std::vector<Endpoint> v) {
  std::sort(v.begin(), v.end(), [](const Endpoint& a, const Endpoint& b) {
    return std::tie(a.addr, a.port) < std::tie(b.addr, b.port);
  });
  return v;
}

TEST_F(DiscoveryTest, AnnounceFromAnUnknownPeerJoinsIt) {
  make();
  Capture a, elsewhere;
  ASSERT_TRUE(announce(alice, 7, "alice", a.at(), kT0));

  const auto events = disc->take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PeerEventKind::kJoined);
  EXPECT_EQ(events[0].id, alice);
  EXPECT_EQ(events[0].name, "alice");
  EXPECT_EQ(events[0].at_ns, kT0);
  EXPECT_TRUE(disc->take_events().empty()) << "events are handed out once";

  const auto p = one_peer();
  EXPECT_EQ(p.id, alice);
  EXPECT_EQ(p.name, "alice");
  EXPECT_EQ(p.incarnation, 7u);
  EXPECT_EQ(p.address, a.at());
  EXPECT_EQ(p.source, AddressSource::kUnicast);
  EXPECT_EQ(p.first_seen_ns, kT0);
  EXPECT_EQ(p.last_seen_ns, kT0);
  EXPECT_EQ(disc->peer(alice)->name, "alice");
  EXPECT_EQ(disc->peer_at(a.at()), alice);
  EXPECT_EQ(disc->peer_at(elsewhere.at()), std::nullopt);
  const auto routes = disc->routes();
  ASSERT_EQ(routes.size(), 1u);
  EXPECT_EQ(routes[0].id, alice);
  EXPECT_EQ(routes[0].address, a.at());
  EXPECT_EQ(routes[0].first_seen_ns, kT0);

  // Heard again, same incarnation: no new event, just fresher.
  ASSERT_TRUE(announce(alice, 7, "alice", a.at(), kT0 + 200 * kMs));
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(one_peer().last_seen_ns, kT0 + 200 * kMs);
  EXPECT_EQ(one_peer().first_seen_ns, kT0);

  // A newcomer heard by unicast gets our announce straight back, without a tick.
  ASSERT_TRUE(collect({&a, &elsewhere}));
  const auto back = a.of(StreamType::kDiscovery, kAnnounce);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].header.session_id, session);
  const auto m = protocol::decode_announce(back[0].payload);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->peer_id, self);
  EXPECT_EQ(m->incarnation, 1000u);
  EXPECT_EQ(m->name, "self");
}

TEST_F(DiscoveryTest, TimesOutAPeerHeardFromNoLonger) {
  config.peer_timeout_ns = 1000 * kMs;
  make();
  Capture a, b;
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0));
  // A ping from another of its addresses proves it alive, and that address is its too.
  const Nanos last = kT0 + 300 * kMs;
  ping(alice, 9, 0, b.at(), last);
  EXPECT_EQ(disc->peer_at(b.at()), alice);
  EXPECT_EQ(one_peer().address, a.at()) << "a ping does not move the address";
  (void)disc->take_events();

  disc->tick(last + config.peer_timeout_ns);  // exactly the timeout: still here
  EXPECT_TRUE(disc->take_events().empty());
  ASSERT_EQ(disc->peers().size(), 1u);
  EXPECT_EQ(disc->peer_at(a.at()), alice);

  const Nanos gone = last + config.peer_timeout_ns + 1;
  disc->tick(gone);
  const auto events = disc->take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PeerEventKind::kTimedOut);
  EXPECT_EQ(events[0].id, alice);
  EXPECT_EQ(events[0].name, "alice");
  EXPECT_EQ(events[0].at_ns, gone);
  EXPECT_EQ(sorted(events[0].addresses), sorted({a.at(), b.at()}));
  EXPECT_TRUE(disc->peers().empty());
  EXPECT_TRUE(disc->routes().empty());
  EXPECT_EQ(disc->peer_at(a.at()), std::nullopt);
  EXPECT_EQ(disc->peer_at(b.at()), std::nullopt);

  // Heard from again: it joins afresh.
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), gone + 10 * kMs));
  const auto again = disc->take_events();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].kind, PeerEventKind::kJoined);
  EXPECT_EQ(one_peer().first_seen_ns, gone + 10 * kMs);
}

TEST_F(DiscoveryTest, AnnounceWithANewIncarnationIsARestart) {
  make();
  Capture a;
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0));
  (void)disc->take_events();

  const Nanos restart = kT0 + 2000 * kMs;
  ASSERT_TRUE(announce(alice, 2, "alice2", a.at(), restart));
  auto events = disc->take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PeerEventKind::kRestarted);
  EXPECT_EQ(events[0].id, alice);
  EXPECT_EQ(events[0].name, "alice2");
  EXPECT_EQ(events[0].at_ns, restart);
  auto p = one_peer();
  EXPECT_EQ(p.incarnation, 2u);
  EXPECT_EQ(p.name, "alice2");
  EXPECT_EQ(p.restarts, 1u);
  EXPECT_EQ(p.first_seen_ns, restart);

  // The new incarnation heard again is no second restart.
  ASSERT_TRUE(announce(alice, 2, "alice2", a.at(), restart + 250 * kMs));
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(one_peer().restarts, 1u);

  // A bye of the old incarnation (late, or from the dead process) is not for this one.
  ASSERT_TRUE(bye(alice, 1, a.at(), restart + 300 * kMs));
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peers().size(), 1u);

  ASSERT_TRUE(announce(alice, 3, "alice2", a.at(), restart + 5000 * kMs));
  events = disc->take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PeerEventKind::kRestarted);
  EXPECT_EQ(one_peer().restarts, 2u);
}

TEST_F(DiscoveryTest, ByeRemovesThePeerAtOnce) {
  make();
  Capture a;
  const Uuid bob = Uuid::random();
  Capture b;
  ASSERT_TRUE(announce(alice, 5, "alice", a.at(), kT0));
  ASSERT_TRUE(announce(bob, 6, "bob", b.at(), kT0));
  (void)disc->take_events();

  // A bye from someone we do not know changes nothing.
  ASSERT_TRUE(bye(Uuid::random(), 5, a.at(), kT0 + 5 * kMs));
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peers().size(), 2u);

  ASSERT_TRUE(bye(alice, 5, a.at(), kT0 + 10 * kMs));
  const auto events = disc->take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PeerEventKind::kLeft);
  EXPECT_EQ(events[0].id, alice);
  EXPECT_EQ(events[0].name, "alice");
  EXPECT_EQ(events[0].at_ns, kT0 + 10 * kMs);
  EXPECT_EQ(events[0].addresses, std::vector<Endpoint>{a.at()});
  const auto p = one_peer();
  EXPECT_EQ(p.id, bob);
  EXPECT_EQ(disc->peer_at(a.at()), std::nullopt);
  EXPECT_EQ(disc->peer_at(b.at()), bob);
  ASSERT_EQ(disc->routes().size(), 1u);
  EXPECT_EQ(disc->routes()[0].id, bob);
}

TEST_F(DiscoveryTest, SayGoodbyeTellsTargetsAndPeers) {
  Capture target, a;
  config.unicast_targets = {target.at()};
  make();
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0, /*via_multicast=*/true));
  disc->say_goodbye();
  ASSERT_TRUE(collect({&target, &a}));
  for (auto* c : {&target, &a}) {
    const auto byes = c->of(StreamType::kDiscovery, kBye);
    ASSERT_EQ(byes.size(), 1u);
    const auto m = protocol::decode_bye(byes[0].payload);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->peer_id, self);
    EXPECT_EQ(m->incarnation, 1000u);
  }
}

TEST_F(DiscoveryTest, PrefersPinnedThenUnicastThenMulticastAndFallsBackWhenStale) {
  Capture mcast, ucast, pinned;
  config.unicast_targets = {pinned.at()};
  config.peer_timeout_ns = 1000 * kMs;
  make();

  ASSERT_TRUE(announce(alice, 1, "alice", mcast.at(), kT0, /*via_multicast=*/true));
  EXPECT_EQ(one_peer().source, AddressSource::kMulticast);
  EXPECT_EQ(one_peer().address, mcast.at());

  ASSERT_TRUE(announce(alice, 1, "alice", ucast.at(), kT0 + 10 * kMs));
  EXPECT_EQ(one_peer().source, AddressSource::kUnicast);
  EXPECT_EQ(one_peer().address, ucast.at());

  ASSERT_TRUE(announce(alice, 1, "alice", pinned.at(), kT0 + 20 * kMs));
  EXPECT_EQ(one_peer().source, AddressSource::kPinned);
  EXPECT_EQ(one_peer().address, pinned.at());
  ASSERT_EQ(disc->routes().size(), 1u);
  EXPECT_EQ(route(), pinned.at());
  for (const auto& ep : {mcast.at(), ucast.at(), pinned.at()}) EXPECT_EQ(disc->peer_at(ep), alice);
  EXPECT_EQ(disc->take_events().size(), 1u) << "one peer, one join, three paths";

  // A fresher multicast announce does not beat a fresh pinned path.
  ASSERT_TRUE(announce(alice, 1, "alice", mcast.at(), kT0 + 30 * kMs, true));
  EXPECT_EQ(one_peer().source, AddressSource::kPinned);

  // Keep the unicast and multicast paths alive; the pinned one goes quiet.
  ASSERT_TRUE(announce(alice, 1, "alice", ucast.at(), kT0 + 500 * kMs));
  ASSERT_TRUE(announce(alice, 1, "alice", mcast.at(), kT0 + 600 * kMs, true));
  disc->tick(kT0 + 1020 * kMs);  // pinned path exactly peer_timeout old: still fresh
  EXPECT_EQ(one_peer().source, AddressSource::kPinned);
  disc->tick(kT0 + 1021 * kMs);
  EXPECT_EQ(one_peer().source, AddressSource::kUnicast);
  EXPECT_EQ(one_peer().address, ucast.at());
  EXPECT_EQ(route(), ucast.at());

  // Pings from a path prove liveness but do not move the address.
  ping(alice, 1, 0, mcast.at(), kT0 + 1100 * kMs);
  EXPECT_EQ(one_peer().address, ucast.at());
  EXPECT_EQ(one_peer().last_seen_ns, kT0 + 1100 * kMs);

  // Now the unicast path goes stale too: multicast, refreshed, is what is left.
  ASSERT_TRUE(announce(alice, 1, "alice", mcast.at(), kT0 + 1200 * kMs, true));
  disc->tick(kT0 + 1501 * kMs);
  EXPECT_EQ(one_peer().source, AddressSource::kMulticast);
  EXPECT_EQ(one_peer().address, mcast.at());
  EXPECT_EQ(route(), mcast.at());
  EXPECT_TRUE(disc->take_events().empty()) << "a path going stale is not the peer going";

  // The pinned target heard from again takes over at once.
  ASSERT_TRUE(announce(alice, 1, "alice", pinned.at(), kT0 + 1600 * kMs));
  EXPECT_EQ(one_peer().source, AddressSource::kPinned);
  EXPECT_EQ(one_peer().address, pinned.at());
}

TEST_F(DiscoveryTest, PingsMeasureRttAndCountHeartbeatLoss) {
  ASSERT_EQ(config.heartbeat_interval_ns, 100 * kMs);
  ASSERT_EQ(config.peer_timeout_ns, 1500 * kMs);
  make();
  Capture a;
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0));
  disc->tick(kT0);
  ASSERT_TRUE(collect({&a}));
  const auto pings = a.of(StreamType::kHeartbeat, kPing);
  ASSERT_EQ(pings.size(), 1u);
  const auto sent = protocol::decode_ping(pings[0].payload);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->peer_id, self);
  EXPECT_EQ(sent->t1_ns, kT0);
  auto p = one_peer();
  EXPECT_EQ(p.pings_sent, 0u) << "a ping in flight does not count yet";
  EXPECT_EQ(p.first_rtt_ns, 0);

  // Answered 12 ms later; alice held it 2 ms: RTT 10 ms.
  pong(alice, sent->ping_id, sent->t1_ns, 555 * kMs, 557 * kMs, a.at(), kT0 + 12 * kMs);
  p = one_peer();
  EXPECT_EQ(p.pings_sent, 1u);
  EXPECT_EQ(p.pongs_received, 1u);
  EXPECT_DOUBLE_EQ(p.rtt_last_ms, 10.0);
  EXPECT_DOUBLE_EQ(p.rtt_p50_ms, 10.0);
  EXPECT_DOUBLE_EQ(p.rtt_p99_ms, 10.0);
  EXPECT_EQ(p.first_rtt_ns, kT0 + 12 * kMs);
  EXPECT_EQ(p.last_seen_ns, kT0 + 12 * kMs);
  EXPECT_DOUBLE_EQ(p.heartbeat_loss(), 0.0);

  // The same pong again, and one for a ping never sent, are ignored.
  pong(alice, sent->ping_id, sent->t1_ns, 555 * kMs, 557 * kMs, a.at(), kT0 + 13 * kMs);
  pong(alice, sent->ping_id + 1000, sent->t1_ns, 0, 0, a.at(), kT0 + 14 * kMs);
  EXPECT_EQ(one_peer().pongs_received, 1u);
  EXPECT_DOUBLE_EQ(one_peer().rtt_last_ms, 10.0);

  // Not before the heartbeat interval...
  disc->tick(kT0 + 99 * kMs);
  ASSERT_TRUE(collect({&a}));
  EXPECT_EQ(a.of(StreamType::kHeartbeat, kPing).size(), 1u);
  // ...then pings that go unanswered, kept alive by its announces.
  disc->tick(kT0 + 100 * kMs);  // ping 2
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0 + 1000 * kMs));
  disc->tick(kT0 + 1000 * kMs);  // ping 3; ping 2 is 900 ms old, still in flight
  p = one_peer();
  EXPECT_EQ(p.pings_sent, 1u);
  EXPECT_DOUBLE_EQ(p.heartbeat_loss(), 0.0);
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0 + 1700 * kMs));
  disc->tick(kT0 + 1700 * kMs);  // ping 4; ping 2 (1600 ms) is given up
  p = one_peer();
  EXPECT_EQ(p.pings_sent, 2u);
  EXPECT_EQ(p.pongs_received, 1u);
  EXPECT_DOUBLE_EQ(p.heartbeat_loss(), 0.5);

  ASSERT_TRUE(collect({&a}));
  const auto all = a.of(StreamType::kHeartbeat, kPing);
  ASSERT_EQ(all.size(), 4u);
  // An answer to the newest ping counts: 3 ms.
  const auto last = protocol::decode_ping(all[3].payload).value();
  EXPECT_EQ(last.t1_ns, kT0 + 1700 * kMs);
  pong(alice, last.ping_id, last.t1_ns, 0, 0, a.at(), kT0 + 1703 * kMs);
  p = one_peer();
  EXPECT_EQ(p.pongs_received, 2u);
  EXPECT_EQ(p.pings_sent, 3u);  // 1 and 4 answered, 2 given up, 3 still in flight
  EXPECT_DOUBLE_EQ(p.heartbeat_loss(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(p.rtt_last_ms, 3.0);
  EXPECT_EQ(p.first_rtt_ns, kT0 + 12 * kMs) << "the first RTT stays the first";
  // A late pong for the given-up ping does not count.
  const auto late = protocol::decode_ping(all[1].payload).value();
  EXPECT_EQ(late.t1_ns, kT0 + 100 * kMs);
  pong(alice, late.ping_id, late.t1_ns, 0, 0, a.at(), kT0 + 1710 * kMs);
  EXPECT_EQ(one_peer().pongs_received, 2u);
  EXPECT_EQ(one_peer().pings_sent, 3u);
}

TEST_F(DiscoveryTest, AnswersAPingWithAPong) {
  make();
  Capture a;
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0));
  ping(alice, 42, 777'000, a.at(), kT0 + 50 * kMs);
  EXPECT_EQ(one_peer().last_seen_ns, kT0 + 50 * kMs);
  ASSERT_TRUE(collect({&a}));
  const auto pongs = a.of(StreamType::kHeartbeat, kPong);
  ASSERT_EQ(pongs.size(), 1u);
  EXPECT_EQ(pongs[0].header.session_id, session);
  const auto m = protocol::decode_pong(pongs[0].payload);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->peer_id, self);
  EXPECT_EQ(m->ping_id, 42u);
  EXPECT_EQ(m->t1_ns, 777'000);         // echoed
  EXPECT_EQ(m->t2_ns, kT0 + 50 * kMs);  // when the ping was received
}

TEST_F(DiscoveryTest, IgnoresFramesOfAnotherSession) {
  make();
  Capture a;
  const Uuid other = Uuid::random();
  // Not joined: the registry does not take it.
  EXPECT_FALSE(announce(alice, 1, "alice", a.at(), kT0, false, other));
  // Joined (say, by another Discovery on this registry): delivered, but not to this one.
  registry.join(other);
  EXPECT_TRUE(announce(alice, 1, "alice", a.at(), kT0, false, other));
  ping(alice, 1, 0, a.at(), kT0);  // unknown peer: no entry from a ping
  EXPECT_TRUE(disc->peers().empty());
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peer_at(a.at()), std::nullopt);

  // Nor does another session's bye remove a peer of ours.
  ASSERT_TRUE(announce(alice, 1, "alice", a.at(), kT0 + kMs));
  (void)disc->take_events();
  EXPECT_TRUE(bye(alice, 1, a.at(), kT0 + 2 * kMs, other));
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peers().size(), 1u);
}

TEST_F(DiscoveryTest, IgnoresItsOwnAnnouncesAndPings) {
  make();
  Capture a;
  // Our own multicast announce, looped back.
  ASSERT_TRUE(announce(self, 1000, "self", a.at(), kT0, true));
  ping(self, 1, kT0, a.at(), kT0);
  EXPECT_TRUE(disc->peers().empty());
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peer_at(a.at()), std::nullopt);
  EXPECT_EQ(transport->totals().frames_sent, 0u) << "no pong to ourselves";
}

TEST_F(DiscoveryTest, AnnouncesAtTheIntervalNotOnEveryTick) {
  Capture target, m;
  config.unicast_targets = {target.at()};
  config.announce_interval_ns = 250 * kMs;
  make();
  const auto announces = [&] {
    EXPECT_TRUE(collect({&target, &m}));
    return target.of(StreamType::kDiscovery, kAnnounce).size();
  };

  disc->tick(kT0);
  EXPECT_EQ(announces(), 1u) << "the first tick announces";
  for (Nanos t : {1, 10, 100, 249}) disc->tick(kT0 + t * kMs);
  EXPECT_EQ(announces(), 1u);
  disc->tick(kT0 + 250 * kMs);
  EXPECT_EQ(announces(), 2u);
  for (Nanos t : {251, 300, 400, 499}) disc->tick(kT0 + t * kMs);
  EXPECT_EQ(announces(), 2u);
  disc->tick(kT0 + 500 * kMs);
  EXPECT_EQ(announces(), 3u);
  EXPECT_EQ(target.got.size(), 3u) << "nothing but announces to a target with no peer";

  // A newcomer (heard on multicast: no direct reply) brings the next one forward.
  ASSERT_TRUE(announce(alice, 1, "alice", m.at(), kT0 + 520 * kMs, true));
  EXPECT_EQ(announces(), 3u);
  disc->tick(kT0 + 530 * kMs);
  EXPECT_EQ(announces(), 4u);
  disc->tick(kT0 + 540 * kMs);
  disc->tick(kT0 + 779 * kMs);
  EXPECT_EQ(announces(), 4u);
  disc->tick(kT0 + 780 * kMs);
  EXPECT_EQ(announces(), 5u);
  // A multicast-learned peer is announced to on the group, never by unicast.
  EXPECT_TRUE(m.of(StreamType::kDiscovery, kAnnounce).empty());
  EXPECT_FALSE(m.of(StreamType::kHeartbeat, kPing).empty());

  for (const auto& s : target.got) {
    EXPECT_EQ(s.header.session_id, session);
    const auto a = protocol::decode_announce(s.payload);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->peer_id, self);
    EXPECT_EQ(a->incarnation, 1000u);
    EXPECT_EQ(a->name, "self");
  }
}

TEST_F(DiscoveryTest, AddressProofAStrangersAnnounceIsChallengedAndLeavesNoState) {
  config.require_address_proof = true;
  make();
  Capture a, spoofed;
  const protocol::Announce plain{alice, 1, "alice"};
  ASSERT_TRUE(announce_msg(plain, a.at(), kT0));
  EXPECT_TRUE(disc->peers().empty()) << "no state before the address is proven";
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peer_at(a.at()), std::nullopt);
  // The answer is a challenge, no larger than the announce, carrying a cookie.
  ASSERT_TRUE(collect({&a, &spoofed}));
  const auto ch = a.of(StreamType::kDiscovery, kChallenge);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].payload.size(), protocol::encode(plain).size());
  const auto c = protocol::decode_challenge(ch[0].payload);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->peer_id, self);
  EXPECT_EQ(disc->stats().challenges_sent, 1u);

  // The cookie works only from the address it was sent to...
  protocol::Announce proven = plain;
  proven.cookie = c->cookie;
  ASSERT_TRUE(announce_msg(proven, spoofed.at(), kT0 + kMs));
  EXPECT_TRUE(disc->peers().empty());
  EXPECT_EQ(disc->stats().bad_cookies, 1u);
  // ...and for the id it was sent for.
  protocol::Announce other_id = proven;
  other_id.peer_id = Uuid::random();
  ASSERT_TRUE(announce_msg(other_id, a.at(), kT0 + kMs));
  EXPECT_TRUE(disc->peers().empty());
  EXPECT_EQ(disc->stats().bad_cookies, 2u);
  // Echoed from there, within its lifetime: the peer joins.
  ASSERT_TRUE(announce_msg(proven, a.at(), kT0 + 2 * kMs));
  EXPECT_EQ(one_peer().id, alice);
  EXPECT_EQ(disc->peer_at(a.at()), alice);
  // Its later plain announces from the proven address need no cookie.
  ASSERT_TRUE(announce_msg(plain, a.at(), kT0 + 300 * kMs));
  EXPECT_EQ(one_peer().last_seen_ns, kT0 + 300 * kMs);
  // An expired cookie proves nothing.
  Capture late;
  protocol::Announce stale = plain;
  stale.peer_id = Uuid::random();
  ASSERT_TRUE(announce_msg(stale, late.at(), kT0));
  ASSERT_TRUE(collect({&a, &spoofed, &late}));
  const auto lc =
      protocol::decode_challenge(late.of(StreamType::kDiscovery, kChallenge).at(0).payload);
  ASSERT_TRUE(lc.has_value());
  stale.cookie = lc->cookie;
  ASSERT_TRUE(announce_msg(stale, late.at(), kT0 + 2 * Discovery::kCookiePeriodNs + kMs));
  EXPECT_EQ(disc->peers().size(), 1u);
}

TEST_F(DiscoveryTest, AddressProofPingsAndByesFromUnprovenAddressesAreDropped) {
  config.require_address_proof = true;
  make();
  Capture a, spoofed;
  ASSERT_TRUE(announce_msg({alice, 1, "alice"}, a.at(), kT0));
  ASSERT_TRUE(collect({&a, &spoofed}));
  protocol::Announce proven{alice, 1, "alice"};
  proven.cookie =
      protocol::decode_challenge(a.of(StreamType::kDiscovery, kChallenge).at(0).payload)->cookie;
  ASSERT_TRUE(announce_msg(proven, a.at(), kT0 + kMs));
  ASSERT_EQ(disc->peers().size(), 1u);
  (void)disc->take_events();
  // A ping naming alice from elsewhere: no pong there (no reflection), and
  // that address does not become alice's.
  ping(alice, 5, 123, spoofed.at(), kT0 + 2 * kMs);
  EXPECT_EQ(disc->peer_at(spoofed.at()), std::nullopt);
  // A bye naming alice from elsewhere does not remove her.
  bye(alice, 1, spoofed.at(), kT0 + 3 * kMs);
  EXPECT_TRUE(disc->take_events().empty());
  EXPECT_EQ(disc->peers().size(), 1u);
  EXPECT_EQ(disc->stats().unproven_dropped, 2u);
  ASSERT_TRUE(collect({&a, &spoofed}));
  EXPECT_TRUE(spoofed.got.empty());
  // From her proven address both work.
  ping(alice, 6, 456, a.at(), kT0 + 4 * kMs);
  ASSERT_TRUE(collect({&a, &spoofed}));
  EXPECT_EQ(a.of(StreamType::kHeartbeat, kPong).size(), 1u);
  bye(alice, 1, a.at(), kT0 + 5 * kMs);
  EXPECT_TRUE(disc->peers().empty());
}

TEST_F(DiscoveryTest, AddressProofChallengesAreAnsweredNoLargerAndRateLimited) {
  config.require_address_proof = true;
  config.challenges_per_s = 5;
  make();
  Capture a;
  // A challenge as large as our announce gets our announce, with its cookie.
  protocol::Challenge c{alice, {}, protocol::announce_size(config.name.size())};
  c.cookie.fill(0x5A);
  receive(StreamType::kDiscovery, kChallenge, protocol::encode(c), a.at(), kT0);
  ASSERT_TRUE(collect({&a}));
  const auto ans = a.of(StreamType::kDiscovery, kAnnounce);
  ASSERT_EQ(ans.size(), 1u);
  EXPECT_LE(ans[0].payload.size(), c.size);
  EXPECT_EQ(protocol::decode_announce(ans[0].payload)->cookie, c.cookie);
  // A smaller one would amplify: ignored, counted.
  c.size = protocol::kChallengeMin;
  receive(StreamType::kDiscovery, kChallenge, protocol::encode(c), a.at(), kT0);
  EXPECT_EQ(disc->stats().challenges_too_small, 1u);
  // A flood of announces from new ids costs at most the rate in challenges.
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(announce_msg({Uuid::random(), 1, "x"}, a.at(), kT0 + kMs));
  const auto st = disc->stats();
  EXPECT_EQ(st.challenges_answered, 1u);
  EXPECT_EQ(st.challenges_sent, 4u);  // the burst of 5, less the one answer above
  EXPECT_EQ(st.challenges_limited, 16u);
  EXPECT_TRUE(disc->peers().empty());
}

TEST_F(DiscoveryTest, PeersAndTheirAddressesAreCapped) {
  config.max_peers = 3;
  make();
  Capture a;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(announce(Uuid::random(), 1, "p", a.at(), kT0));
  EXPECT_EQ(disc->peers().size(), 3u);
  EXPECT_EQ(disc->stats().peers_refused, 2u);
  // The address went to the newest peer made: one owner at a time.
  EXPECT_EQ(disc->route_table()->aliases.size(), 1u);
}

TEST_F(DiscoveryTest, APeerKeepsItsNewestAddressesOnly) {
  make();
  std::vector<std::unique_ptr<Capture>> caps;
  for (std::size_t i = 0; i < Discovery::kMaxAliasesPerPeer + 2; ++i) {
    caps.push_back(std::make_unique<Capture>());
    ASSERT_TRUE(announce(alice, 1, "alice", caps.back()->at(), kT0 + static_cast<Nanos>(i) * kMs));
  }
  EXPECT_EQ(disc->stats().aliases_evicted, 2u);
  EXPECT_EQ(disc->peer_at(caps[0]->at()), std::nullopt);
  EXPECT_EQ(disc->peer_at(caps[1]->at()), std::nullopt);
  EXPECT_EQ(disc->peer_at(caps.back()->at()), alice);
  EXPECT_EQ(one_peer().address, caps.back()->at());
}

}  // namespace
}  // namespace jamnet::net
