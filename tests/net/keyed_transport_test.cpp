// A keyed session on the transport: frames are sealed on the wire, open only
// with the key, and wrong-key, open and replayed frames are dropped and
// counted before any per-stream state is made (protocol/security.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jamnet/net/transport.hpp"
#include "jamnet/net/udp_socket.hpp"
#include "jamnet/protocol/security.hpp"
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
  std::vector<std::string> payloads;

  Node(const Uuid& session, std::optional<protocol::SessionKey> key) {
    registry.join(session);
    registry.subscribe(
        {session, StreamType::kAudio, 0},
        [this](const ReceivedFrame& rx) {
          std::lock_guard lock(mu);
          payloads.emplace_back(reinterpret_cast<const char*>(rx.frame.payload.data()),
                                rx.frame.payload.size());
        },
        Delivery::kReceiveThread);
    TransportConfig c;
    if (key) c.keyed = KeyedSession{session, *key, Uuid::random(), 1, 24};
    transport = Transport::start(c, registry).value();
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return payloads.size();
  }
};

SendOptions audio(const Uuid& session) {
  SendOptions o;
  o.session = session;
  o.topic = {StreamType::kAudio, 0};
  return o;
}

std::vector<std::uint8_t> text(const std::string& s) {
  return {s.begin(), s.end()};
}

// A plain socket on loopback: sees what is on the wire, and sends raw bytes.
struct Tap {
  UdpSocket sock = UdpSocket::bind(Endpoint::loopback(0)).value();
  std::vector<std::uint8_t> next(std::chrono::milliseconds limit = 2000ms) {
    std::vector<std::uint8_t> buf(65536);
    Datagram dg;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (sock.receive(buf, dg)) {
        buf.resize(dg.size);
        return buf;
      }
      std::this_thread::sleep_for(1ms);
    }
    return {};
  }
};

TEST(KeyedTransport, MembersReadEachOtherAndTheWireShowsNoPlaintext) {
  const auto key = protocol::SessionKey::random();
  const Uuid s = protocol::keyed_session_id(key, "band");
  Node a(s, key), b(s, key);
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(
        a.transport->send(audio(s), text("block " + std::to_string(i)), b.transport->local()));
  ASSERT_TRUE(wait_for([&] { return b.count() == 50; }));
  {
    std::lock_guard lock(b.mu);
    for (int i = 0; i < 50; ++i)
      EXPECT_EQ(b.payloads[static_cast<std::size_t>(i)], "block " + std::to_string(i));
  }
  EXPECT_EQ(b.transport->totals().keyed_opened, 50u);
  EXPECT_EQ(b.transport->totals().keyed_failed, 0u);

  Tap tap;
  const std::string secret = "the chord chart for tonight";
  ASSERT_TRUE(a.transport->send(audio(s), text(secret), tap.sock.local()));
  const auto wire = tap.next();
  ASSERT_FALSE(wire.empty());
  const auto frame = protocol::decode_frame(wire);
  ASSERT_TRUE(frame);  // an ordinary TOAST frame (CRC and all)
  EXPECT_EQ(frame->payload.size(), secret.size() + protocol::kSealOverhead);
  EXPECT_EQ(std::search(wire.begin(), wire.end(), secret.begin(), secret.end()), wire.end());
}

TEST(KeyedTransport, WrongKeyAndOpenFramesAreDroppedBeforeAnyStreamState) {
  const auto key = protocol::SessionKey::random();
  const Uuid s = protocol::keyed_session_id(key, "band");
  Node b(s, key);
  Node wrong(s, protocol::SessionKey::random());  // the same session id, another key
  Node open(s, std::nullopt);                     // no key at all
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(wrong.transport->send(audio(s), text("let me in"), b.transport->local()));
    ASSERT_TRUE(open.transport->send(audio(s), text("or me, in the clear"), b.transport->local()));
  }
  ASSERT_TRUE(wait_for([&] { return b.transport->totals().keyed_failed == 40; }));
  EXPECT_EQ(b.count(), 0u);
  EXPECT_EQ(b.transport->totals().keyed_opened, 0u);
  EXPECT_TRUE(b.transport->stream_stats().empty());  // no per-stream state for them
}

TEST(KeyedTransport, ACapturedFrameReplayedIsDroppedAndCounted) {
  const auto key = protocol::SessionKey::random();
  const Uuid s = protocol::keyed_session_id(key, "band");
  Node a(s, key), b(s, key);
  Tap tap;
  ASSERT_TRUE(a.transport->send(audio(s), text("stop the song"), tap.sock.local()));
  const auto captured = tap.next();
  ASSERT_FALSE(captured.empty());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(tap.sock.send_to(captured, b.transport->local()));
  ASSERT_TRUE(wait_for([&] { return b.transport->totals().keyed_replayed == 4; }));
  EXPECT_EQ(b.count(), 1u);  // the first copy is a frame b never had; the rest are replays
  EXPECT_EQ(b.transport->totals().keyed_opened, 1u);
}

TEST(KeyedTransport, PacketSizingLeavesRoomForTheSeal) {
  const auto key = protocol::SessionKey::random();
  const Uuid s = protocol::keyed_session_id(key, "band");
  Node a(s, key), b(s, key), plain(Uuid::random(), std::nullopt);
  EXPECT_TRUE(a.transport->keyed());
  EXPECT_FALSE(plain.transport->keyed());
  EXPECT_EQ(a.transport->max_payload(), plain.transport->max_payload() - protocol::kSealOverhead);
  EXPECT_EQ(plain.transport->max_payload(), protocol::kDefaultMaxPayload);
  const std::vector<std::uint8_t> fits(a.transport->max_payload(), 1);
  const std::vector<std::uint8_t> too_big(a.transport->max_payload() + 1, 1);
  EXPECT_TRUE(a.transport->send(audio(s), fits, b.transport->local()));
  const auto r = a.transport->send(audio(s), too_big, b.transport->local());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  ASSERT_TRUE(wait_for([&] { return b.count() == 1; }));
}

}  // namespace
}  // namespace jamnet::net
