// Loopback latency and throughput through our transport, beside a plain
// sendto/recvfrom program measured in the same run. The two paths share the
// payload, the pacing, the counts and the receive-side bookkeeping (Sink), so
// the difference between them is what our code adds: TOAST encode/decode,
// sequence tracking, per-source stats, the registry dispatch, epoll.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/protocol/byte_order.hpp"

namespace jamnet::bench {
namespace {

constexpr std::size_t kPayloadBytes = 256;
// Frame index that marks throughput frames; latency frames use 0..N-1.
constexpr std::uint32_t kBulkIndex = 0xFFFFFFFFu;
constexpr Nanos kMs = 1'000'000;

// What the receiving side does with a payload, identical for both paths.
struct Sink {
  std::vector<double> latency_us;  // by frame index; NaN until it arrives
  std::atomic<std::uint64_t> latency_received{0};
  std::atomic<std::uint64_t> bulk_received{0};
  std::atomic<Nanos> bulk_last_ns{0};

  void on_payload(const std::uint8_t* p, std::size_t n, Nanos now) noexcept {
    if (n < 12) return;
    const std::uint32_t idx = protocol::load_be32(p + 8);
    if (idx == kBulkIndex) {
      bulk_received.fetch_add(1, std::memory_order_relaxed);
      bulk_last_ns.store(now, std::memory_order_relaxed);
      return;
    }
    if (idx < latency_us.size()) {
      latency_us[idx] = static_cast<double>(now - static_cast<Nanos>(protocol::load_be64(p))) / 1e3;
    }
    latency_received.fetch_add(1, std::memory_order_release);
  }
};

class Path {
 public:
  virtual ~Path() = default;
  virtual bool send(std::span<const std::uint8_t> payload) = 0;
  // Joins the receive thread: after this the Sink is no longer written.
  virtual void stop() = 0;
  Sink sink;
};

// Our code: a receiver Transport with a SessionRegistry subscription, and a
// sender Transport, both on 127.0.0.1:0.
class TransportPath final : public Path {
 public:
  void open() {
    session_ = Uuid::random();
    rx_registry_.join(session_);
    const protocol::Topic topic{protocol::StreamType::kControl, 0};
    rx_registry_.subscribe(protocol::TopicPattern{session_, topic.type, topic.index},
                           [this](const net::ReceivedFrame& rx) {
                             const Nanos now = monotonic_ns();  // first thing the application sees
                             sink.on_payload(rx.frame.payload.data(), rx.frame.payload.size(), now);
                           });
    net::TransportConfig cfg;  // loopback:0, no multicast
    auto rx = net::Transport::start(cfg, rx_registry_);
    if (!rx) throw std::runtime_error("receiver transport: " + rx.error().message);
    rx_ = std::move(*rx);
    auto tx = net::Transport::start(cfg, tx_registry_);
    if (!tx) throw std::runtime_error("sender transport: " + tx.error().message);
    tx_ = std::move(*tx);
    to_ = rx_->local();
    opts_.session = session_;
    opts_.topic = topic;
  }
  bool send(std::span<const std::uint8_t> payload) override {
    return tx_->send(opts_, payload, to_).has_value();
  }
  void stop() override {
    if (tx_) tx_->stop();
    if (rx_) rx_->stop();
  }
  net::TransportTotals receiver_totals() const { return rx_->totals(); }

 private:
  Uuid session_;
  net::SessionRegistry rx_registry_;
  net::SessionRegistry tx_registry_;
  std::unique_ptr<net::Transport> rx_;
  std::unique_ptr<net::Transport> tx_;
  net::SendOptions opts_;
  net::Endpoint to_;
};

// The plain program: two POSIX UDP sockets, blocking sendto and a thread in
// blocking recvfrom. Buffer sizes match our UdpSocket defaults.
class PlainPath final : public Path {
 public:
  ~PlainPath() override {
    stop();
    if (rx_fd_ >= 0) ::close(rx_fd_);
    if (tx_fd_ >= 0) ::close(tx_fd_);
  }
  void open() {
    rx_fd_ = bound_socket();
    tx_fd_ = bound_socket();
    // A receive timeout lets the thread notice stop() without a wake-up fd.
    const timeval tv{0, 100'000};
    ::setsockopt(rx_fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socklen_t len = sizeof to_;
    if (::getsockname(rx_fd_, reinterpret_cast<sockaddr*>(&to_), &len) != 0) fail("getsockname");
    running_ = true;
    thread_ = std::thread([this] { receive_loop(); });
  }
  bool send(std::span<const std::uint8_t> payload) override {
    return ::sendto(tx_fd_, payload.data(), payload.size(), 0,
                    reinterpret_cast<const sockaddr*>(&to_),
                    sizeof to_) == static_cast<ssize_t>(payload.size());
  }
  void stop() override {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }

 private:
  [[noreturn]] static void fail(const char* what) {
    throw std::runtime_error(std::string("plain socket ") + what + ": " + std::strerror(errno));
  }
  static int bound_socket() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    const int buf = 1 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) fail("bind");
    return fd;
  }
  void receive_loop() {
    std::array<std::uint8_t, 2048> buf;
    while (running_.load(std::memory_order_relaxed)) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          ::recvfrom(rx_fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;  // timeout or EINTR: re-check running_
      sink.on_payload(buf.data(), static_cast<std::size_t>(n), monotonic_ns());
    }
  }

  int rx_fd_ = -1;
  int tx_fd_ = -1;
  sockaddr_in to_{};
  std::thread thread_;
  std::atomic<bool> running_{false};
};

// Sends `count` frames at a fixed rate. Pacing (not a flood) keeps the socket
// queues empty, so the figure is latency and not queueing delay.
void latency_block(Path& path, std::uint32_t first_idx, std::uint32_t count, Nanos period) {
  std::array<std::uint8_t, kPayloadBytes> payload{};
  Nanos next = monotonic_ns();
  for (std::uint32_t i = 0; i < count; ++i) {
    next += period;
    // After a VM stall, do not send a burst to catch up: that would measure queueing.
    if (const Nanos now = monotonic_ns(); next < now - period) next = now;
    sleep_until_ns(next);
    // Send time and index travel in the payload in network order, as a real
    // frame would carry them, so the transport and the plain baseline do the same work.
    protocol::store_be32(payload.data() + 8, first_idx + i);
    protocol::store_be64(payload.data(), static_cast<std::uint64_t>(monotonic_ns()));
    path.send(payload);
  }
  // Let the tail arrive; a frame lost on loopback would be a finding, not a hang.
  const Nanos give_up = monotonic_ns() + 500 * kMs;
  while (path.sink.latency_received.load(std::memory_order_acquire) < first_idx + count &&
         monotonic_ns() < give_up) {
    sleep_until_ns(monotonic_ns() + kMs);
  }
}

struct BulkResult {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  Nanos elapsed_ns = 0;  // first send to last delivery
};

// Sends as fast as the sender can for `duration`; counts what the receiver
// delivered, over the time until the last delivery.
BulkResult bulk_block(Path& path, Nanos duration) {
  std::array<std::uint8_t, kPayloadBytes> payload{};
  protocol::store_be32(payload.data() + 8, kBulkIndex);
  BulkResult r;
  const std::uint64_t before = path.sink.bulk_received.load();
  const Nanos t0 = monotonic_ns();
  const Nanos end = t0 + duration;
  do {
    for (int k = 0; k < 64; ++k) r.sent += path.send(payload) ? 1 : 0;
  } while (monotonic_ns() < end);
  // Drained when the count stops moving for 100 ms.
  std::uint64_t seen = path.sink.bulk_received.load();
  for (;;) {
    sleep_until_ns(monotonic_ns() + 100 * kMs);
    const std::uint64_t now_count = path.sink.bulk_received.load();
    if (now_count == seen) break;
    seen = now_count;
  }
  r.delivered = seen - before;
  r.elapsed_ns = path.sink.bulk_last_ns.load() - t0;
  return r;
}

}  // namespace

void run_net_bench(const BenchOptions& opts, Metrics& out) {
  const std::uint32_t frames = opts.quick ? 2'000 : 20'000;
  const Nanos period = 200'000;  // 5 kHz
  // Short blocks, alternated: other tenants' load on this VM changes over
  // seconds, and one multi-millisecond stall queues ~20 paced frames, which is
  // a p99's worth of a long block. Many short blocks spread that over both paths.
  const int rounds = opts.quick ? 4 : 20;
  const int bulk_rounds = opts.quick ? 2 : 4;
  const Nanos bulk_per_round = (opts.quick ? 500 : 2'000) * kMs / bulk_rounds;

  TransportPath ours;
  PlainPath plain;
  ours.sink.latency_us.assign(frames, std::numeric_limits<double>::quiet_NaN());
  plain.sink.latency_us.assign(frames, std::numeric_limits<double>::quiet_NaN());
  ours.open();
  plain.open();
  sleep_until_ns(monotonic_ns() + 20 * kMs);  // let both receive threads reach their wait

  // Interleaved in an ABBA order, so a slow stretch of the shared VM lands on
  // both paths instead of biasing one of them.
  const std::uint32_t per_round = frames / static_cast<std::uint32_t>(rounds);
  std::fprintf(stderr, "net: latency, %u frames of %zu B at %.0f Hz per path\n", per_round * rounds,
               kPayloadBytes, 1e9 / static_cast<double>(period));
  for (int r = 0; r < rounds; ++r) {
    const auto first = static_cast<std::uint32_t>(r) * per_round;
    Path* order[2] = {&ours, &plain};
    if (r % 2 == 1) std::swap(order[0], order[1]);
    for (Path* p : order) latency_block(*p, first, per_round, period);
  }

  std::fprintf(stderr, "net: throughput, %.1f s per path\n",
               static_cast<double>(bulk_per_round * bulk_rounds) / 1e9);
  BulkResult ours_bulk, plain_bulk;
  for (int r = 0; r < bulk_rounds; ++r) {
    Path* order[2] = {&ours, &plain};
    if (r % 2 == 1) std::swap(order[0], order[1]);
    for (Path* p : order) {
      const BulkResult b = bulk_block(*p, bulk_per_round);
      BulkResult& acc = (p == &ours) ? ours_bulk : plain_bulk;
      acc.sent += b.sent;
      acc.delivered += b.delivered;
      acc.elapsed_ns += b.elapsed_ns;
    }
  }
  ours.stop();
  plain.stop();

  auto lost = [](const Sink& s, std::uint32_t n) {
    return static_cast<double>(std::count_if(s.latency_us.begin(), s.latency_us.begin() + n,
                                             [](double v) { return v != v; }));
  };
  const std::uint32_t n = per_round * static_cast<std::uint32_t>(rounds);
  const std::vector<double> ours_lat(ours.sink.latency_us.begin(),
                                     ours.sink.latency_us.begin() + n);
  const std::vector<double> plain_lat(plain.sink.latency_us.begin(),
                                      plain.sink.latency_us.begin() + n);
  out["net.oneway_p50_us"] = percentile_present(ours_lat, 0.50);
  out["net.oneway_p99_us"] = percentile_present(ours_lat, 0.99);
  out["net.baseline_oneway_p50_us"] = percentile_present(plain_lat, 0.50);
  out["net.baseline_oneway_p99_us"] = percentile_present(plain_lat, 0.99);
  // p90 sits below the stall-driven tail of a shared VM: a steadier view of the spread.
  out["net.oneway_p90_us"] = percentile_present(ours_lat, 0.90);
  out["net.baseline_oneway_p90_us"] = percentile_present(plain_lat, 0.90);
  out["net.oneway_p50_ratio_vs_baseline"] =
      out["net.oneway_p50_us"] / out["net.baseline_oneway_p50_us"];
  out["net.oneway_p99_ratio_vs_baseline"] =
      out["net.oneway_p99_us"] / out["net.baseline_oneway_p99_us"];
  out["net.oneway_frames"] = n;
  out["net.oneway_lost"] = lost(ours.sink, n);
  out["net.baseline_oneway_lost"] = lost(plain.sink, n);

  auto rate = [](const BulkResult& b) {
    return b.elapsed_ns > 0
               ? static_cast<double>(b.delivered) * 1e9 / static_cast<double>(b.elapsed_ns)
               : 0.0;
  };
  auto fraction = [](const BulkResult& b) {
    return b.sent > 0 ? static_cast<double>(b.delivered) / static_cast<double>(b.sent) : 0.0;
  };
  out["net.frames_per_s"] = rate(ours_bulk);
  out["net.baseline_frames_per_s"] = rate(plain_bulk);
  out["net.frames_per_s_ratio_vs_baseline"] =
      out["net.frames_per_s"] / out["net.baseline_frames_per_s"];
  out["net.frames_delivered_fraction"] = fraction(ours_bulk);
  out["net.baseline_frames_delivered_fraction"] = fraction(plain_bulk);
}

}  // namespace jamnet::bench
