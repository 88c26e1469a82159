// SyncSession on the loopback: two real peers lock their clocks, agree on a
// transport command, answer a controller's request, and reject (and count)
// bad control messages. Bounds are loose: the point is the wiring; accuracy is
// tested in virtual time (tests/sync) and measured by the benchmark.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "jamnet/peer/peer.hpp"

#include "../support/wait.hpp"
namespace jamnet {
namespace {

using namespace std::chrono_literals;
namespace ctl = protocol::control;

template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds limit) {
  return testing::wait_for(pred, limit, 10ms);
}

struct Pair {
  std::unique_ptr<Peer> a, b;
};

Pair start_pair(const Uuid& session) {
  const auto base = static_cast<std::uint16_t>(41000 + std::random_device{}() % 9000);
  auto cfg = [&](const char* name, std::uint16_t port, std::uint16_t other, double skew,
                 Nanos offset) {
    PeerConfig c;
    c.name = name;
    // b has the lower id and becomes master; a, 3 s ahead, steps back onto
    // b's timeline when it locks (events it scanned ahead must be scanned again).
    Uuid id;
    id.bytes[15] = name[0] == 'a' ? 2 : 1;
    c.id = id;
    c.session = session;
    c.multicast.reset();
    c.bind = net::Endpoint::loopback(port);
    c.connect = {net::Endpoint::loopback(other)};
    c.announce_interval_ns = 100'000'000;
    SyncConfig s;
    s.test_offset_ns = offset;
    s.test_skew_ppm = skew;
    c.sync = s;
    return c;
  };
  Pair p;
  auto a = Peer::start(cfg("a", base, static_cast<std::uint16_t>(base + 1), 40, 1'000'000'000));
  auto b = Peer::start(cfg("b", static_cast<std::uint16_t>(base + 1), base, -40, -2'000'000'000));
  EXPECT_TRUE(a.has_value() && b.has_value());
  if (a && b) {
    p.a = std::move(*a);
    p.b = std::move(*b);
  }
  return p;
}

TEST(SyncSession, TwoPeersLockAndPlayTogether) {
  const Uuid session = Uuid::random();
  auto [a, b] = start_pair(session);
  ASSERT_TRUE(a && b);
  // One becomes master, the other locks to it (listening 2.5 s, then seconds of samples).
  ASSERT_TRUE(wait_for(
      [&] {
        const auto ra = a->sync()->report().clock, rb = b->sync()->report().clock;
        return ra.is_master != rb.is_master && (ra.is_master ? rb.locked : ra.locked);
      },
      60s))
      << a->report().to_json() << "\n"
      << b->report().to_json();
  Peer& follower = a->sync()->report().clock.is_master ? *b : *a;
  // Offsets of 3 s and 80 ppm between the test clocks: the session clocks agree.
  const Nanos sa = a->sync()->session_now(), sb = b->sync()->session_now();
  EXPECT_LT(std::abs(static_cast<double>(sa - sb)), 5'000'000.0);
  EXPECT_GT(follower.sync()->report().clock.quality, 0.0);

  sync::TransportCommandRec play;
  play.command = sync::TransportCommand::kPlay;
  auto at = follower.sync()->command(play);
  ASSERT_TRUE(at.has_value()) << at.error().message;
  ASSERT_TRUE(wait_for(
      [&] {
        return a->sync()->transport_state().play == sync::PlayState::kPlaying &&
               b->sync()->transport_state().play == sync::PlayState::kPlaying;
      },
      5s));
  // Both recorded the start, for the same command, at nearly the same instant.
  ASSERT_TRUE(wait_for(
      [&] { return !a->sync()->report().events.empty() && !b->sync()->report().events.empty(); },
      2s));
  const auto ea = a->sync()->report().events.back(), eb = b->sync()->report().events.back();
  EXPECT_EQ(ea.at_session_ns, *at);
  EXPECT_EQ(eb.at_session_ns, *at);
  EXPECT_EQ(ea.command, "PLAY");
  // Loopback, a loaded CI machine: within 5 ms (the benchmark measures µs).
  EXPECT_LT(std::abs(static_cast<double>(ea.sample_mono_ns - eb.sample_mono_ns)), 5'000'000.0);
}

TEST(SyncSession, AnswersRequestsAndRejectsBadMessages) {
  const Uuid session = Uuid::random();
  auto [a, b] = start_pair(session);
  ASSERT_TRUE(a && b);
  // A controller: a bare transport on the session's control stream.
  net::SessionRegistry reg;
  net::TransportConfig tc;
  tc.bind = net::Endpoint::loopback(0);
  tc.multicast.reset();
  auto t = net::Transport::start(tc, reg);
  ASSERT_TRUE(t.has_value()) << t.error().message;
  reg.join(session);
  std::mutex mu;
  std::vector<ctl::ControlMessage> got;
  reg.subscribe({session, protocol::StreamType::kControl, 1}, [&](const net::ReceivedFrame& rx) {
    auto m = ctl::parse(
        {reinterpret_cast<const char*>(rx.frame.payload.data()), rx.frame.payload.size()});
    if (!m) return;
    std::lock_guard lock(mu);
    got.push_back(*m);
  });
  auto send = [&](const std::string& text) {
    net::SendOptions o;
    o.session = session;
    o.topic = {protocol::StreamType::kControl, 1};
    o.kind = kJsonControlKind;
    o.format = protocol::FormatType::kStandardJson;
    return (*t)->send(o, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()},
                      a->local());
  };
  auto count = [&](auto pred) {
    std::lock_guard lock(mu);
    return std::count_if(got.begin(), got.end(), pred);
  };

  // Bad messages: not JSON, wrong version, unknown type, schema violation.
  for (const char* bad : {"{not json", R"({"v":2,"type":"request","id":1,"action":"play"})",
                          R"({"v":1,"type":"dance"})",
                          R"({"v":1,"type":"request","id":1,"action":"tempo","bpm":0})"}) {
    ASSERT_TRUE(send(bad).has_value());
  }
  ASSERT_TRUE(wait_for(
      [&] {
        return count([](const auto& m) { return std::holds_alternative<ctl::ErrorMsg>(m); }) >= 4;
      },
      5s));
  const auto rejected = a->sync()->report().rejected;
  EXPECT_GE(rejected[static_cast<std::size_t>(ctl::Reject::kNotJson)], 1u);
  EXPECT_GE(rejected[static_cast<std::size_t>(ctl::Reject::kVersion)], 1u);
  EXPECT_GE(rejected[static_cast<std::size_t>(ctl::Reject::kUnknownType)], 1u);
  EXPECT_GE(rejected[static_cast<std::size_t>(ctl::Reject::kSchema)], 1u);

  // A good request, sent twice (a controller resends until answered): one
  // command, the same answer twice.
  ctl::RequestMsg req;
  req.id = 77;
  req.action = "tempo";
  req.bpm = 90;
  const auto text = ctl::serialize(req);
  ASSERT_TRUE(send(text).has_value());
  ASSERT_TRUE(send(text).has_value());
  auto is_reply = [](const ctl::ControlMessage& m) {
    return std::holds_alternative<ctl::ReplyMsg>(m) && std::get<ctl::ReplyMsg>(m).id == 77;
  };
  ASSERT_TRUE(wait_for([&] { return count(is_reply) >= 2; }, 5s));
  {
    std::lock_guard lock(mu);
    std::vector<ctl::ReplyMsg> replies;
    for (const auto& m : got)
      if (is_reply(m)) replies.push_back(std::get<ctl::ReplyMsg>(m));
    ASSERT_GE(replies.size(), 2u);
    EXPECT_TRUE(replies[0].ok) << replies[0].detail;
    ASSERT_TRUE(replies[0].at_session_ns.has_value());
    EXPECT_EQ(replies[0].at_session_ns, replies[1].at_session_ns);
  }
  EXPECT_EQ(a->sync()->report().transport_commands, 1u);
  ASSERT_TRUE(wait_for([&] { return a->sync()->transport_state().bpm == 90; }, 3s));

  // Seek by bars/beats/ticks, and a bad one.
  ctl::RequestMsg seek;
  seek.id = 78;
  seek.action = "seek";
  seek.bbt = "3.2.0";
  ASSERT_TRUE(send(ctl::serialize(seek)).has_value());
  ctl::RequestMsg bad_seek = seek;
  bad_seek.id = 79;
  bad_seek.bbt = "3.9.0";  // beat 9 in 4/4
  ASSERT_TRUE(send(ctl::serialize(bad_seek)).has_value());
  auto reply_of = [&](std::uint64_t id) -> std::optional<ctl::ReplyMsg> {
    std::lock_guard lock(mu);
    for (const auto& m : got)
      if (std::holds_alternative<ctl::ReplyMsg>(m) && std::get<ctl::ReplyMsg>(m).id == id)
        return std::get<ctl::ReplyMsg>(m);
    return std::nullopt;
  };
  ASSERT_TRUE(wait_for([&] { return reply_of(78) && reply_of(79); }, 5s));
  EXPECT_TRUE(reply_of(78)->ok);
  EXPECT_FALSE(reply_of(79)->ok);
  EXPECT_NE(reply_of(79)->detail.find("beat"), std::string::npos) << reply_of(79)->detail;
  ASSERT_TRUE(wait_for(
      [&] {
        const auto s = a->sync()->transport_state();
        return s.bbt() == sync::Bbt{3, 2, 0};
      },
      3s));
  (*t)->stop();
}

}  // namespace
}  // namespace jamnet
