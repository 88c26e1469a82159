#include "jamnet/net/transport.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "jamnet/protocol/toast_frame.hpp"

#include "../support/wait.hpp"
namespace jamnet::net {
namespace {

using namespace std::chrono_literals;
using protocol::StreamType;

using testing::wait_for;

struct Node {
  SessionRegistry registry;
  std::unique_ptr<Transport> transport;
  std::mutex mu;
  std::vector<std::uint32_t> seqs;
  std::vector<Nanos> kernel_ts;
  std::atomic<int> via_multicast{0};

  explicit Node(const Uuid& session, std::optional<Endpoint> group = std::nullopt,
                TransportConfig c = {}) {
    registry.join(session);
    registry.subscribe({session, StreamType::kControl, 0}, [this](const ReceivedFrame& rx) {
      std::lock_guard lock(mu);
      seqs.push_back(rx.frame.header.sequence);
      kernel_ts.push_back(rx.kernel_rx_realtime_ns);
      if (rx.via_multicast) ++via_multicast;
    });
    c.multicast = group;
    transport = Transport::start(c, registry).value();
  }
  // The threads go before the members their handler writes to.
  ~Node() {
    transport->stop();
    registry.stop();
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  std::size_t count() {
    std::lock_guard lock(mu);
    return seqs.size();
  }
};

SendOptions control(const Uuid& session) {
  SendOptions o;
  o.session = session;
  o.topic = {StreamType::kControl, 0};
  o.kind = 1;
  return o;
}

TEST(Transport, DeliversInOrderWithKernelTimestampsAndCountsPerStream) {
  const Uuid s = Uuid::random();
  Node rx(s), tx(s);
  const std::vector<std::uint8_t> payload(256, 7);
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(tx.transport->send(control(s), payload, rx.transport->local()));
  ASSERT_TRUE(wait_for([&] { return rx.count() == 100; }));
  const Nanos now = realtime_ns();
  for (std::size_t i = 1; i < rx.seqs.size(); ++i) EXPECT_EQ(rx.seqs[i], rx.seqs[i - 1] + 1);
  for (Nanos ts : rx.kernel_ts) {
    EXPECT_GT(ts, 0) << "SO_TIMESTAMPNS missing";
    EXPECT_LT(std::abs(now - ts), 5'000'000'000);
  }
  const auto streams = rx.transport->stream_stats();
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].from, tx.transport->local());
  EXPECT_EQ(streams[0].counts.received, 100u);
  EXPECT_EQ(streams[0].counts.lost, 0u);
  EXPECT_EQ(streams[0].bytes, 100u * protocol::encoded_size(256));
  EXPECT_EQ(tx.transport->totals().frames_sent, 100u);
  // A peer that is gone takes its per-address figures with it; the totals stay.
  rx.transport->forget(tx.transport->local());
  EXPECT_TRUE(rx.transport->stream_stats().empty());
  EXPECT_TRUE(rx.transport->source_stats().empty());
  EXPECT_EQ(rx.transport->totals().frames_delivered, 100u);
}

TEST(Transport, CorruptForeignAndDuplicateFramesNeverReachTheApplication) {
  const Uuid s = Uuid::random();
  Node rx(s);
  auto raw = UdpSocket::bind(Endpoint::loopback(0)).value();
  const auto to = rx.transport->local();

  protocol::FrameHeader h;
  h.stream_type = StreamType::kControl;
  h.session_id = s;
  h.sequence = 5;
  auto good = protocol::encode_frame(h, std::vector<std::uint8_t>(32, 1)).value();
  auto corrupt = good;
  corrupt[40] ^= 0x10;
  h.session_id = Uuid::random();
  auto foreign = protocol::encode_frame(h, std::vector<std::uint8_t>(32, 1)).value();

  ASSERT_TRUE(raw.send_to(good, to));
  ASSERT_TRUE(raw.send_to(good, to));  // duplicate
  ASSERT_TRUE(raw.send_to(corrupt, to));
  ASSERT_TRUE(raw.send_to(foreign, to));
  ASSERT_TRUE(raw.send_to(std::vector<std::uint8_t>{1, 2, 3}, to));  // truncated garbage
  ASSERT_TRUE(wait_for([&] { return rx.transport->totals().datagrams_received == 5; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(rx.count(), 1u);
  const auto sources = rx.transport->source_stats();
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].datagrams, 5u);
  EXPECT_EQ(sources[0].corrupt, 1u);
  EXPECT_EQ(sources[0].malformed, 1u);
  EXPECT_EQ(sources[0].foreign_session, 1u);
  EXPECT_EQ(sources[0].errors[protocol::FrameError::kTruncated], 1u);
  const auto streams = rx.transport->stream_stats();
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].counts.duplicated, 1u);
  EXPECT_EQ(rx.transport->totals().errors[protocol::FrameError::kCrcMismatch], 1u);
}

// Garbage from sources not verified yet gets a bounded share of the receive
// thread; a source whose frames reached the session passes the gate.
TEST(Transport, GarbageFromUnverifiedSourcesIsLimitedAndMembersPassTheGate) {
  const Uuid s = Uuid::random();
  TransportConfig c;
  c.flood.total_per_s = 1000;  // 100 per 100 ms window
  c.flood.prefix_per_s = 1000;
  Node rx(s, std::nullopt, c);
  auto member = UdpSocket::bind(Endpoint::loopback(0)).value();
  auto flood = UdpSocket::bind(Endpoint::loopback(0)).value();
  const auto to = rx.transport->local();
  protocol::FrameHeader h;
  h.stream_type = StreamType::kControl;
  h.session_id = s;
  h.sequence = 1;
  ASSERT_TRUE(
      member.send_to(protocol::encode_frame(h, std::vector<std::uint8_t>(8, 1)).value(), to));
  ASSERT_TRUE(wait_for([&] { return rx.count() == 1; }));
  const std::vector<std::uint8_t> garbage(64, 0xEE);
  for (int i = 0; i < 1000; ++i) (void)flood.send_to(garbage, to);
  for (std::uint32_t i = 2; i <= 101; ++i) {
    h.sequence = i;
    ASSERT_TRUE(
        member.send_to(protocol::encode_frame(h, std::vector<std::uint8_t>(8, 1)).value(), to));
  }
  ASSERT_TRUE(wait_for([&] { return rx.transport->totals().datagrams_received == 1101; }));
  // Control frames reach their handler through the registry's thread: let it catch up.
  (void)wait_for([&] { return rx.count() >= 101; });
  EXPECT_EQ(rx.count(), 101u) << "every member frame got through the flood";
  EXPECT_EQ(rx.registry.stats().deferred_full, 0u);
  const auto t = rx.transport->totals();
  EXPECT_GE(t.flood_dropped, 600u);
  EXPECT_EQ(t.flood_dropped + t.errors.total(), 1000u) << "each garbage datagram counted once";
  // Only what the gate let through was looked at, and only the member has
  // per-source state marked as verified.
  EXPECT_LE(t.errors.total(), 400u);
}

TEST(Transport, OversizedPayloadIsAClearSendError) {
  const Uuid s = Uuid::random();
  Node rx(s), tx(s);
  auto r =
      tx.transport->send(control(s), std::vector<std::uint8_t>(protocol::kDefaultMaxPayload + 1),
                         rx.transport->local());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  EXPECT_NE(r.error().message.find("1472"), std::string::npos) << r.error().message;
  EXPECT_EQ(tx.transport->totals().send_failures, 1u);
}

TEST(Transport, MulticastOnLoopbackReachesOthersAndIgnoresOurOwn) {
  const Uuid s = Uuid::random();
  const Endpoint group{0xEFFF4A4Du,
                       static_cast<std::uint16_t>(40000 + std::random_device{}() % 20000)};
  Node a(s, group), b(s, group);
  ASSERT_TRUE(a.transport->send_to_group(control(s), std::vector<std::uint8_t>(16, 3)));
  ASSERT_TRUE(wait_for([&] { return b.count() == 1; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(b.via_multicast.load(), 1);
  EXPECT_EQ(a.count(), 0u) << "a node must not hear its own group frames";
  EXPECT_EQ(a.transport->totals().own_multicast_ignored, 1u);
}

TEST(Transport, RejectsANonMulticastGroup) {
  SessionRegistry reg;
  TransportConfig c;
  c.multicast = Endpoint::loopback(47000);
  auto t = Transport::start(c, reg);
  ASSERT_FALSE(t.has_value());
  EXPECT_NE(t.error().message.find("224.0.0.0/4"), std::string::npos);
}

TEST(SessionRegistry, SequencesArePerDestinationAndTopicUrisRoute) {
  SessionRegistry reg;
  const Uuid s = Uuid::random();
  const Topic t{StreamType::kAudio, 3};
  const auto a0 = reg.next_sequence(s, t, Endpoint::loopback(1));
  const auto b0 = reg.next_sequence(s, t, Endpoint::loopback(2));
  EXPECT_EQ(reg.next_sequence(s, t, Endpoint::loopback(1)), a0 + 1);
  EXPECT_EQ(reg.next_sequence(s, t, Endpoint::loopback(2)), b0 + 1);
  // Forgetting a destination restarts its numbering only.
  reg.forget_destination(Endpoint::loopback(1));
  EXPECT_EQ(reg.next_sequence(s, t, Endpoint::loopback(2)), b0 + 2);
  EXPECT_NE(reg.next_sequence(s, t, Endpoint::loopback(1)), a0 + 2)
      << "a forgotten destination starts again at a random number";
  EXPECT_FALSE(reg.subscribe("nonsense", [](const ReceivedFrame&) {}).has_value());
  EXPECT_TRUE(
      reg.subscribe("audio://" + s.to_string() + "/*", [](const ReceivedFrame&) {}).has_value());
}

}  // namespace
}  // namespace jamnet::net
