#include "jamnet/net/transport.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "jamnet/core/rt_scope.hpp"
#include "jamnet/platform/realtime.hpp"

namespace jamnet::net {

namespace {
constexpr std::uint64_t kDataTag = 1;
constexpr std::uint64_t kGroupTag = 2;
constexpr std::uint64_t kWakeTag = 3;
constexpr std::size_t kMaxUdp = 65536;
}  // namespace

Transport::Transport(TransportConfig config, SessionRegistry& registry)
    : config_(std::move(config)),
      registry_(registry),
      rx_buffer_(kMaxUdp),
      gate_(config_.flood),
      sources_(std::max<std::size_t>(config_.max_sources, 1)),
      streams_(std::max<std::size_t>(config_.max_streams, 1)) {
  snap_sources_.reserve(sources_.capacity());
  snap_streams_.reserve(streams_.capacity());
  if (config_.keyed) {
    const auto& k = *config_.keyed;
    sealer_ = std::make_unique<protocol::Sealer>(k.key, k.self, k.incarnation, k.epoch_bits);
    opener_ = std::make_unique<protocol::Opener>(k.key);
    plain_.resize(kMaxUdp);
  }
}

std::size_t Transport::max_payload() const noexcept {
  const std::size_t datagram = std::clamp<std::size_t>(
      config_.limits.max_datagram, protocol::kFrameOverhead + protocol::kSealOverhead,
      protocol::kAbsoluteMaxDatagram);
  return datagram - protocol::kFrameOverhead - (sealer_ ? protocol::kSealOverhead : 0);
}

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
  if (!config.receive_thread) return t;  // the caller feeds receive(); readers serve themselves
  t->running_ = true;
  t->requests_.set_serving(true);
  t->thread_ = std::thread([raw = t.get()] { raw->receive_loop(); });
  return t;
}

bool Transport::receive(std::span<const std::uint8_t> bytes, const Endpoint& from,
                        bool via_multicast, Nanos rx_ns) {
  if (requests_.serving()) return false;
  // The tables are shared with readers, who take this lock when no thread serves.
  std::lock_guard lock(requests_.mutex());
  Datagram dg;
  dg.size = bytes.size();
  dg.from = from;
  dg.user_rx_ns = rx_ns;
  handle(bytes.first(std::min(bytes.size(), rx_buffer_.size())), dg, via_multicast);
  return true;
}

Transport::~Transport() {
  stop();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Transport::stop() {
  if (!running_.exchange(false)) return;
  wake();
  if (thread_.joinable()) thread_.join();
  {
    // What the thread did not get to: forgets queued since its last serve.
    std::lock_guard lock(requests_.mutex());
    drain_forgets_and_publish();
  }
  requests_.set_serving(false);  // the tables are the callers' now
}

// Once the thread has stopped, under the snapshot lock (the queue's one consumer).
void Transport::drain_forgets_and_publish() const {
  Endpoint from;
  auto* self = const_cast<Transport*>(this);  // the tables are ours: no thread serves them
  while (self->forget_requests_.try_pop(from)) self->apply_forget(from);
  publish_locked();
}

std::string describe(const SendFailure& f, std::size_t payload_size, const Endpoint& to,
                     const protocol::CodecLimits& limits) {
  if (f.kind == SendFailure::Kind::kEncode)
    return "cannot send " + std::to_string(payload_size) +
           "-byte payload: " + std::string(protocol::to_string(f.frame_error)) + " (limit " +
           std::to_string(limits.max_datagram) + "-byte datagrams)";
  return "send to " + to.to_string() + ": " + std::strerror(f.err);
}

std::expected<std::uint32_t, SendFailure> Transport::send_rt(const SendOptions& opts,
                                                             std::span<const std::uint8_t> payload,
                                                             const Endpoint& to) {
  protocol::FrameHeader h;
  h.stream_type = opts.topic.type;
  h.format_type = opts.format;
  h.message_kind = opts.kind;
  h.stream_index = opts.topic.index;
  h.timestamp_ns = opts.timestamp_ns.value_or(config_.session_clock());
  h.session_id = opts.session;
  if (opts.untracked) {
    // splitmix64 of a counter: distinct, unpredictable enough to not look
    // like a duplicate of the last untracked frame to the same address.
    static std::atomic<std::uint64_t> untracked_n{static_cast<std::uint64_t>(monotonic_ns())};
    std::uint64_t z = untracked_n.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    h.sequence = static_cast<std::uint32_t>(z ^ (z >> 31));
  } else {
    h.sequence = registry_.next_sequence(opts.session, opts.topic, to);
  }
  std::array<std::uint8_t, kMaxUdp> buf;
  const bool seal = sealer_ && opts.session == config_.keyed->session;
  auto n = seal ? protocol::encode_sealed_frame(h, payload, *sealer_, buf, config_.limits)
                : protocol::encode_frame(h, payload, buf, config_.limits);
  if (!n) {
    send_failures_.fetch_add(1, std::memory_order_relaxed);
    return std::unexpected(SendFailure{SendFailure::Kind::kEncode, n.error(), 0});
  }
  if (!data_.send_to({buf.data(), *n}, to)) {
    const int err = errno;
    send_failures_.fetch_add(1, std::memory_order_relaxed);
    return std::unexpected(SendFailure{SendFailure::Kind::kIo, {}, err});
  }
  frames_sent_.fetch_add(1, std::memory_order_relaxed);
  return h.sequence;
}

Result<std::uint32_t> Transport::send(const SendOptions& opts,
                                      std::span<const std::uint8_t> payload, const Endpoint& to) {
  auto sent = send_rt(opts, payload, to);
  if (sent) return *sent;
  return make_error(sent.error().kind == SendFailure::Kind::kEncode ? Errc::kTooLarge : Errc::kIo,
                    describe(sent.error(), payload.size(), to, config_.limits));
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
    // A reader's request not yet served (its snapshot lock was busy): look
    // again in a millisecond rather than at the next datagram.
    const bool pending = requests_.pending();
    const int n =
        ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), pending ? 1 : 200);
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kDataTag:
          drain(data_, false);
          break;
        case kGroupTag:
          drain(*group_, true);
          break;
        default: {  // wake: a reader's request, or stop
          std::uint64_t count = 0;
          [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
          break;
        }
      }
    }
    serve_requests();
  }
}

void Transport::drain(UdpSocket& sock, bool via_multicast) {
  Datagram dg;
  while (sock.receive(rx_buffer_, dg)) {
    handle({rx_buffer_.data(), dg.truncated ? rx_buffer_.size() : dg.size}, dg, via_multicast);
    // Between datagrams: a flood must not keep a reader waiting.
    if (requests_.pending()) serve_requests();
  }
}

namespace {

// The entry for `key`; when the table is full, the entry heard from longest
// ago among 32 sampled makes room (counted in `evicted`): a flood of spoofed
// sources costs each datagram a bounded look, not a scan of the table.
template <class Map, class Key>
auto* entry_evicting_oldest(Map& map, const Key& key, std::uint64_t& evicted) {
  if (auto* v = map.try_emplace(key)) return v;
  if (map.evict_sampled(32, [](const auto& v) { return v.last_rx_ns; })) ++evicted;
  return map.try_emplace(key);
}

}  // namespace

std::size_t Transport::StreamKeyHash::operator()(const StreamKey& k) const noexcept {
  const auto& [addr, port, mc, session, type, index] = k;
  std::uint64_t h = UuidHash{}(session);
  h ^= (static_cast<std::uint64_t>(addr) << 32 | static_cast<std::uint64_t>(port) << 16 |
        static_cast<std::uint64_t>(type) << 8 | (mc ? 1u : 0u)) +
       0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return static_cast<std::size_t>(h ^ (static_cast<std::uint64_t>(index) << 40));
}

void Transport::handle(std::span<const std::uint8_t> bytes, const Datagram& dg,
                       bool via_multicast) {
  const rt::Scope scope(rt::Work::kReceive);
  ++totals_.datagrams_received;
  if (via_multicast && dg.from == data_.local()) {  // our own group frame, looped back
    ++totals_.own_multicast_ignored;
    return;
  }
  // A source not verified yet is looked at within the flood gate's budget
  // only, and gets per-source state only then.
  auto* src = sources_.find(dg.from);
  if ((src == nullptr || !src->verified) && !gate_.admit(dg.from.addr, dg.user_rx_ns)) {
    ++totals_.flood_dropped;
    return;
  }
  if (src == nullptr) src = entry_evicting_oldest(sources_, dg.from, totals_.sources_evicted);
  src->stats.from = dg.from;
  src->last_rx_ns = dg.user_rx_ns;
  ++src->stats.datagrams;
  const auto decoded = protocol::decode_frame(bytes, config_.limits);
  if (!decoded) {
    src->stats.errors.add(decoded.error());
    totals_.errors.add(decoded.error());
    (decoded.error() == protocol::FrameError::kCrcMismatch ? src->stats.corrupt
                                                           : src->stats.malformed)++;
    return;
  }
  const auto& h = decoded->header;
  if (!registry_.joined(h.session_id)) {
    ++src->stats.foreign_session;
    return;
  }
  // A keyed session's frame counts only once it opens: before that it gets
  // no per-stream state, and a replay is dropped here (the opener counts).
  std::optional<protocol::FrameView> opened;
  if (opener_ && h.session_id == config_.keyed->session) {
    const auto n = opener_->open(bytes.first(protocol::kHeaderSize), decoded->payload, plain_);
    if (!n) return;
    opened = protocol::FrameView{h, {plain_.data(), *n}};
  }
  src->verified = true;
  const protocol::FrameView& view = opened ? *opened : *decoded;
  const StreamKey key{dg.from.addr,
                      dg.from.port,
                      via_multicast,
                      h.session_id,
                      static_cast<std::uint8_t>(h.stream_type),
                      h.stream_index};
  auto* st = entry_evicting_oldest(streams_, key, totals_.streams_evicted);
  st->bytes += bytes.size();
  st->last_rx_ns = dg.user_rx_ns;
  if (st->tracker.on_frame(h.sequence) != SequenceTracker::Verdict::kNew)
    return;  // duplicate or stale
  ++totals_.frames_delivered;
  const ReceivedFrame rx{view, dg.from, via_multicast, dg.kernel_rx_realtime_ns, dg.user_rx_ns};
  registry_.dispatch(rx);
}

// ---- readers -------------------------------------------------------------------

void Transport::apply_forget(const Endpoint& from) {
  sources_.erase(from);
  streams_.erase_if([&](const StreamKey& k, const StreamState&) {
    return std::get<0>(k) == from.addr && std::get<1>(k) == from.port;
  });
}

void Transport::serve_requests() {
  Endpoint from;
  while (forget_requests_.try_pop(from)) apply_forget(from);
  // Never waits: while a reader copies the last snapshot, the next datagram
  // or wake tries again.
  requests_.serve([this] { publish_locked(); });
}

void Transport::publish_locked() const {
  // Into capacity reserved at start: no allocation on the receive thread.
  snap_sources_.clear();
  sources_.for_each(
      [&](const Endpoint&, const SourceState& s) { snap_sources_.push_back(s.stats); });
  snap_streams_.clear();
  streams_.for_each([&](const StreamKey& key, const StreamState& st) {
    const auto& [addr, port, mc, session, type, index] = key;
    snap_streams_.push_back({Endpoint{addr, port}, session,
                             Topic{static_cast<protocol::StreamType>(type), index}, mc,
                             st.tracker.counts(), st.bytes, st.last_rx_ns});
  });
  snap_totals_ = totals_;
  if (opener_) {
    const auto& c = opener_->counts();
    snap_totals_.keyed_opened = c.opened;
    snap_totals_.keyed_failed = c.failed + c.malformed;
    snap_totals_.keyed_replayed = c.replayed;
    snap_totals_.keyed_bad_epoch = c.bad_epoch;
    snap_totals_.keyed_stale = c.stale;
    snap_totals_.keyed_senders_evicted = c.evicted;
  }
}

void Transport::wake() const {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void Transport::forget(const Endpoint& from) {
  if (!requests_.serving()) {
    std::lock_guard lock(requests_.mutex());
    apply_forget(from);
    return;
  }
  bool queued = false;
  while (!(queued = forget_requests_.try_push(from)) && requests_.serving())
    sleep_until_ns(monotonic_ns() + 100'000);
  if (!queued) {  // the thread stopped while the queue was full
    std::lock_guard lock(requests_.mutex());
    apply_forget(from);
    return;
  }
  // Served after the forget: the figures are gone on return.
  requests_.read_fresh([this] { wake(); }, [this] { drain_forgets_and_publish(); }, [] {});
}

std::vector<StreamStats> Transport::stream_stats() const {
  std::vector<StreamStats> out;
  requests_.read_fresh([this] { wake(); }, [this] { drain_forgets_and_publish(); },
                       [&] { out = snap_streams_; });
  return out;
}

std::vector<SourceStats> Transport::source_stats() const {
  std::vector<SourceStats> out;
  requests_.read_fresh([this] { wake(); }, [this] { drain_forgets_and_publish(); },
                       [&] { out = snap_sources_; });
  return out;
}

TransportTotals Transport::totals() const {
  TransportTotals t;
  requests_.read_fresh([this] { wake(); }, [this] { drain_forgets_and_publish(); },
                       [&] { t = snap_totals_; });
  t.frames_sent = frames_sent_.load();
  t.send_failures = send_failures_.load();
  return t;
}

}  // namespace jamnet::net
