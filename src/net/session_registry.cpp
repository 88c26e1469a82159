#include "jamnet/net/session_registry.hpp"

#include <algorithm>
#include <ctime>
#include <memory>

#include "jamnet/core/log.hpp"

namespace jamnet::net {

SessionRegistry::SessionRegistry() : isn_rng_(std::random_device{}()) {
  control_thread_ = std::thread([this] { control_loop(); });
}

SessionRegistry::~SessionRegistry() {
  stop();
}

void SessionRegistry::stop() {
  if (!running_.exchange(false)) return;
  deferred_ready_.post();
  if (control_thread_.joinable()) control_thread_.join();
}

namespace {
// The registry whose handlers this thread is running, and how many of its
// tables the thread has pinned (a handler's unsubscribe waits for the others).
thread_local const SessionRegistry* t_registry = nullptr;
thread_local int t_pins = 0;
}  // namespace

void SessionRegistry::join(const Uuid& session) {
  table_.update([&](Table& t) {
    if (std::find(t.sessions.begin(), t.sessions.end(), session) == t.sessions.end())
      t.sessions.push_back(session);
  });
}

void SessionRegistry::leave(const Uuid& session) {
  table_.update([&](Table& t) { std::erase(t.sessions, session); });
}

bool SessionRegistry::joined(const Uuid& session) const {
  const auto t = table_.read();
  return std::find(t->sessions.begin(), t->sessions.end(), session) != t->sessions.end();
}

SubscriptionId SessionRegistry::subscribe(const protocol::TopicPattern& pattern,
                                          FrameHandler handler, Delivery delivery) {
  SubscriptionId id = 0;
  {
    std::lock_guard lock(id_mu_);
    id = next_id_++;
  }
  auto h = std::make_shared<FrameHandler>(std::move(handler));
  table_.update([&](Table& t) { t.subs.push_back({id, pattern, std::move(h), delivery}); });
  return id;
}

Result<SubscriptionId> SessionRegistry::subscribe(std::string_view topic_uri, FrameHandler handler,
                                                  Delivery delivery) {
  auto pattern = protocol::parse_topic_uri(topic_uri);
  if (!pattern) return std::unexpected(pattern.error());
  return subscribe(*pattern, std::move(handler), delivery);
}

void SessionRegistry::unsubscribe(SubscriptionId id) {
  table_.update([id](Table& t) {
    std::erase_if(t.subs, [id](const Subscription& s) { return s.id == id; });
  });
  // A dispatch that pinned the old table may still be calling the handler:
  // wait it out, so the caller may destroy what the handler uses (the
  // caller's own pins, when a handler unsubscribes, do not count).
  const int own = t_registry == this ? t_pins : 0;
  if (!table_.wait_for_readers(1'000'000'000, own))
    log::warn(
        "unsubscribe: a frame handler still ran after 1 s; its subscription is gone, "
        "but it may finish after this returns");
  table_.reclaim();
}

std::uint32_t SessionRegistry::next_sequence(const Uuid& session, const Topic& topic,
                                             const Endpoint& dst) {
  const SeqKey key{session, static_cast<std::uint8_t>(topic.type), topic.index, dst.addr, dst.port};
  const auto by_key = [](const SeqEntry& e, const SeqKey& k) { return e.key < k; };
  for (;;) {
    {
      const auto t = seqs_.read();
      const auto it = std::lower_bound(t->entries.begin(), t->entries.end(), key, by_key);
      if (it != t->entries.end() && it->key == key)
        return it->next->fetch_add(1, std::memory_order_relaxed);
    }
    // The first frame to this destination on this topic: a counter starting
    // at a random value (once; a racing sender finds it on the next look).
    seqs_.update([&](SeqTable& t) {
      const auto it = std::lower_bound(t.entries.begin(), t.entries.end(), key, by_key);
      if (it != t.entries.end() && it->key == key) return;
      if (t.entries.size() >= kMaxSeqCounters) {
        const auto victim = isn_rng_() % t.entries.size();
        t.entries.erase(t.entries.begin() + static_cast<std::ptrdiff_t>(victim));
        seq_evicted_.fetch_add(1, std::memory_order_relaxed);
        return;  // looked up again (the insert position moved)
      }
      t.entries.insert(it, {key, std::make_shared<std::atomic<std::uint32_t>>(
                                     static_cast<std::uint32_t>(isn_rng_()))});
    });
  }
}

void SessionRegistry::forget_destination(const Endpoint& dst) {
  seqs_.update([&](SeqTable& t) {
    std::erase_if(t.entries, [&](const SeqEntry& e) {
      return std::get<3>(e.key) == dst.addr && std::get<4>(e.key) == dst.port;
    });
  });
}

// Calls the handlers of `delivery` that match rx, with the table pinned while
// they run (one that subscribes or unsubscribes replaces it for the next
// frame). True when a handler of the other delivery matches too.
bool SessionRegistry::deliver(const ReceivedFrame& rx, Delivery delivery) const {
  const auto t = table_.read();
  const auto& h = rx.frame.header;
  const Topic topic{h.stream_type, h.stream_index};
  const SessionRegistry* outer = t_registry;
  const int outer_pins = t_pins;
  t_pins = outer == this ? t_pins + 1 : 1;
  t_registry = this;
  bool other = false;
  for (const auto& s : t->subs) {
    if (!s.pattern.matches(h.session_id, topic)) continue;
    if (s.delivery == delivery)
      (*s.handler)(rx);
    else
      other = true;
  }
  t_registry = outer;
  t_pins = outer_pins;
  return other;
}

bool SessionRegistry::dispatch(const ReceivedFrame& rx) const {
  const auto& h = rx.frame.header;
  if (!joined(h.session_id)) return false;
  // Media handlers now; one pass over the table also tells whether a
  // control-plane handler wants the frame.
  const bool defer = deliver(rx, Delivery::kReceiveThread);
  if (!defer) return true;
  if (rx.frame.payload.size() > kMaxDeferredPayload) {
    n_large_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Built in place in a thread-local slot: no allocation, nothing on the stack
  // the size of a payload.
  thread_local DeferredFrame d;
  d.header = h;
  d.from = rx.from;
  d.via_multicast = rx.via_multicast;
  d.kernel_rx_realtime_ns = rx.kernel_rx_realtime_ns;
  d.rx_ns = rx.rx_ns;
  d.size = static_cast<std::uint16_t>(rx.frame.payload.size());
  std::copy(rx.frame.payload.begin(), rx.frame.payload.end(), d.payload.begin());
  if (!deferred_.try_push(d)) {
    n_full_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  n_deferred_.fetch_add(1, std::memory_order_relaxed);
  deferred_ready_.post();
  return true;
}

void SessionRegistry::control_loop() {
  auto d = std::make_unique<DeferredFrame>();
  while (running_.load()) {
    (void)deferred_ready_.wait_for(100'000'000);
    while (running_.load(std::memory_order_relaxed) && deferred_.try_pop(*d)) {
      const protocol::FrameView view{d->header, {d->payload.data(), d->size}};
      const ReceivedFrame rx{view, d->from, d->via_multicast, d->kernel_rx_realtime_ns, d->rx_ns};
      (void)deliver(rx, Delivery::kControlThread);  // media frames were handled already
    }
  }
}

RegistryStats SessionRegistry::stats() const {
  RegistryStats st{n_deferred_.load(), n_full_.load(), n_large_.load()};
  st.seq_counters = seqs_.read()->entries.size();
  st.seq_evicted = seq_evicted_.load();
  return st;
}

}  // namespace jamnet::net
