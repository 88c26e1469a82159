#include "jamnet/net/endpoint.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace jamnet::net {

Result<Endpoint> Endpoint::parse(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return make_error(Errc::kParse, "expected HOST:PORT, got '" + std::string(text) + "'");
  }
  const std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return make_error(Errc::kParse, "port must be a number from 0 to 65535, got '" +
                                        std::string(port_text) + "'");
  }
  Endpoint ep;
  ep.port = static_cast<std::uint16_t>(port);
  if (host.empty() || host == "*" || host == "0.0.0.0") {
    ep.addr = 0;
  } else if (host == "localhost") {
    ep.addr = 0x7F000001u;
  } else {
    in_addr a{};
    const std::string h(host);
    if (::inet_pton(AF_INET, h.c_str(), &a) != 1) {
      return make_error(Errc::kParse,
                        "host must be an IPv4 address or 'localhost', got '" + h + "'");
    }
    ep.addr = ntohl(a.s_addr);
  }
  return ep;
}

Endpoint Endpoint::from_sockaddr(const sockaddr_in& sa) noexcept {
  return {ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

sockaddr_in Endpoint::to_sockaddr() const noexcept {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(addr);
  sa.sin_port = htons(port);
  return sa;
}

std::string Endpoint::to_string() const {
  return std::to_string(addr >> 24) + '.' + std::to_string((addr >> 16) & 0xFF) + '.' +
         std::to_string((addr >> 8) & 0xFF) + '.' + std::to_string(addr & 0xFF) + ':' +
         std::to_string(port);
}

}  // namespace jamnet::net
