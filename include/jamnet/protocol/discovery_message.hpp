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
enum class DiscoveryKind : std::uint16_t { kAnnounce = 1, kBye = 2, kChallenge = 3 };
// message_kind values of the HEARTBEAT stream.
enum class HeartbeatKind : std::uint16_t { kPing = 1, kPong = 2 };

inline constexpr std::size_t kMaxPeerNameBytes = 64;
inline constexpr std::size_t kCookieBytes = 16;
using Cookie = std::array<std::uint8_t, kCookieBytes>;

// "I am here": sent to the multicast group and to unicast targets. A
// receiver that has not heard this peer at the sender's address answers
// with a Challenge; the next announce to it echoes the challenge's cookie,
// proving the peer receives at that address.
struct Announce {
  Uuid peer_id;
  std::uint64_t incarnation = 0;  // changes when the peer process restarts
  std::string name;               // at most kMaxPeerNameBytes bytes
  Cookie cookie{};                // all zero: none
};

// "Prove you are there": a stateless cookie for the announcer's address,
// padded to the size of the announce it answers (never larger: no
// amplification).
struct Challenge {
  Uuid peer_id;  // the challenger
  Cookie cookie{};
  std::size_t size = 0;  // on the wire, kChallengeMin..kChallengeMax (padding)
};
inline constexpr std::size_t kChallengeMin = 16 + kCookieBytes;

// "I am leaving": sent on a clean stop so others drop us at once.
struct Bye {
  Uuid peer_id;
  std::uint64_t incarnation = 0;
};

// NTP-style timestamps: t1 sender's send time, t2 responder's receive time,
// t3 responder's send time (each on its own clock). RTT = (t4 - t1) - (t3 - t2).
// A ping is padded to the size of its pong (no amplification).
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
std::vector<std::uint8_t> encode(const Challenge& m);
std::vector<std::uint8_t> encode(const Ping& m);
std::vector<std::uint8_t> encode(const Pong& m);

Result<Announce> decode_announce(std::span<const std::uint8_t> payload);
Result<Bye> decode_bye(std::span<const std::uint8_t> payload);
Result<Challenge> decode_challenge(std::span<const std::uint8_t> payload);
// Bytes an announce of `name_bytes` takes on the wire.
std::size_t announce_size(std::size_t name_bytes) noexcept;
Result<Ping> decode_ping(std::span<const std::uint8_t> payload);
Result<Pong> decode_pong(std::span<const std::uint8_t> payload);

}  // namespace jamnet::protocol
