#include "link_pair.hpp"

#include <chrono>
#include <thread>

namespace jamnet::detail {

Result<LinkPair> start_link_pair(PeerConfig base, const net::Impairment& link, std::uint64_t seed) {
  LinkPair p;
  base.name = "receiver";
  base.session = Uuid::random();
  base.multicast.reset();
  // The lossy link carries discovery too: announce often and be slow to give
  // up on a peer, so a lossy run measures the stream, not peer timeouts.
  base.announce_interval_ns = 100'000'000;
  base.peer_timeout_ns = 10'000'000'000;
  auto receiver = Peer::start(base);
  if (!receiver) return std::unexpected(receiver.error());
  p.receiver = std::move(*receiver);

  net::NetsimConfig nc;
  nc.listen = net::Endpoint::loopback(0);
  nc.target = p.receiver->local();
  nc.forward = link;
  nc.reverse = link;
  nc.seed = seed;
  auto sim = net::Netsim::start(nc);
  if (!sim) return std::unexpected(sim.error());
  p.sim = std::move(*sim);

  base.name = "sender";
  base.connect = {p.sim->listen_endpoint()};
  auto sender = Peer::start(base);
  if (!sender) return std::unexpected(sender.error());
  p.sender = std::move(*sender);

  // Discovery crosses the lossy link too; give it time, it repeats. Ready
  // when each sends to the other: a route waits for the first pong (both
  // ends have proven each other's address), a few pings at high loss.
  const Nanos end = monotonic_ns() + 10'000'000'000;
  while (p.sender->discovery().routes().empty() || p.receiver->discovery().routes().empty()) {
    if (monotonic_ns() > end)
      return make_error(Errc::kTimeout, "peers did not find each other through netsim");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return p;
}

}  // namespace jamnet::detail
