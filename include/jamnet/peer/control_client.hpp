// Asking a running peer to act (transport, status, personal mix) over the
// session's control stream, as `jamnet transport` and `jamnet mix` do: a
// short-lived peer of the same session sends the request (resent every
// 250 ms: requests are idempotent by id) until the reply with its id comes
// back (docs/control.md).
#pragma once

#include <functional>
#include <optional>

#include "jamnet/core/result.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/peer/peer.hpp"
#include "jamnet/protocol/control.hpp"

namespace jamnet {

struct ControlAnswer {
  protocol::control::ReplyMsg reply;
  net::Endpoint peer;  // who answered
};

// `config` is the asking peer's (session, addresses; its name is set here).
// target: the peer to ask; nullopt: the peer named target_name, or (empty)
// the first one found. `cancelled` (may be
// empty) is polled, to give up early (Ctrl-C). kTimeout when nobody answered
// in wait_ns; kNotFound when no peer was found; kInvalidArgument (with the
// peer's words) when it refused the request as malformed.
Result<ControlAnswer> send_control_request(PeerConfig config,
                                           const protocol::control::RequestMsg& request,
                                           std::optional<net::Endpoint> target, Nanos wait_ns,
                                           const std::function<bool()>& cancelled = {},
                                           const std::string& target_name = {});

}  // namespace jamnet
