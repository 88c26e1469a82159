#include "jamnet/net/netsim.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "jamnet/core/log.hpp"
#include "jamnet/core/round.hpp"
#include "jamnet/net/udp_socket.hpp"
#include "jamnet/platform/realtime.hpp"

#include "errno_text.hpp"

namespace jamnet::net {

namespace {

constexpr std::size_t kMaxDatagram = 65536;  // IPv4 UDP payload tops out at 65507
// Bounds the relay's memory when a long delay meets a fast sender; beyond it
// datagrams count as dropped_queue.
constexpr std::size_t kMaxPending = 1 << 16;
// Datagrams taken from one socket before the other gets a turn.
constexpr int kReceiveBatch = 64;

enum Dir : std::uint8_t { kForward = 0, kReverse = 1 };

// Tags in epoll_event.data.u32.
enum : std::uint32_t { kTagListen, kTagUpstream, kTagTimer, kTagWake };

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

struct Counters {
  NetsimDirectionStats stats;
  double delay_sum_ms = 0.0;
};

// A datagram waiting for its release time. `seq` keeps equal times in arrival order.
struct Pending {
  Nanos release = 0;
  std::uint64_t seq = 0;
  Nanos delay = 0;
  std::uint32_t slot = 0;
  Dir dir = kForward;
  Endpoint to;
};

// Min-heap order for std::push_heap / pop_heap.
bool later(const Pending& a, const Pending& b) noexcept {
  return a.release != b.release ? a.release > b.release : a.seq > b.seq;
}

void add_direction(nlohmann::ordered_json& j, const std::string& prefix,
                   const NetsimDirectionStats& s) {
  const auto add = [&](const char* name, auto v) { j[prefix + '.' + name] = v; };
  add("received", s.received);
  add("forwarded", s.forwarded);
  add("dropped_loss", s.dropped_loss);
  add("dropped_queue", s.dropped_queue);
  add("dropped_send", s.dropped_send);
  add("duplicated", s.duplicated);
  add("corrupted", s.corrupted);
  add("reordered", s.reordered);
  add("delayed_ms_mean", round_decimals(s.delayed_ms_mean, 3));
  add("bytes_in", s.bytes_in);
  add("bytes_out", s.bytes_out);
}

}  // namespace

nlohmann::ordered_json NetsimReport::to_json_value() const {
  nlohmann::ordered_json j = {{"listen", listen.to_string()},
                              {"upstream", upstream.to_string()},
                              {"target", target.to_string()},
                              {"client", nullptr}};
  if (client) j["client"] = client->to_string();
  j["seed"] = seed;
  j["elapsed_s"] = round_decimals(elapsed_s, 3);
  j["ignored"] = ignored;
  add_direction(j, "forward", forward);
  add_direction(j, "reverse", reverse);
  return j;
}

std::string NetsimReport::to_json() const {
  return to_json_value().dump();
}

struct Netsim::Impl {
  NetsimConfig config;
  UdpSocket listen;
  UdpSocket upstream;
  int epoll_fd = -1;
  int timer_fd = -1;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  // Relay thread only.
  std::array<ImpairmentModel, 2> models;
  std::vector<Pending> heap;
  // Packet buffers are recycled through free_slots: after warm-up a datagram
  // costs a copy, not an allocation.
  std::vector<std::vector<std::uint8_t>> buffers;
  std::vector<std::uint32_t> free_slots;
  std::vector<std::uint8_t> scratch = std::vector<std::uint8_t>(kMaxDatagram);
  std::uint64_t next_seq = 0;
  Nanos timer_armed_for = 0;  // 0 = disarmed

  // Written by the relay thread under `mutex`, read by report().
  mutable std::mutex mutex;
  std::optional<Endpoint> client;
  std::array<Counters, 2> counters{};
  std::uint64_t ignored = 0;
  Nanos started_ns = 0;
  Nanos stopped_ns = 0;

  explicit Impl(const NetsimConfig& c)
      : config(c),
        models{ImpairmentModel(c.forward, c.seed, kForward),
               ImpairmentModel(c.reverse, c.seed, kReverse)} {
    heap.reserve(1024);
  }

  ~Impl() {
    close_fd(epoll_fd);
    close_fd(timer_fd);
    close_fd(wake_fd);
  }

  void run() {
    std::array<epoll_event, 4> events{};
    while (!stopping.load(std::memory_order_acquire)) {
      arm_timer();
      const int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        log::error("netsim: " + errno_text("epoll_wait"));
        return;
      }
      for (int i = 0; i < n; ++i) {
        switch (events[static_cast<std::size_t>(i)].data.u32) {
          case kTagListen:
            drain(listen, kForward);
            break;
          case kTagUpstream:
            drain(upstream, kReverse);
            break;
          case kTagTimer: {
            std::uint64_t expirations = 0;
            if (::read(timer_fd, &expirations, sizeof expirations) > 0) timer_armed_for = 0;
            break;
          }
          default:
            break;  // wake: the loop condition sees `stopping`
        }
      }
      release_due(monotonic_ns());
    }
  }

  void drain(UdpSocket& sock, Dir dir) {
    Datagram d;
    for (int i = 0; i < kReceiveBatch && sock.receive(scratch, d); ++i) {
      on_datagram(std::span<std::uint8_t>(scratch.data(), d.size), d, dir);
    }
  }

  void on_datagram(std::span<std::uint8_t> data, const Datagram& d, Dir dir) {
    Endpoint to = config.target;
    if (dir == kForward) {
      if (client != d.from) {
        std::lock_guard lock(mutex);
        client = d.from;
      }
    } else {
      // Only the target may talk back: anyone else would turn this into an open relay.
      if (d.from != config.target) {
        std::lock_guard lock(mutex);
        ++ignored;
        return;
      }
    }

    std::lock_guard lock(mutex);
    NetsimDirectionStats& s = counters[dir].stats;
    ++s.received;
    s.bytes_in += data.size();
    if (dir == kReverse) {
      if (!client) {
        ++s.dropped_send;
        return;
      }
      to = *client;
    }
    const Fate fate = models[dir].decide(data.size(), d.user_rx_ns);
    if (fate.drop == DropReason::kLoss) {
      ++s.dropped_loss;
      return;
    }
    if (fate.drop == DropReason::kQueue || heap.size() + fate.copies > kMaxPending) {
      ++s.dropped_queue;
      return;
    }
    if (fate.copies == 2) ++s.duplicated;
    if (fate.reordered) ++s.reordered;
    for (std::uint8_t copy = 0; copy < fate.copies; ++copy) {
      const std::uint32_t slot = take_slot();
      auto& buf = buffers[slot];
      buf.assign(data.begin(), data.end());
      if (copy == 0 && fate.corrupt) {
        buf[fate.corrupt_byte] ^= static_cast<std::uint8_t>(1u << fate.corrupt_bit);
        ++s.corrupted;
      }
      heap.push_back(Pending{d.user_rx_ns + fate.release_after[copy], next_seq++,
                             fate.release_after[copy], slot, dir, to});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }

  std::uint32_t take_slot() {
    if (free_slots.empty()) {
      buffers.emplace_back();
      return static_cast<std::uint32_t>(buffers.size() - 1);
    }
    const std::uint32_t slot = free_slots.back();
    free_slots.pop_back();
    return slot;
  }

  void release_due(Nanos now) {
    while (!heap.empty() && heap.front().release <= now) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Pending p = heap.back();
      heap.pop_back();
      UdpSocket& out = p.dir == kForward ? upstream : listen;
      const auto& buf = buffers[p.slot];
      {
        // Held across the (non-blocking) send: a receiver that got the
        // datagram and then asks for report() sees it counted.
        std::lock_guard lock(mutex);
        NetsimDirectionStats& s = counters[p.dir].stats;
        if (out.send_to(buf, p.to)) {
          ++s.forwarded;
          s.bytes_out += buf.size();
          counters[p.dir].delay_sum_ms += static_cast<double>(p.delay) / 1e6;
        } else {
          ++s.dropped_send;
        }
      }
      free_slots.push_back(p.slot);
    }
  }

  // One-shot absolute timer at the earliest release; re-armed only when that changes.
  void arm_timer() {
    const Nanos want = heap.empty() ? 0 : heap.front().release;
    if (want == timer_armed_for) return;
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(want / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(want % 1'000'000'000);
    ::timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, nullptr);
    timer_armed_for = want;
  }
};

Netsim::Netsim(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Netsim::~Netsim() {
  stop();
}

Result<std::unique_ptr<Netsim>> Netsim::start(const NetsimConfig& config) {
  if (config.target.is_any() || config.target.port == 0) {
    return make_error(Errc::kInvalidArgument, "netsim target must name a host and a port, got " +
                                                  config.target.to_string());
  }
  auto impl = std::make_unique<Impl>(config);
  // Large buffers: a burst must not be lost in the kernel before the relay
  // decides its fate (the kernel caps them at net.core.[rw]mem_max).
  UdpOptions opts;
  opts.kernel_timestamps = false;
  opts.rcvbuf_bytes = 4 << 20;
  opts.sndbuf_bytes = 4 << 20;
  auto listen = UdpSocket::bind(config.listen, opts);
  if (!listen) return std::unexpected(listen.error());
  if (listen->local() == config.target) {
    return make_error(Errc::kInvalidArgument,
                      "netsim target is its own listen address " + config.target.to_string());
  }
  auto upstream =
      UdpSocket::bind(config.upstream_bind.value_or(Endpoint{config.listen.addr, 0}), opts);
  if (!upstream) return std::unexpected(upstream.error());
  impl->listen = std::move(*listen);
  impl->upstream = std::move(*upstream);

  impl->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl->timer_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->epoll_fd < 0 || impl->timer_fd < 0 || impl->wake_fd < 0) {
    return make_error(Errc::kIo, errno_text("netsim epoll/timerfd/eventfd"));
  }
  const std::array<std::pair<int, std::uint32_t>, 4> watched{{{impl->listen.fd(), kTagListen},
                                                              {impl->upstream.fd(), kTagUpstream},
                                                              {impl->timer_fd, kTagTimer},
                                                              {impl->wake_fd, kTagWake}}};
  for (const auto& [fd, tag] : watched) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = tag;
    if (::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      return make_error(Errc::kIo, errno_text("netsim epoll_ctl"));
    }
  }
  impl->started_ns = monotonic_ns();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    // Simulated delays are only as exact as this thread's wake-ups: run it at
    // real-time priority where allowed, so busy normal threads cannot add
    // milliseconds of jitter nobody asked for.
    platform::make_current_thread_realtime();
    raw->run();
  });
  return std::unique_ptr<Netsim>(new Netsim(std::move(impl)));
}

void Netsim::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->stopping.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(impl_->wake_fd, &one, sizeof one);
  impl_->thread.join();
  std::lock_guard lock(impl_->mutex);
  impl_->stopped_ns = monotonic_ns();
}

Endpoint Netsim::listen_endpoint() const noexcept {
  return impl_->listen.local();
}

Endpoint Netsim::upstream_endpoint() const noexcept {
  return impl_->upstream.local();
}

NetsimReport Netsim::report() const {
  const Impl& im = *impl_;
  NetsimReport r;
  r.listen = im.listen.local();
  r.upstream = im.upstream.local();
  r.target = im.config.target;
  r.seed = im.config.seed;
  std::lock_guard lock(im.mutex);
  r.client = im.client;
  r.ignored = im.ignored;
  r.elapsed_s =
      static_cast<double>((im.stopped_ns ? im.stopped_ns : monotonic_ns()) - im.started_ns) / 1e9;
  const auto snapshot = [](const Counters& c) {
    NetsimDirectionStats s = c.stats;
    s.delayed_ms_mean = s.forwarded ? c.delay_sum_ms / static_cast<double>(s.forwarded) : 0.0;
    return s;
  };
  r.forward = snapshot(im.counters[kForward]);
  r.reverse = snapshot(im.counters[kReverse]);
  return r;
}

}  // namespace jamnet::net
