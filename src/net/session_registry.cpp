#include "jamnet/net/session_registry.hpp"

#include <algorithm>
#include <memory>

namespace jamnet::net {

SessionRegistry::SessionRegistry() : isn_rng_(std::random_device{}()) {}

void SessionRegistry::join(const Uuid& session) {
  std::lock_guard lock(mu_);
  sessions_.insert(session);
}

void SessionRegistry::leave(const Uuid& session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
}

bool SessionRegistry::joined(const Uuid& session) const {
  std::lock_guard lock(mu_);
  return sessions_.contains(session);
}

SubscriptionId SessionRegistry::subscribe(const protocol::TopicPattern& pattern,
                                          FrameHandler handler) {
  std::lock_guard lock(mu_);
  const SubscriptionId id = next_id_++;
  subs_.push_back({id, pattern, std::make_shared<FrameHandler>(std::move(handler))});
  return id;
}

Result<SubscriptionId> SessionRegistry::subscribe(std::string_view topic_uri,
                                                  FrameHandler handler) {
  auto pattern = protocol::parse_topic_uri(topic_uri);
  if (!pattern) return std::unexpected(pattern.error());
  return subscribe(*pattern, std::move(handler));
}

void SessionRegistry::unsubscribe(SubscriptionId id) {
  std::lock_guard lock(mu_);
  std::erase_if(subs_, [id](const Subscription& s) { return s.id == id; });
}

std::uint32_t SessionRegistry::next_sequence(const Uuid& session, const Topic& topic,
                                             const Endpoint& dst) {
  std::lock_guard lock(mu_);
  const SeqKey key{session, static_cast<std::uint8_t>(topic.type), topic.index, dst.addr, dst.port};
  auto it = next_seq_.find(key);
  if (it == next_seq_.end())
    it = next_seq_.emplace(key, static_cast<std::uint32_t>(isn_rng_())).first;
  return it->second++;
}

void SessionRegistry::forget_destination(const Endpoint& dst) {
  std::lock_guard lock(mu_);
  std::erase_if(next_seq_, [&](const auto& kv) {
    return std::get<3>(kv.first) == dst.addr && std::get<4>(kv.first) == dst.port;
  });
}

bool SessionRegistry::dispatch(const ReceivedFrame& rx) const {
  // Collect handlers under the lock, call them outside it, so a handler may
  // send (next_sequence) or subscribe without deadlocking.
  thread_local std::vector<std::shared_ptr<FrameHandler>>
      targets;  // reused: no allocation per frame
  targets.clear();
  {
    std::lock_guard lock(mu_);
    const auto& h = rx.frame.header;
    if (!sessions_.contains(h.session_id)) return false;
    const Topic topic{h.stream_type, h.stream_index};
    for (const auto& s : subs_) {
      if (s.pattern.matches(h.session_id, topic)) targets.push_back(s.handler);
    }
  }
  auto local = std::move(targets);  // a handler may dispatch again on this thread
  for (const auto& handler : local) (*handler)(rx);
  local.clear();
  targets = std::move(local);
  return true;
}

}  // namespace jamnet::net
