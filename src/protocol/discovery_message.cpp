#include "jamnet/protocol/discovery_message.hpp"

#include <algorithm>

#include "jamnet/protocol/byte_order.hpp"

namespace jamnet::protocol {

namespace {

constexpr std::size_t kAnnounceFixed = 16 + 8 + 1;  // id, incarnation, name length; cookie after
constexpr std::size_t kByeSize = 16 + 8;
constexpr std::size_t kPongSize = 16 + 4 + 8 + 8 + 8;
constexpr std::size_t kPingSize = kPongSize;  // 16 + 4 + 8, padded
constexpr std::size_t kChallengeMax = kAnnounceFixed + kMaxPeerNameBytes + kCookieBytes;

void put_id(std::vector<std::uint8_t>& out, const Uuid& id) {
  out.insert(out.end(), id.bytes.begin(), id.bytes.end());
}
void put64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  const auto at = out.size();
  out.resize(at + 8);
  store_be64(out.data() + at, v);
}
void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  const auto at = out.size();
  out.resize(at + 4);
  store_be32(out.data() + at, v);
}
Uuid get_id(const std::uint8_t* p) {
  Uuid id;
  std::copy(p, p + 16, id.bytes.begin());
  return id;
}
std::unexpected<Error> bad_size(const char* what, std::size_t want, std::size_t got) {
  return make_error(Errc::kParse, std::string(what) + " payload must be " + std::to_string(want) +
                                      " bytes, got " + std::to_string(got));
}

}  // namespace

std::vector<std::uint8_t> encode(const Announce& m) {
  std::vector<std::uint8_t> out;
  const std::size_t n = std::min(m.name.size(), kMaxPeerNameBytes);
  out.reserve(kAnnounceFixed + n);
  put_id(out, m.peer_id);
  put64(out, m.incarnation);
  out.push_back(static_cast<std::uint8_t>(n));
  out.insert(out.end(), m.name.begin(), m.name.begin() + static_cast<std::ptrdiff_t>(n));
  out.insert(out.end(), m.cookie.begin(), m.cookie.end());
  return out;
}

std::size_t announce_size(std::size_t name_bytes) noexcept {
  return kAnnounceFixed + std::min(name_bytes, kMaxPeerNameBytes) + kCookieBytes;
}

std::vector<std::uint8_t> encode(const Challenge& m) {
  std::vector<std::uint8_t> out;
  put_id(out, m.peer_id);
  out.insert(out.end(), m.cookie.begin(), m.cookie.end());
  out.resize(std::clamp(m.size, kChallengeMin, kChallengeMax), 0);
  return out;
}

Result<Challenge> decode_challenge(std::span<const std::uint8_t> p) {
  if (p.size() < kChallengeMin || p.size() > kChallengeMax)
    return make_error(Errc::kParse, "challenge payload must be " + std::to_string(kChallengeMin) +
                                        ".." + std::to_string(kChallengeMax) + " bytes, got " +
                                        std::to_string(p.size()));
  Challenge m;
  m.peer_id = get_id(p.data());
  std::copy(p.begin() + 16, p.begin() + 16 + kCookieBytes, m.cookie.begin());
  m.size = p.size();
  return m;
}

std::vector<std::uint8_t> encode(const Bye& m) {
  std::vector<std::uint8_t> out;
  put_id(out, m.peer_id);
  put64(out, m.incarnation);
  return out;
}

std::vector<std::uint8_t> encode(const Ping& m) {
  std::vector<std::uint8_t> out;
  put_id(out, m.peer_id);
  put32(out, m.ping_id);
  put64(out, static_cast<std::uint64_t>(m.t1_ns));
  out.resize(kPingSize, 0);  // as large as the pong it asks for
  return out;
}

std::vector<std::uint8_t> encode(const Pong& m) {
  std::vector<std::uint8_t> out;
  put_id(out, m.peer_id);
  put32(out, m.ping_id);
  put64(out, static_cast<std::uint64_t>(m.t1_ns));
  put64(out, static_cast<std::uint64_t>(m.t2_ns));
  put64(out, static_cast<std::uint64_t>(m.t3_ns));
  return out;
}

Result<Announce> decode_announce(std::span<const std::uint8_t> p) {
  if (p.size() < kAnnounceFixed) return bad_size("announce", kAnnounceFixed, p.size());
  const std::size_t n = p[kAnnounceFixed - 1];
  if (n > kMaxPeerNameBytes)
    return make_error(Errc::kParse, "announce: peer name longer than 64 bytes");
  if (p.size() != kAnnounceFixed + n + kCookieBytes)
    return bad_size("announce", kAnnounceFixed + n + kCookieBytes, p.size());
  Announce m;
  m.peer_id = get_id(p.data());
  m.incarnation = load_be64(p.data() + 16);
  // Names are shown on terminals: keep printable ASCII, replace the rest.
  m.name.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(p[kAnnounceFixed + i]);
    m.name.push_back(c >= 0x20 && c < 0x7F ? c : '?');
  }
  std::copy(p.begin() + static_cast<std::ptrdiff_t>(kAnnounceFixed + n), p.end(), m.cookie.begin());
  return m;
}

Result<Bye> decode_bye(std::span<const std::uint8_t> p) {
  if (p.size() != kByeSize) return bad_size("bye", kByeSize, p.size());
  return Bye{get_id(p.data()), load_be64(p.data() + 16)};
}

Result<Ping> decode_ping(std::span<const std::uint8_t> p) {
  if (p.size() != kPingSize) return bad_size("ping", kPingSize, p.size());
  return Ping{get_id(p.data()), load_be32(p.data() + 16),
              static_cast<std::int64_t>(load_be64(p.data() + 20))};
}

Result<Pong> decode_pong(std::span<const std::uint8_t> p) {
  if (p.size() != kPongSize) return bad_size("pong", kPongSize, p.size());
  return Pong{get_id(p.data()), load_be32(p.data() + 16),
              static_cast<std::int64_t>(load_be64(p.data() + 20)),
              static_cast<std::int64_t>(load_be64(p.data() + 28)),
              static_cast<std::int64_t>(load_be64(p.data() + 36))};
}

}  // namespace jamnet::protocol
