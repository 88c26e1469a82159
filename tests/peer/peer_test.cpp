#include "jamnet/peer/peer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "../support/wait.hpp"
namespace jamnet {
namespace {

using namespace std::chrono_literals;

// Each test gets its own session and multicast port, so parallel runs and a
// running demo never see each other.
PeerConfig config_for(const std::string& name, const Uuid& session, std::uint16_t group_port) {
  PeerConfig c;
  c.name = name;
  c.session = session;
  c.multicast = net::Endpoint{kDefaultMulticastGroup, group_port};
  c.announce_interval_ns = 100'000'000;
  c.heartbeat_interval_ns = 50'000'000;
  c.peer_timeout_ns = 600'000'000;
  c.probe_start_delay_ns = 100'000'000;
  return c;
}

std::uint16_t random_port() {
  return static_cast<std::uint16_t>(40000 + std::random_device{}() % 20000);
}

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit) {
  return testing::wait_for(pred, limit, 5ms);
}

TEST(Peer, SessionNamesMapToStableIds) {
  EXPECT_EQ(session_id_from("band"), session_id_from("band"));
  EXPECT_NE(session_id_from("band"), session_id_from("bend"));
  EXPECT_EQ(session_id_from("band"), protocol::open_session_id("band"));  // UUID v5
  const Uuid u = Uuid::random();
  EXPECT_EQ(session_id_from(u.to_string()), u);
  const auto key = protocol::SessionKey::random();
  EXPECT_EQ(session_id_from("band", key), session_id_from("band", key));
  EXPECT_NE(session_id_from("band", key), session_id_from("band"));
  EXPECT_NE(session_id_from("band", key), session_id_from("band", protocol::SessionKey::random()));
}

TEST(Peer, KeyedPeersFindEachOtherAndAWrongKeyFindsNobody) {
  // a and c hold the key; b has another key for the same session name. All
  // three are given a's and c's session id, so only the key keeps b out.
  const auto port = random_port();
  const auto key = protocol::SessionKey::random();
  const Uuid session = session_id_from("band", key);
  auto keyed = [&](const char* name, const protocol::SessionKey& k) {
    auto c = config_for(name, session, port);
    c.key = k;
    c.probe_rate_hz = 100;
    return Peer::start(c).value();
  };
  auto a = keyed("a", key);
  auto b = keyed("b", protocol::SessionKey::random());
  auto c = keyed("c", key);
  ASSERT_TRUE(wait_for([&] { return a->peers().size() == 1 && c->peers().size() == 1; }, 2000ms));
  ASSERT_TRUE(wait_for([&] { return b->transport().totals().keyed_failed >= 4; }, 2000ms));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(a->peers()[0].name, "c");
  EXPECT_TRUE(b->peers().empty()) << "b has the wrong key, yet lists " << b->peers()[0].name;
  EXPECT_EQ(b->transport().totals().keyed_opened, 0u);
  EXPECT_GT(a->transport().totals().keyed_failed, 0u);  // b's announces, dropped
  // Probes (control frames) cross between a and c, sealed.
  ASSERT_TRUE(wait_for(
      [&] { return a->report().links.size() == 1 && a->report().links[0].probes_received > 5; },
      2000ms));
}

TEST(Peer, ThreePeersDiscoverEachOtherAndExchangeProbes) {
  const Uuid session = Uuid::random();
  const auto port = random_port();
  std::vector<std::unique_ptr<Peer>> peers;
  for (const char* name : {"a", "b", "c"}) {
    auto c = config_for(name, session, port);
    c.probe_rate_hz = 200;
    auto p = Peer::start(c);
    ASSERT_TRUE(p.has_value()) << p.error().message;
    peers.push_back(std::move(*p));
  }
  ASSERT_TRUE(wait_for(
      [&] {
        for (auto& p : peers) {
          if (p->peers().size() != 2) return false;
        }
        return true;
      },
      2000ms));
  std::this_thread::sleep_for(500ms);
  for (auto& p : peers) {
    const auto r = p->report();
    ASSERT_EQ(r.links.size(), 2u);
    for (const auto& l : r.links) {
      EXPECT_GT(l.probes_sent, 20u) << r.name << "->" << l.info.name;
      EXPECT_GT(l.probes_received, 20u) << r.name << "<-" << l.info.name;
      EXPECT_EQ(l.probes_lost, 0u);
      EXPECT_EQ(l.app_duplicates, 0u);
      EXPECT_GT(l.info.pongs_received, 0u);
      EXPECT_GT(l.info.rtt_p50_ms, 0.0);
      EXPECT_LT(l.info.rtt_p50_ms, 50.0);
      EXPECT_EQ(l.info.source, net::AddressSource::kMulticast);
    }
  }
}

TEST(Peer, SessionsAreIsolated) {
  // a and c share a session, b has its own, all on one multicast group: a
  // and c finding each other shows discovery works, so b finding nobody while
  // it receives (and counts) their frames shows the isolation.
  const auto port = random_port();
  const Uuid shared = Uuid::random();
  auto a = Peer::start(config_for("a", shared, port)).value();
  auto b = Peer::start(config_for("b", Uuid::random(), port)).value();
  auto c = Peer::start(config_for("c", shared, port)).value();
  ASSERT_TRUE(wait_for([&] { return a->peers().size() == 1 && c->peers().size() == 1; }, 2000ms));
  std::uint64_t foreign = 0;
  ASSERT_TRUE(wait_for(
      [&] {
        foreign = 0;
        for (const auto& s : b->transport().source_stats()) foreign += s.foreign_session;
        return foreign >= 2;
      },
      2000ms));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(a->peers()[0].name, "c");
  EXPECT_EQ(c->peers()[0].name, "a");
  EXPECT_EQ(a->peers().size(), 1u);
  EXPECT_TRUE(b->peers().empty()) << "b joined another session, yet lists " << b->peers()[0].name;
}

TEST(Peer, UnicastConnectWorksWithoutMulticast) {
  const Uuid session = Uuid::random();
  auto cb = config_for("b", session, 0);
  cb.multicast.reset();
  auto b = Peer::start(cb).value();
  auto ca = config_for("a", session, 0);
  ca.multicast.reset();
  ca.connect = {b->local()};
  auto a = Peer::start(ca).value();
  ASSERT_TRUE(wait_for([&] { return a->peers().size() == 1 && b->peers().size() == 1; }, 1000ms));
  EXPECT_EQ(a->peers()[0].source, net::AddressSource::kPinned);
  EXPECT_EQ(b->peers()[0].source, net::AddressSource::kUnicast);
  EXPECT_EQ(b->peers()[0].address, a->local());
}

TEST(Peer, CleanStopRemovesAtOnceAndRestartIsFoundAgain) {
  const Uuid session = Uuid::random();
  const auto port = random_port();
  auto a = Peer::start(config_for("a", session, port)).value();
  auto cb = config_for("b", session, port);
  cb.id = Uuid::random();
  auto b = Peer::start(cb).value();
  ASSERT_TRUE(wait_for([&] { return a->peers().size() == 1; }, 1000ms));
  const auto first_incarnation = a->peers()[0].incarnation;
  b->stop();
  ASSERT_TRUE(wait_for([&] { return a->peers().empty(); }, 300ms))
      << "Bye should remove the peer at once";
  b = Peer::start(cb).value();
  ASSERT_TRUE(wait_for([&] { return a->peers().size() == 1; }, 1000ms));
  EXPECT_NE(a->peers()[0].incarnation, first_incarnation);
}

TEST(Peer, SilentPeerTimesOut) {
  const Uuid session = Uuid::random();
  const auto port = random_port();
  auto a = Peer::start(config_for("a", session, port)).value();
  auto b = Peer::start(config_for("b", session, port)).value();
  ASSERT_TRUE(wait_for([&] { return a->peers().size() == 1; }, 1000ms));
  b->stop(/*say_goodbye=*/false);  // silent, like a crash
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_for([&] { return a->peers().empty(); }, 2000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 300ms);
  // The event follows the removal (the control thread first drops what was
  // kept per address of the gone peer): wait for it.
  std::vector<net::PeerEvent> events;
  ASSERT_TRUE(wait_for(
      [&] {
        for (auto& e : a->take_events()) events.push_back(std::move(e));
        return std::any_of(events.begin(), events.end(),
                           [](const auto& e) { return e.kind == net::PeerEventKind::kTimedOut; });
      },
      1000ms));
  bool timed_out = false;
  for (const auto& e : events) {
    if (e.kind != net::PeerEventKind::kTimedOut) continue;
    timed_out = true;
    // What was kept per address of the gone peer went with it.
    EXPECT_FALSE(e.addresses.empty());
    for (const auto& s : a->transport().stream_stats())
      for (const auto& ep : e.addresses) EXPECT_NE(s.from, ep) << "figures of a gone peer kept";
  }
  EXPECT_TRUE(timed_out);
}

}  // namespace
}  // namespace jamnet
