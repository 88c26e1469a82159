// Which sessions this node has joined, who listens to which topic, and the
// sender-side sequence numbers. Shared by the transport's receive thread
// (dispatch) and senders (next_sequence); internally locked, never used on the
// audio thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
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

class SessionRegistry {
 public:
  SessionRegistry();

  void join(const Uuid& session);
  void leave(const Uuid& session);
  bool joined(const Uuid& session) const;

  // Handlers run on the transport's receive thread; keep them short.
  SubscriptionId subscribe(const protocol::TopicPattern& pattern, FrameHandler handler);
  Result<SubscriptionId> subscribe(std::string_view topic_uri, FrameHandler handler);
  void unsubscribe(SubscriptionId id);

  // Next sequence number for frames on `topic` to `destination`. Numbering is
  // per destination, so every receiver sees a gap-free stream when nothing is
  // lost, and starts at a random value so a restarted sender is recognised.
  std::uint32_t next_sequence(const Uuid& session, const Topic& topic, const Endpoint& destination);
  // A peer at `destination` is gone: its numbering goes (one that comes back
  // there starts at a new random value, as after a restart).
  void forget_destination(const Endpoint& destination);

  // Delivers to every matching handler. False when the session is not joined.
  bool dispatch(const ReceivedFrame& rx) const;

 private:
  struct Subscription {
    SubscriptionId id;
    protocol::TopicPattern pattern;
    std::shared_ptr<FrameHandler> handler;
  };
  using SeqKey = std::tuple<Uuid, std::uint8_t, std::uint16_t, std::uint32_t, std::uint16_t>;

  mutable std::mutex mu_;
  std::unordered_set<Uuid, UuidHash> sessions_;
  std::vector<Subscription> subs_;
  SubscriptionId next_id_ = 1;
  std::map<SeqKey, std::uint32_t> next_seq_;
  std::mt19937 isn_rng_;
};

}  // namespace jamnet::net
