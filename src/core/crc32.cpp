#include "jamnet/core/crc32.hpp"

#include <zlib.h>

namespace jamnet {

// zlib's crc32 is the well-kept, table-driven (braided) implementation of the
// same polynomial; no reason to carry our own.
std::uint32_t crc32(std::span<const std::uint8_t> data) noexcept {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const auto* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const auto chunk = static_cast<uInt>(left > 0x40000000u ? 0x40000000u : left);
    crc = ::crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

}  // namespace jamnet
