// An IPv4 UDP endpoint, parsed from "HOST:PORT" as given on the command line.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "jamnet/core/result.hpp"

namespace jamnet::net {

struct Endpoint {
  std::uint32_t addr = 0;  // host byte order
  std::uint16_t port = 0;

  // "HOST:PORT"; HOST is a dotted quad, "localhost" or "*"/"" (any). PORT 0..65535.
  static Result<Endpoint> parse(std::string_view text);
  static Endpoint from_sockaddr(const sockaddr_in& sa) noexcept;
  static Endpoint loopback(std::uint16_t port) noexcept { return {0x7F000001u, port}; }

  sockaddr_in to_sockaddr() const noexcept;
  std::string to_string() const;
  bool is_multicast() const noexcept { return (addr >> 28) == 0xE; }
  bool is_any() const noexcept { return addr == 0; }

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct EndpointHash {
  std::size_t operator()(const Endpoint& e) const noexcept {
    return std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(e.addr) << 16 | e.port);
  }
};

}  // namespace jamnet::net
