// Fuzzes every other parser of outside input the foundation has: discovery and
// heartbeat payloads, HOST:PORT endpoints, UUIDs and topic URIs. The first
// byte picks the parser. Whatever parses must re-encode to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "jamnet/core/uuid.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/protocol/discovery_message.hpp"
#include "jamnet/protocol/topic.hpp"

using namespace jamnet;

namespace {
template <class T>
void same_bytes(const T& msg, std::span<const std::uint8_t> in) {
  const auto again = protocol::encode(msg);
  if (again.size() != in.size() || !std::equal(again.begin(), again.end(), in.begin()))
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> in(data + 1, size - 1);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 8) {
    case 0:
      if (auto m = protocol::decode_announce(in)) {
        // Names are sanitised on decode, so only printable names round-trip.
        bool printable = true;
        for (char c : m->name) printable &= c != '?';
        if (printable && in.size() <= 25 + 64 + protocol::kCookieBytes) {
          auto again = protocol::encode(*m);
          if (again.size() != in.size()) std::abort();
        }
      }
      break;
    case 1:
      if (auto m = protocol::decode_bye(in)) same_bytes(*m, in);
      break;
    case 2:
      if (auto m = protocol::decode_ping(in)) {
        // The padding (as large as a pong) is not read back: fields only.
        const auto again = protocol::encode(*m);
        if (again.size() != in.size() || !std::equal(again.begin(), again.begin() + 28, in.begin()))
          std::abort();
      }
      break;
    case 3:
      if (auto m = protocol::decode_pong(in)) same_bytes(*m, in);
      break;
    case 4:
      if (auto e = net::Endpoint::parse(text)) {
        if (!net::Endpoint::parse(e->to_string()) || *net::Endpoint::parse(e->to_string()) != *e)
          std::abort();
      }
      break;
    case 5:
      if (auto u = Uuid::parse(text)) {
        if (Uuid::parse(u->to_string()).value() != *u) std::abort();
      }
      break;
    case 6:
      if (auto t = protocol::parse_topic_uri(text)) {
        if (t->index) {
          auto again =
              protocol::parse_topic_uri(protocol::topic_uri(t->session, {t->type, *t->index}));
          if (!again || again->session != t->session || again->type != t->type) std::abort();
        }
      }
      break;
    case 7:
      if (auto m = protocol::decode_challenge(in)) {
        const auto again = protocol::encode(*m);  // padded back to the same size
        if (again.size() != in.size() ||
            !std::equal(again.begin(), again.begin() + protocol::kChallengeMin, in.begin()))
          std::abort();
      }
      break;
  }
  return 0;
}
