// Which sessions this node has joined, who listens to which topic, and the
// sender-side sequence numbers. Shared by the transport's receive thread
// (dispatch, joined) and senders (next_sequence); never used on the audio
// thread. The receive thread's side takes no lock and allocates nothing: the
// joined sessions and the subscriptions are one Published table, replaced
// whole when they change.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/mpsc_queue.hpp"
#include "jamnet/core/published.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/core/wakeup.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/protocol/toast_frame.hpp"
#include "jamnet/protocol/topic.hpp"

namespace jamnet::net {

using protocol::Topic;

struct ReceivedFrame {
  const protocol::FrameView& frame;
  Endpoint from;
  bool via_multicast = false;
  Nanos kernel_rx_realtime_ns = 0;  // SO_TIMESTAMPNS, 0 if none
  Nanos rx_ns = 0;                  // CLOCK_MONOTONIC when read
};

using FrameHandler = std::function<void(const ReceivedFrame&)>;
using SubscriptionId = std::uint64_t;

// Where a subscription's handler runs.
enum class Delivery : std::uint8_t {
  // Media (audio, MIDI): on the transport's real-time receive thread, at once.
  // The handler keeps the real-time rules: no allocation, lock or file write
  // per frame.
  kReceiveThread,
  // Everything else (discovery, heartbeats, control, sync): the frame is
  // copied into a bounded queue and the handler runs on the registry's own
  // control thread, where it may allocate, lock and log.
  kControlThread,
};

struct RegistryStats {
  std::uint64_t deferred = 0;        // frames handed to the control thread
  std::uint64_t deferred_full = 0;   // ... dropped: its queue was full
  std::uint64_t deferred_large = 0;  // ... dropped: payload over kMaxDeferredPayload
  std::uint64_t seq_counters = 0;    // per-destination sequence counters held
  std::uint64_t seq_evicted = 0;     // ... forgotten to stay under kMaxSeqCounters
};

// Sequence counters (one per session, topic and destination) held at most;
// past that one is forgotten at random (its destination sees a fresh random
// start, as after a restart).
inline constexpr std::size_t kMaxSeqCounters = 4096;

// Control-plane payloads larger than this are dropped (and counted): the
// default datagram limit keeps them well under it.
inline constexpr std::size_t kMaxDeferredPayload = 4000;

// A frame on its way to the registry's control thread, payload copied.
struct DeferredFrame {
  protocol::FrameHeader header;
  Endpoint from;
  bool via_multicast = false;
  Nanos kernel_rx_realtime_ns = 0;
  Nanos rx_ns = 0;
  std::uint16_t size = 0;
  std::array<std::uint8_t, kMaxDeferredPayload> payload{};
};

class SessionRegistry {
 public:
  static constexpr std::size_t kDeferredQueue = 128;

  SessionRegistry();
  ~SessionRegistry();
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  void join(const Uuid& session);
  void leave(const Uuid& session);
  bool joined(const Uuid& session) const;

  // Handlers run on the transport's receive thread, a real-time thread: keep
  // them short, without allocation, locks or file writes per frame.
  // unsubscribe() returns once no dispatch can still call the handler (unless
  // it is called from inside one, as a handler may).
  SubscriptionId subscribe(const protocol::TopicPattern& pattern, FrameHandler handler,
                           Delivery delivery = Delivery::kControlThread);
  Result<SubscriptionId> subscribe(std::string_view topic_uri, FrameHandler handler,
                                   Delivery delivery = Delivery::kControlThread);
  void unsubscribe(SubscriptionId id);

  // Next sequence number for frames on `topic` to `destination`. Numbering is
  // per destination, so every receiver sees a gap-free stream when nothing is
  // lost, and starts at a random value so a restarted sender is recognised.
  std::uint32_t next_sequence(const Uuid& session, const Topic& topic, const Endpoint& destination);
  // A peer at `destination` is gone: its numbering goes (one that comes back
  // there starts at a new random value, as after a restart).
  void forget_destination(const Endpoint& destination);

  // Delivers to every matching handler: kReceiveThread ones now, the frame
  // queued once for the kControlThread ones. False when the session is not
  // joined. Allocates nothing and takes no lock.
  bool dispatch(const ReceivedFrame& rx) const;

  RegistryStats stats() const;
  // Stops the control thread; frames still queued for it are dropped. After
  // this no kControlThread handler runs. Also done by the destructor.
  void stop();

 private:
  struct Subscription {
    SubscriptionId id;
    protocol::TopicPattern pattern;
    std::shared_ptr<FrameHandler> handler;
    Delivery delivery = Delivery::kControlThread;
  };
  void control_loop();
  bool deliver(const ReceivedFrame& rx, Delivery delivery) const;
  using SeqKey = std::tuple<Uuid, std::uint8_t, std::uint16_t, std::uint32_t, std::uint16_t>;

  struct Table {
    std::vector<Uuid> sessions;
    std::vector<Subscription> subs;
  };
  Published<Table> table_;
  std::mutex id_mu_;
  SubscriptionId next_id_ = 1;
  // Sequence counters per (session, topic, destination), sorted by key: a
  // sender finds its counter without a lock; a new destination adds one.
  struct SeqEntry {
    SeqKey key;
    std::shared_ptr<std::atomic<std::uint32_t>> next;
  };
  struct SeqTable {
    std::vector<SeqEntry> entries;
  };
  Published<SeqTable> seqs_;
  std::mt19937 isn_rng_;  // under seqs_'s writer lock
  std::atomic<std::uint64_t> seq_evicted_{0};

  mutable MpscQueue<DeferredFrame> deferred_{kDeferredQueue};
  mutable Wakeup deferred_ready_;
  mutable std::atomic<std::uint64_t> n_deferred_{0}, n_full_{0}, n_large_{0};
  std::atomic<bool> running_{true};
  std::thread control_thread_;
};

}  // namespace jamnet::net
