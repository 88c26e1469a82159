// Keyed frames from outside: the input is a script of operations on one
// Opener (the receive side of a keyed session) - open garbage, open a frame
// sealed with the session key, replay one of those, or one sealed with
// another key - checking after each that nothing is accepted twice, nothing
// unauthenticated is accepted, and no state is made for what failed.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "jamnet/protocol/security.hpp"
#include "jamnet/protocol/toast_frame.hpp"

using namespace jamnet;
using namespace jamnet::protocol;

namespace {
SessionKey fixed_key(std::uint8_t seed) {
  SessionKey k;
  for (std::size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const SessionKey key = fixed_key(1), other = fixed_key(2);
  const Uuid peer = *Uuid::parse("11111111-2222-4333-8444-555555555555");
  Sealer sealer(key, peer, 7, /*epoch_bits=*/2), stranger(other, peer, 7, 2);
  Opener opener(key);
  std::vector<std::vector<std::uint8_t>> sent;  // sealed payloads, in order
  std::set<std::size_t> accepted;               // indices of sent frames accepted
  const std::array<std::uint8_t, kHeaderSize> ad{};
  std::array<std::uint8_t, 512> out{};
  std::size_t i = 0;
  while (i < size) {
    const std::uint8_t op = data[i++];
    const std::size_t len = i < size ? data[i++] % 200 : 0;
    const std::size_t take = std::min(len, size - i);
    const std::span<const std::uint8_t> arg(data + i, take);
    i += take;
    switch (op % 4) {
      case 0: {  // garbage: never accepted, never leaves state
        const auto before = opener.senders();
        if (opener.open(ad, arg, out)) std::abort();
        if (opener.senders() != before) std::abort();
        break;
      }
      case 1: {  // a frame of ours
        std::vector<std::uint8_t> sealed(take + kSealOverhead);
        if (sealer.seal(ad, arg, sealed) != sealed.size()) std::abort();
        sent.push_back(std::move(sealed));
        break;
      }
      case 2: {  // deliver (or replay) one of ours
        if (sent.empty()) break;
        const std::size_t k = (take > 0 ? arg[0] : 0) % sent.size();
        const auto got = opener.open(ad, sent[k], out);
        if (got) {
          if (!accepted.insert(k).second) std::abort();  // accepted twice: a replay got through
          if (*got + kSealOverhead != sent[k].size()) std::abort();
        }
        break;
      }
      case 3: {  // sealed with another key: never accepted
        std::vector<std::uint8_t> sealed(take + kSealOverhead);
        (void)stranger.seal(ad, arg, sealed);
        if (opener.open(ad, sealed, out)) std::abort();
        break;
      }
    }
  }
  return 0;
}
