// The relay over real sockets on 127.0.0.1. Every wait is bounded.
#include "jamnet/net/netsim.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "jamnet/net/udp_socket.hpp"

namespace jamnet::net {
namespace {

constexpr Nanos kMs = 1'000'000;

bool receive_within(UdpSocket& s, std::vector<std::uint8_t>& buf, Datagram& d, int timeout_ms) {
  if (s.receive(buf, d)) return true;
  pollfd p{s.fd(), POLLIN, 0};
  ::poll(&p, 1, timeout_ms);
  return s.receive(buf, d);
}

// A client and a target on loopback with the relay between them.
struct Rig {
  UdpSocket client;
  UdpSocket target;
  std::unique_ptr<Netsim> sim;
  std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(65536);
  std::uint64_t arrived = 0;  // datagrams the target received through send_all/drain_target

  explicit Rig(const Impairment& fwd = {}, const Impairment& rev = {}) {
    client = UdpSocket::bind(Endpoint::loopback(0)).value();
    target = UdpSocket::bind(Endpoint::loopback(0)).value();
    NetsimConfig c;
    c.listen = Endpoint::loopback(0);
    c.target = target.local();
    c.forward = fwd;
    c.reverse = rev;
    auto started = Netsim::start(c);
    EXPECT_TRUE(started.has_value()) << started.error().message;
    sim = std::move(*started);
  }

  // Sends `count` datagrams made by `make(i)` in batches small enough for the
  // kernel's socket buffers, collecting what reaches the target as it goes.
  template <class Make, class OnArrival>
  void send_all(int count, Make make, OnArrival on_arrival) {
    constexpr int kBatch = 100;
    Datagram d;
    for (int i = 0; i < count;) {
      for (int end = std::min(count, i + kBatch); i < end; ++i) {
        ASSERT_TRUE(client.send_to(make(i), sim->listen_endpoint()));
      }
      // Wait until the relay took the batch (1 s at most), draining the target meanwhile.
      for (const Nanos deadline = monotonic_ns() + 1000 * kMs; monotonic_ns() < deadline;) {
        while (target.receive(buf, d)) arrival(d, on_arrival);
        if (sim->report().forward.received == static_cast<std::uint64_t>(i)) break;
        pollfd p{target.fd(), POLLIN, 0};
        ::poll(&p, 1, 1);
      }
    }
  }

  template <class OnArrival>
  void arrival(const Datagram& d, OnArrival& on_arrival) {
    ++arrived;
    on_arrival(std::span<const std::uint8_t>(buf.data(), d.size));
  }

  // Drains the target until it saw everything the relay says it forwarded (or `ms` passed).
  template <class OnArrival>
  void drain_target(OnArrival on_arrival, int ms = 1000) {
    Datagram d;
    for (const Nanos deadline = monotonic_ns() + ms * kMs; monotonic_ns() < deadline;) {
      const NetsimReport r = sim->report();
      const auto& f = r.forward;
      const bool settled = f.forwarded + f.dropped_loss + f.dropped_queue + f.dropped_send ==
                           f.received + f.duplicated;
      if (settled && arrived == f.forwarded) break;
      if (receive_within(target, buf, d, 5)) arrival(d, on_arrival);
    }
  }
};

std::vector<std::uint8_t> pattern(std::size_t size, std::uint32_t salt) {
  std::vector<std::uint8_t> p(size);
  for (std::size_t i = 0; i < size; ++i)
    p[i] = static_cast<std::uint8_t>((i * 131 + salt * 7919) >> 3);
  return p;
}

TEST(Netsim, PassesDatagramsUnchangedBothWays) {
  Rig rig;
  const std::vector<std::size_t> sizes = {0, 1, 100, 1472, 1473, 9000, 32768, 65507};
  Datagram d;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    const auto sent = pattern(sizes[k], static_cast<std::uint32_t>(k));
    ASSERT_TRUE(rig.client.send_to(sent, rig.sim->listen_endpoint()));
    ASSERT_TRUE(receive_within(rig.target, rig.buf, d, 1000)) << "size " << sizes[k];
    ASSERT_EQ(d.size, sent.size());
    EXPECT_FALSE(d.truncated);
    EXPECT_TRUE(std::equal(sent.begin(), sent.end(), rig.buf.begin()));
    EXPECT_EQ(d.from, rig.sim->upstream_endpoint());

    // The reply goes to where the request came from and comes back from listen.
    const auto reply = pattern(sizes[k], static_cast<std::uint32_t>(k + 100));
    ASSERT_TRUE(rig.target.send_to(reply, d.from));
    ASSERT_TRUE(receive_within(rig.client, rig.buf, d, 1000));
    ASSERT_EQ(d.size, reply.size());
    EXPECT_TRUE(std::equal(reply.begin(), reply.end(), rig.buf.begin()));
    EXPECT_EQ(d.from, rig.sim->listen_endpoint());
  }
  const NetsimReport r = rig.sim->report();
  for (const auto* s : {&r.forward, &r.reverse}) {
    EXPECT_EQ(s->received, sizes.size());
    EXPECT_EQ(s->forwarded, sizes.size());
    EXPECT_EQ(s->bytes_in, s->bytes_out);
    EXPECT_EQ(s->dropped_loss + s->dropped_queue + s->dropped_send, 0u);
  }
  ASSERT_TRUE(r.client.has_value());
  EXPECT_EQ(*r.client, rig.client.local());
  EXPECT_EQ(r.upstream.addr, 0x7F000001u);  // ephemeral port on listen's address
}

TEST(Netsim, OnlyTheTargetCanReply) {
  Rig rig;
  UdpSocket stranger = UdpSocket::bind(Endpoint::loopback(0)).value();
  Datagram d;
  const std::vector<std::uint8_t> hello = {1, 2, 3};
  ASSERT_TRUE(rig.client.send_to(hello, rig.sim->listen_endpoint()));
  ASSERT_TRUE(receive_within(rig.target, rig.buf, d, 1000));
  ASSERT_TRUE(stranger.send_to(hello, rig.sim->upstream_endpoint()));
  EXPECT_FALSE(receive_within(rig.client, rig.buf, d, 100));
  EXPECT_EQ(rig.sim->report().ignored, 1u);
}

TEST(Netsim, RandomLossMatchesWhatArrives) {
  Impairment fwd;
  fwd.loss = 0.2;
  Rig rig(fwd);
  constexpr int kCount = 5000;
  const auto ignore = [](std::span<const std::uint8_t>) {};
  rig.send_all(
      kCount, [](int i) { return pattern(200, static_cast<std::uint32_t>(i)); }, ignore);
  rig.drain_target(ignore);

  const NetsimReport r = rig.sim->report();
  EXPECT_EQ(r.forward.received, static_cast<std::uint64_t>(kCount));
  EXPECT_EQ(rig.arrived, r.forward.forwarded);
  EXPECT_EQ(r.forward.forwarded + r.forward.dropped_loss, r.forward.received);
  EXPECT_NEAR(static_cast<double>(r.forward.dropped_loss) / kCount, 0.2, 0.03);
  EXPECT_EQ(r.forward.bytes_out, 200 * r.forward.forwarded);
}

TEST(Netsim, DelayHoldsEachDatagramAtLeastThatLong) {
  Impairment delayed;
  delayed.delay = 20 * kMs;
  Rig rig(delayed, delayed);
  Datagram d;
  for (int i = 0; i < 10; ++i) {
    const Nanos sent_at = monotonic_ns();
    std::vector<std::uint8_t> msg(sizeof sent_at);
    std::memcpy(msg.data(), &sent_at, sizeof sent_at);
    ASSERT_TRUE(rig.client.send_to(msg, rig.sim->listen_endpoint()));
    ASSERT_TRUE(receive_within(rig.target, rig.buf, d, 1000));
    const Nanos one_way = d.user_rx_ns - sent_at;
    EXPECT_GE(one_way, 20 * kMs);
    EXPECT_LT(one_way, 200 * kMs);  // generous: the VM can stall
    ASSERT_TRUE(rig.target.send_to(msg, d.from));
    ASSERT_TRUE(receive_within(rig.client, rig.buf, d, 1000));
    EXPECT_GE(d.user_rx_ns - sent_at, 40 * kMs);  // delayed both ways
  }
  const NetsimReport r = rig.sim->report();
  EXPECT_NEAR(r.forward.delayed_ms_mean, 20.0, 1e-6);
  EXPECT_NEAR(r.reverse.delayed_ms_mean, 20.0, 1e-6);
}

// Payload: the sequence number three times (a vote survives one flipped bit),
// then a pattern derived from it.
std::vector<std::uint8_t> numbered(std::uint32_t seq) {
  auto p = pattern(64, seq);
  for (int k = 0; k < 3; ++k) std::memcpy(p.data() + 4 * k, &seq, 4);
  return p;
}

std::uint32_t vote(std::span<const std::uint8_t> p) {
  std::uint32_t a, b, c;
  std::memcpy(&a, p.data(), 4);
  std::memcpy(&b, p.data() + 4, 4);
  std::memcpy(&c, p.data() + 8, 4);
  return a == b || a == c ? a : b;
}

TEST(Netsim, DuplicatesAndCorruptionMatchWhatArrives) {
  Impairment fwd;
  fwd.duplicate = 0.1;
  fwd.corrupt = 0.1;
  Rig rig(fwd);
  constexpr int kCount = 1000;
  std::uint64_t corrupted = 0;
  std::multiset<std::uint32_t> seen;
  const auto check = [&](std::span<const std::uint8_t> p) {
    ASSERT_EQ(p.size(), 64u);
    const std::uint32_t seq = vote(p);
    seen.insert(seq);
    const auto want = numbered(seq);
    int bits = 0;
    for (std::size_t i = 0; i < p.size(); ++i) bits += __builtin_popcount(p[i] ^ want[i]);
    EXPECT_LE(bits, 1);
    corrupted += bits == 1;
  };
  rig.send_all(
      kCount, [](int i) { return numbered(static_cast<std::uint32_t>(i)); }, check);
  rig.drain_target(check);

  const NetsimReport r = rig.sim->report();
  std::set<std::uint32_t> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kCount));
  EXPECT_EQ(rig.arrived, r.forward.forwarded);
  EXPECT_EQ(r.forward.forwarded, r.forward.received + r.forward.duplicated);
  EXPECT_EQ(seen.size() - distinct.size(), r.forward.duplicated);
  EXPECT_EQ(corrupted, r.forward.corrupted);
  EXPECT_NEAR(static_cast<double>(r.forward.duplicated) / kCount, 0.1, 0.03);
  EXPECT_NEAR(static_cast<double>(r.forward.corrupted) / kCount, 0.1, 0.03);
}

TEST(Netsim, ReorderLetsLaterPacketsOvertake) {
  Impairment fwd;
  fwd.reorder = 0.2;
  fwd.reorder_gap = 5 * kMs;
  Rig rig(fwd);
  constexpr std::uint32_t kCount = 200;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(rig.client.send_to(numbered(i), rig.sim->listen_endpoint()));
    const timespec half_ms{0, 500'000};
    ::nanosleep(&half_ms, nullptr);
  }
  std::vector<std::uint32_t> order;
  rig.drain_target([&](std::span<const std::uint8_t> p) { order.push_back(vote(p)); });
  ASSERT_EQ(order.size(), kCount);
  int inversions = 0;
  for (std::size_t i = 1; i < order.size(); ++i) inversions += order[i] < order[i - 1];
  const NetsimReport r = rig.sim->report();
  EXPECT_GT(r.forward.reordered, 0u);
  EXPECT_GT(inversions, 0);
  EXPECT_LE(static_cast<std::uint64_t>(inversions), r.forward.reordered);
}

TEST(Netsim, RateLimitSpacesABurst) {
  Impairment fwd;
  fwd.rate_kbps = 800;  // 1000 bytes = 10 ms
  Rig rig(fwd);
  const auto payload = pattern(1000, 1);
  const Nanos start = monotonic_ns();
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(rig.client.send_to(payload, rig.sim->listen_endpoint()));
  std::vector<Nanos> at;
  Datagram d;
  while (receive_within(rig.target, rig.buf, d, at.size() < 5 ? 1000 : 100))
    at.push_back(d.user_rx_ns);
  const NetsimReport r = rig.sim->report();
  // The 50 ms queue holds five 10 ms packets; the rest of the burst is dropped
  // (fewer if the VM stalled the sender long enough for the link to drain).
  ASSERT_GE(at.size(), 5u);
  EXPECT_EQ(at.size() + r.forward.dropped_queue, 8u);
  // A lower bound, so a loaded VM cannot break it: the k-th accepted packet
  // cannot leave before k serialisation times have passed.
  EXPECT_GE(at.back() - start, static_cast<Nanos>(at.size()) * 10 * kMs);
}

TEST(Netsim, ReportIsValidFlatJson) {
  Rig rig;
  const std::string json = rig.sim->report().to_json();
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_NE(json.find("\"client\":null"), std::string::npos);
  EXPECT_NE(json.find("\"forward.received\":0"), std::string::npos);
  EXPECT_NE(json.find("\"reverse.delayed_ms_mean\":0.0"), std::string::npos);
  const auto j = nlohmann::json::parse(json);
  EXPECT_TRUE(j["reverse.delayed_ms_mean"].is_number_float());
  EXPECT_TRUE(j["seed"].is_number_unsigned());
  EXPECT_TRUE(j["elapsed_s"].is_number());
  EXPECT_NE(json.find("\"listen\":\"127.0.0.1:"), std::string::npos);
}

TEST(Netsim, RejectsATargetWithoutPortAndStopsTwice) {
  NetsimConfig c;
  c.listen = Endpoint::loopback(0);
  c.target = Endpoint::loopback(0);
  EXPECT_FALSE(Netsim::start(c).has_value());
  Rig rig;
  rig.sim->stop();
  rig.sim->stop();
  const double frozen = rig.sim->report().elapsed_s;
  EXPECT_EQ(rig.sim->report().elapsed_s, frozen);
}

}  // namespace
}  // namespace jamnet::net
