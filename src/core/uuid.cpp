#include "jamnet/core/uuid.hpp"

#include <sys/random.h>

#include <cstring>
#include <random>

namespace jamnet {

Uuid Uuid::random() {
  Uuid id;
  std::size_t got = 0;
  while (got < id.bytes.size()) {
    const ssize_t n = ::getrandom(id.bytes.data() + got, id.bytes.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < id.bytes.size()) {  // getrandom unavailable: fall back, still unique enough
    std::random_device rd;
    for (auto& b : id.bytes) b = static_cast<std::uint8_t>(rd());
  }
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);  // version 4
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return id;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<Uuid> Uuid::parse(std::string_view text) {
  if (text.size() != 36) {
    return make_error(Errc::kParse, "UUID must be 36 characters (8-4-4-4-12 hex)");
  }
  Uuid id;
  std::size_t out = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-')
        return make_error(Errc::kParse, "UUID: expected '-' at position " + std::to_string(i));
      ++i;
      continue;
    }
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0)
      return make_error(Errc::kParse, "UUID: non-hex digit near position " + std::to_string(i));
    id.bytes[out++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

std::string Uuid::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[bytes[i] >> 4]);
    s.push_back(kHex[bytes[i] & 0xF]);
  }
  return s;
}

std::string Uuid::short_string() const {
  return to_string().substr(0, 8);
}

bool Uuid::is_nil() const noexcept {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

std::size_t UuidHash::operator()(const Uuid& id) const noexcept {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  return static_cast<std::size_t>(a ^ (b * 0x9E3779B97F4A7C15ull));
}

}  // namespace jamnet
