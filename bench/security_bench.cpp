// Keyed sessions and bounded state (docs/protocol.md, Security and Bounded
// state): what sealing costs, what it adds to one-way latency against an open
// session measured in the same run, whether a member's audio stays on time
// through a garbage flood, and how much a peer's memory grows when datagrams
// come from a million distinct sources.
//
//   sec.aead_ns_per_frame         seal + open of one 256-byte payload (XChaCha20-Poly1305)
//   sec.seal_ns / sec.open_ns     the two halves
//   sec.oneway_p50_ratio_vs_open  keyed / open one-way latency p50 over loopback, interleaved
//   sec.flood_ontime_fraction     member frames (750/s, as 64-frame audio) delivered within
//                                 5 ms while 50,000 garbage datagrams/s hit the same port
//   sec.rss_growth_kb_1m_sources  a whole peer's RSS growth over 1,000,000 datagrams, each
//                                 from its own spoofed source (fed through Transport::receive)
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/net/udp_socket.hpp"
#include "jamnet/peer/peer.hpp"
#include "jamnet/protocol/discovery_message.hpp"
#include "jamnet/protocol/security.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::bench {
namespace {

using protocol::StreamType;

double rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6);
  return std::nan("");
}

void aead(const BenchOptions& opts, Metrics& out) {
  const auto key = protocol::SessionKey::random();
  const Uuid me = Uuid::random();
  protocol::Sealer sealer(key, me, 1);
  protocol::Opener opener(key);
  std::vector<std::uint8_t> ad(protocol::kHeaderSize, 0xA5), plain(256, 0x11),
      sealed(256 + protocol::kSealOverhead), back(256);
  const int n = opts.quick ? 20'000 : 200'000;
  std::vector<std::vector<std::uint8_t>> frames(static_cast<std::size_t>(std::min(n, 4096)));
  // Seal: each a fresh nonce, as on the wire.
  Nanos t0 = monotonic_ns();
  for (int i = 0; i < n; ++i) {
    (void)sealer.seal(ad, plain, sealed);
    if (static_cast<std::size_t>(i) < frames.size()) frames[static_cast<std::size_t>(i)] = sealed;
  }
  const double seal_ns = static_cast<double>(monotonic_ns() - t0) / n;
  // Open: distinct frames (a replay would be dropped before decrypting).
  std::size_t opened = 0;
  t0 = monotonic_ns();
  for (const auto& f : frames) opened += opener.open(ad, f, back).has_value();
  const double open_ns =
      static_cast<double>(monotonic_ns() - t0) / static_cast<double>(frames.size());
  out["sec.seal_ns"] = seal_ns;
  out["sec.open_ns"] = opened == frames.size() ? open_ns : std::nan("");
  out["sec.aead_ns_per_frame"] = seal_ns + out["sec.open_ns"];
}

// One sender and one receiver transport, open or keyed, on loopback.
struct Pair {
  Uuid session;
  net::SessionRegistry rx_reg, tx_reg;
  std::unique_ptr<net::Transport> rx, tx;
  std::mutex mu;
  std::vector<double> oneway_us;

  explicit Pair(bool keyed) {
    const auto key = protocol::SessionKey::random();
    session = keyed ? protocol::keyed_session_id(key, "bench") : protocol::open_session_id("bench");
    net::TransportConfig rc, tc;
    if (keyed) {
      rc.keyed = net::KeyedSession{session, key, Uuid::random(), 11, 24};
      tc.keyed = net::KeyedSession{session, key, Uuid::random(), 12, 24};
    }
    rx_reg.join(session);
    tx_reg.join(session);
    rx_reg.subscribe(
        {session, StreamType::kAudio, std::nullopt},
        [this](const net::ReceivedFrame& f) {
          std::lock_guard lock(mu);
          oneway_us.push_back(static_cast<double>(f.rx_ns - f.frame.header.timestamp_ns) / 1e3);
        },
        net::Delivery::kReceiveThread);
    rx = net::Transport::start(rc, rx_reg).value();
    tx = net::Transport::start(tc, tx_reg).value();
  }
  bool send(std::span<const std::uint8_t> payload) {
    net::SendOptions o;
    o.session = session;
    o.topic = {StreamType::kAudio, 0};
    o.kind = 1;
    return tx->send_rt(o, payload, rx->local()).has_value();
  }
};

void oneway(const BenchOptions& opts, Metrics& out) {
  Pair open(false), keyed(true);
  const std::vector<std::uint8_t> payload(256, 0x22);
  const int rounds = opts.quick ? 1000 : 10'000;
  for (int i = 0; i < rounds; ++i) {
    // Interleaved, so both see the same machine.
    (void)open.send(payload);
    sleep_until_ns(monotonic_ns() + 250'000);
    (void)keyed.send(payload);
    sleep_until_ns(monotonic_ns() + 250'000);
  }
  sleep_until_ns(monotonic_ns() + 50'000'000);
  std::lock_guard a(open.mu), b(keyed.mu);
  const double po = percentile_of(open.oneway_us, 0.5), pk = percentile_of(keyed.oneway_us, 0.5);
  out["sec.oneway_p50_us_open"] = po;
  out["sec.oneway_p50_us_keyed"] = pk;
  out["sec.oneway_p50_ratio_vs_open"] = pk / po;
  out["sec.oneway_received_fraction"] =
      static_cast<double>(open.oneway_us.size() + keyed.oneway_us.size()) / (2.0 * rounds);
}

void flood(const BenchOptions& opts, Metrics& out) {
  Pair p(true);
  const std::vector<std::uint8_t> payload(256, 0x33);
  const double seconds = opts.quick ? 2.0 : 10.0;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> flooded{0};
  const auto to = p.rx->local();
  std::thread flooder([&] {
    // 50,000 garbage datagrams a second, from 16 source ports, paced per ms.
    std::vector<net::UdpSocket> socks;
    for (int i = 0; i < 16; ++i)
      socks.push_back(net::UdpSocket::bind(net::Endpoint::loopback(0)).value());
    std::mt19937 rng(7);
    std::vector<std::uint8_t> junk(200);
    Nanos next = monotonic_ns();
    std::size_t k = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 50; ++i) {
        for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
        if (socks[k++ % socks.size()].send_to(junk, to))
          flooded.fetch_add(1, std::memory_order_relaxed);
      }
      next += 1'000'000;
      sleep_until_ns(next);
    }
  });
  sleep_until_ns(monotonic_ns() + 200'000'000);  // the flood is on
  const int frames = static_cast<int>(seconds * 750);
  Nanos next = monotonic_ns();
  for (int i = 0; i < frames; ++i) {
    (void)p.send(payload);
    next += 1'333'333;  // 64 frames at 48 kHz
    sleep_until_ns(next);
  }
  sleep_until_ns(monotonic_ns() + 100'000'000);
  stop = true;
  flooder.join();
  std::lock_guard lock(p.mu);
  const auto on_time =
      std::count_if(p.oneway_us.begin(), p.oneway_us.end(), [](double us) { return us <= 5000.0; });
  out["sec.flood_ontime_fraction"] = static_cast<double>(on_time) / frames;
  out["sec.flood_late_fraction"] = 1.0 - out["sec.flood_ontime_fraction"];
  out["sec.flood_datagrams_per_s"] = static_cast<double>(flooded.load()) / (seconds + 0.3);
  out["sec.flood_dropped_by_gate"] = static_cast<double>(p.rx->totals().flood_dropped);
  out["sec.flood_member_p99_us"] = percentile_of(p.oneway_us, 0.99);
}

void rss_growth(const BenchOptions& opts, Metrics& out) {
  PeerConfig pc;
  pc.session = protocol::open_session_id("bench-rss");
  pc.name = "target";
  pc.bind = net::Endpoint::loopback(0);
  pc.multicast.reset();
  pc.receive_thread = false;  // datagrams fed from here, each "from" its own source
  pc.midi = MidiConfig{};
  pc.audio = AudioConfig{};
  pc.sync = SyncConfig{};
  auto peer = Peer::start(pc).value();
  const std::size_t sources = opts.quick ? 100'000 : 1'000'000;
  std::mt19937_64 rng(11);
  std::vector<std::uint8_t> junk(120);
  // Three kinds, in turn: garbage, a well-formed announce from a new peer id,
  // and a well-formed frame of the session on some stream.
  auto feed = [&](std::size_t i) {
    const net::Endpoint from{(127u << 24) | static_cast<std::uint32_t>((i + 1) & 0xFFFFFF),
                             static_cast<std::uint16_t>(1024 + (i >> 24))};
    std::vector<std::uint8_t> bytes;
    protocol::FrameHeader h;
    h.session_id = pc.session;
    h.sequence = static_cast<std::uint32_t>(rng());
    h.timestamp_ns = monotonic_ns();
    switch (i % 3) {
      case 0:
        for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
        bytes = junk;
        break;
      case 1: {
        Uuid id;
        for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rng());
        h.stream_type = StreamType::kDiscovery;
        h.message_kind = 1;
        bytes = protocol::encode_frame(h, protocol::encode(protocol::Announce{id, 1, "x"})).value();
        break;
      }
      default: {
        h.stream_type = static_cast<StreamType>(1 + rng() % 7);
        h.stream_index = static_cast<std::uint16_t>(rng() % 4);
        h.message_kind = 1;
        bytes = protocol::encode_frame(h, std::span<const std::uint8_t>(junk.data(), 64)).value();
        break;
      }
    }
    (void)peer->transport().receive(bytes, from, false, monotonic_ns());
  };
  for (std::size_t i = 0; i < 20'000; ++i) feed(i);  // warm up: allocator pools, tables
  sleep_until_ns(monotonic_ns() + 200'000'000);
  const double before = rss_kb();
  // At 50,000 datagrams a second, the rate of the flood bench.
  Nanos next = monotonic_ns();
  for (std::size_t i = 20'000; i < 20'000 + sources; ++i) {
    feed(i);
    if (i % 50 == 0) {
      next += 1'000'000;
      sleep_until_ns(next);
    }
  }
  sleep_until_ns(monotonic_ns() + 500'000'000);  // the control thread has handled its share
  const double after = rss_kb();
  const auto r = peer->report();
  out["sec.rss_growth_kb_1m_sources"] =
      (after - before) * (1'000'000.0 / static_cast<double>(sources));
  out["sec.rss_sources_fed"] = static_cast<double>(sources);
  out["sec.rss_flood_dropped"] = static_cast<double>(r.totals.flood_dropped);
  out["sec.rss_peers_after"] = static_cast<double>(r.links.size());
}

}  // namespace

void run_security_bench(const BenchOptions& opts, Metrics& out) {
  aead(opts, out);
  oneway(opts, out);
  flood(opts, out);
  rss_growth(opts, out);
}

}  // namespace jamnet::bench
