// Two in-process peers of a fresh session, joined through a netsim relay on
// loopback: the set-up the link experiments (MIDI, audio) share.
#pragma once

#include <memory>

#include "jamnet/net/impairment.hpp"
#include "jamnet/net/netsim.hpp"
#include "jamnet/peer/peer.hpp"

namespace jamnet::detail {

struct LinkPair {
  std::unique_ptr<Peer> receiver;
  std::unique_ptr<net::Netsim> sim;
  std::unique_ptr<Peer> sender;  // connects to the relay, which forwards to the receiver
};

// `base` gives the streams (midi, audio); name, session, multicast and the
// discovery intervals are set here. Returns once both peers list each other.
Result<LinkPair> start_link_pair(PeerConfig base, const net::Impairment& link, std::uint64_t seed);

}  // namespace jamnet::detail
