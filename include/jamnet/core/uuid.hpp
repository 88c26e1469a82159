// 128-bit identifiers for sessions and peers (RFC 4122 version 4, random).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "jamnet/core/result.hpp"

namespace jamnet {

struct Uuid {
  std::array<std::uint8_t, 16> bytes{};

  static Uuid random();
  // Parses the canonical 8-4-4-4-12 hex form.
  static Result<Uuid> parse(std::string_view text);
  std::string to_string() const;
  // First 8 hex digits: enough to tell peers apart in a status line.
  std::string short_string() const;
  bool is_nil() const noexcept;

  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

struct UuidHash {
  std::size_t operator()(const Uuid& id) const noexcept;
};

}  // namespace jamnet
