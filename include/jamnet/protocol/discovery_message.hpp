// Payloads of DISCOVERY and HEARTBEAT frames (format BINARY, big-endian).
// docs/protocol.md gives the byte layouts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"

namespace jamnet::protocol {

// message_kind values of the DISCOVERY stream.
enum class DiscoveryKind : std::uint16_t { kAnnounce = 1, kBye = 2 };
// message_kind values of the HEARTBEAT stream.
enum class HeartbeatKind : std::uint16_t { kPing = 1, kPong = 2 };

inline constexpr std::size_t kMaxPeerNameBytes = 64;

// "I am here": sent to the multicast group and to unicast targets.
struct Announce {
  Uuid peer_id;
  std::uint64_t incarnation = 0;  // changes when the peer process restarts
  std::string name;               // at most kMaxPeerNameBytes bytes
};

// "I am leaving": sent on a clean stop so others drop us at once.
struct Bye {
  Uuid peer_id;
  std::uint64_t incarnation = 0;
};

// NTP-style timestamps: t1 sender's send time, t2 responder's receive time,
// t3 responder's send time (each on its own clock). RTT = (t4 - t1) - (t3 - t2).
struct Ping {
  Uuid peer_id;
  std::uint32_t ping_id = 0;
  std::int64_t t1_ns = 0;
};

struct Pong {
  Uuid peer_id;  // the responder
  std::uint32_t ping_id = 0;
  std::int64_t t1_ns = 0;
  std::int64_t t2_ns = 0;
  std::int64_t t3_ns = 0;
};

std::vector<std::uint8_t> encode(const Announce& m);
std::vector<std::uint8_t> encode(const Bye& m);
std::vector<std::uint8_t> encode(const Ping& m);
std::vector<std::uint8_t> encode(const Pong& m);

Result<Announce> decode_announce(std::span<const std::uint8_t> payload);
Result<Bye> decode_bye(std::span<const std::uint8_t> payload);
Result<Ping> decode_ping(std::span<const std::uint8_t> payload);
Result<Pong> decode_pong(std::span<const std::uint8_t> payload);

}  // namespace jamnet::protocol
