// CRC-32 (IEEE 802.3 / zlib / PNG: reflected polynomial 0xEDB88320, init and
// final xor 0xFFFFFFFF). Check value: crc32("123456789") == 0xCBF43926.
#pragma once

#include <cstdint>
#include <span>

namespace jamnet {

std::uint32_t crc32(std::span<const std::uint8_t> data) noexcept;

}  // namespace jamnet
