#include "jamnet/net/transport.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "jamnet/platform/realtime.hpp"

namespace jamnet::net {

namespace {
constexpr std::uint64_t kDataTag = 1;
constexpr std::uint64_t kGroupTag = 2;
constexpr std::uint64_t kWakeTag = 3;
constexpr std::size_t kMaxUdp = 65536;
}  // namespace

Transport::Transport(TransportConfig config, SessionRegistry& registry)
    : config_(std::move(config)), registry_(registry), rx_buffer_(kMaxUdp) {}

Result<std::unique_ptr<Transport>> Transport::start(const TransportConfig& config,
                                                    SessionRegistry& registry) {
  std::unique_ptr<Transport> t(new Transport(config, registry));
  auto data = UdpSocket::bind(config.bind);
  if (!data) return std::unexpected(data.error());
  t->data_ = std::move(*data);

  if (config.multicast) {
    if (!config.multicast->is_multicast()) {
      return make_error(Errc::kInvalidArgument, "multicast group " + config.multicast->to_string() +
                                                    " is not in 224.0.0.0/4");
    }
    const std::uint32_t iface = config.multicast_iface.value_or(config.bind.addr);
    UdpOptions opts;
    opts.reuse = true;  // every node on this host listens on the same group port
    auto group = UdpSocket::bind(Endpoint{config.multicast->addr, config.multicast->port}, opts);
    if (!group) return std::unexpected(group.error());
    if (auto r = group->join_multicast(*config.multicast, iface); !r)
      return std::unexpected(r.error());
    // Group frames leave from the data socket, so their source address is the
    // node's unicast address and replies come straight back to it.
    if (auto r = t->data_.set_multicast_out(iface); !r) return std::unexpected(r.error());
    t->group_ = std::move(*group);
  }

  t->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  t->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (t->epoll_fd_ < 0 || t->wake_fd_ < 0)
    return make_error(Errc::kIo, std::string("epoll: ") + std::strerror(errno));
  auto add = [&](int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return ::epoll_ctl(t->epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  if (!add(t->data_.fd(), kDataTag) || (t->group_ && !add(t->group_->fd(), kGroupTag)) ||
      !add(t->wake_fd_, kWakeTag)) {
    return make_error(Errc::kIo, std::string("epoll_ctl: ") + std::strerror(errno));
  }
  t->running_ = true;
  t->thread_ = std::thread([raw = t.get()] { raw->receive_loop(); });
  return t;
}

Transport::~Transport() {
  stop();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Transport::stop() {
  if (!running_.exchange(false)) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

Result<std::uint32_t> Transport::send(const SendOptions& opts,
                                      std::span<const std::uint8_t> payload, const Endpoint& to) {
  protocol::FrameHeader h;
  h.stream_type = opts.topic.type;
  h.format_type = opts.format;
  h.message_kind = opts.kind;
  h.stream_index = opts.topic.index;
  h.timestamp_ns = opts.timestamp_ns.value_or(config_.session_clock());
  h.session_id = opts.session;
  h.sequence = registry_.next_sequence(opts.session, opts.topic, to);
  std::array<std::uint8_t, kMaxUdp> buf;
  auto n = protocol::encode_frame(h, payload, buf, config_.limits);
  if (!n) {
    send_failures_.fetch_add(1, std::memory_order_relaxed);
    return make_error(Errc::kTooLarge,
                      "cannot send " + std::to_string(payload.size()) + "-byte payload: " +
                          std::string(protocol::to_string(n.error())) + " (limit " +
                          std::to_string(config_.limits.max_datagram) + "-byte datagrams)");
  }
  if (!data_.send_to({buf.data(), *n}, to)) {
    send_failures_.fetch_add(1, std::memory_order_relaxed);
    return make_error(Errc::kIo, "send to " + to.to_string() + ": " + std::strerror(errno));
  }
  frames_sent_.fetch_add(1, std::memory_order_relaxed);
  return h.sequence;
}

Result<std::uint32_t> Transport::send_to_group(const SendOptions& opts,
                                               std::span<const std::uint8_t> payload) {
  if (!config_.multicast) return make_error(Errc::kUnsupported, "multicast is off for this node");
  return send(opts, payload, *config_.multicast);
}

void Transport::receive_loop() {
  // The network thread is on the audio path (frames go from here into jitter
  // buffers): below the audio thread, above everything else. A no-op without
  // the privilege, or with JAMNET_NO_REALTIME=1.
  platform::make_current_thread_realtime(1);
  std::array<epoll_event, 4> events;
  while (running_.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kDataTag:
          drain(data_, false);
          break;
        case kGroupTag:
          drain(*group_, true);
          break;
        default:
          break;  // wake: the loop condition decides
      }
    }
  }
}

void Transport::drain(UdpSocket& sock, bool via_multicast) {
  Datagram dg;
  while (sock.receive(rx_buffer_, dg)) {
    handle({rx_buffer_.data(), dg.truncated ? rx_buffer_.size() : dg.size}, dg, via_multicast);
  }
}

void Transport::handle(std::span<const std::uint8_t> bytes, const Datagram& dg,
                       bool via_multicast) {
  const protocol::FrameView* frame = nullptr;
  std::expected<protocol::FrameView, protocol::FrameError> decoded;
  {
    std::lock_guard lock(stats_mu_);
    ++totals_.datagrams_received;
    if (via_multicast && dg.from == data_.local()) {  // our own group frame, looped back
      ++totals_.own_multicast_ignored;
      return;
    }
    auto& src = sources_[dg.from];
    src.from = dg.from;
    ++src.datagrams;
    decoded = protocol::decode_frame(bytes, config_.limits);
    if (!decoded) {
      src.errors.add(decoded.error());
      totals_.errors.add(decoded.error());
      (decoded.error() == protocol::FrameError::kCrcMismatch ? src.corrupt : src.malformed)++;
      return;
    }
    const auto& h = decoded->header;
    if (!registry_.joined(h.session_id)) {
      ++src.foreign_session;
      return;
    }
    const StreamKey key{dg.from.addr,
                        dg.from.port,
                        via_multicast,
                        h.session_id,
                        static_cast<std::uint8_t>(h.stream_type),
                        h.stream_index};
    auto& st = streams_[key];
    st.bytes += bytes.size();
    st.last_rx_ns = dg.user_rx_ns;
    if (st.tracker.on_frame(h.sequence) != SequenceTracker::Verdict::kNew)
      return;  // duplicate or stale
    ++totals_.frames_delivered;
    frame = &*decoded;
  }
  const ReceivedFrame rx{*frame, dg.from, via_multicast, dg.kernel_rx_realtime_ns, dg.user_rx_ns};
  registry_.dispatch(rx);
}

void Transport::forget(const Endpoint& from) {
  std::lock_guard lock(stats_mu_);
  sources_.erase(from);
  std::erase_if(streams_, [&](const auto& kv) {
    return std::get<0>(kv.first) == from.addr && std::get<1>(kv.first) == from.port;
  });
}

std::vector<StreamStats> Transport::stream_stats() const {
  std::lock_guard lock(stats_mu_);
  std::vector<StreamStats> out;
  out.reserve(streams_.size());
  for (const auto& [key, st] : streams_) {
    const auto& [addr, port, mc, session, type, index] = key;
    out.push_back({Endpoint{addr, port}, session,
                   Topic{static_cast<protocol::StreamType>(type), index}, mc, st.tracker.counts(),
                   st.bytes, st.last_rx_ns});
  }
  return out;
}

std::vector<SourceStats> Transport::source_stats() const {
  std::lock_guard lock(stats_mu_);
  std::vector<SourceStats> out;
  out.reserve(sources_.size());
  for (const auto& [ep, s] : sources_) out.push_back(s);
  return out;
}

TransportTotals Transport::totals() const {
  std::lock_guard lock(stats_mu_);
  TransportTotals t = totals_;
  t.frames_sent = frames_sent_.load();
  t.send_failures = send_failures_.load();
  return t;
}

}  // namespace jamnet::net
