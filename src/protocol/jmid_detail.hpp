// Private to the JMID sources (src/protocol/jmid*.cpp): the pieces the event,
// MIDI and journal translation units share. Not installed, not public API.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "jamnet/core/result.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::protocol::jmid::detail {

// Lines longer than this never reach simdjson: a TOAST payload is at most one
// UDP datagram, so anything longer is not a line we could have been sent.
inline constexpr std::size_t kMaxGeneralLineBytes = 65536;

// The hand-written parser for the canonical compact event line, into `out`
// (a default-constructed Event). false means "not canonical, or out of range"
// (`out` is then partly written): the caller falls back to the general path,
// which accepts the line or says why not. Never reads outside `line`.
bool parse_canonical(std::string_view line, Event& out) noexcept;

// Parses `line` with simdjson's DOM parser into a JSON object. The object
// lives in a thread_local parser: valid until the next call on this thread.
Result<simdjson::dom::object> parse_object(std::string_view line);

// An event from an already parsed object whose "t" is `type`.
Result<Event> event_from_object(simdjson::dom::object obj);

// Appends text and integers to a buffer the caller has sized (kMaxLineBytes,
// kMaxJournalLineBytes): no bounds checks on the hot path.
struct Writer {
  char* p;
  void lit(std::string_view s) noexcept {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  template <class T>
  void num(T v) noexcept {
    p = std::to_chars(p, p + 24, v).ptr;  // 24 > the 20 digits + sign of any 64-bit integer
  }
};

// format_line/format_journal: `write` needs up to Max bytes; write straight
// into `out` when it is that large, else through a stack buffer, and report 0
// when the result does not fit. Never allocates.
template <std::size_t Max, class T, class Writer>
std::size_t format_bounded(const T& value, std::span<char> out, Writer write) noexcept {
  if (out.size() >= Max) return write(value, out.data());
  std::array<char, Max> tmp;
  const std::size_t n = write(value, tmp.data());
  if (n > out.size()) return 0;
  std::memcpy(out.data(), tmp.data(), n);
  return n;
}

template <std::size_t Max, class T, class Writer>
std::string to_string_bounded(const T& value, Writer write) {
  std::array<char, Max> tmp;
  return std::string(tmp.data(), write(value, tmp.data()));
}

inline std::unexpected<Error> parse_error(std::string message) {
  return make_error(Errc::kParse, std::move(message));
}

// The general path's field scan, shared by event, journal and feedback lines.
// Copies each listed key's value into its slot (a null slot: known, value not
// needed) and returns a mask with bit i set when fields[i] was present.
// Unknown keys are ignored (newer senders may add some); a key given twice is
// an error.
struct FieldSlot {
  std::string_view key;
  simdjson::dom::element* slot;
};
template <std::size_t N>
Result<unsigned> collect_fields(simdjson::dom::object obj, const FieldSlot (&fields)[N]) {
  static_assert(N <= 32);
  unsigned seen = 0;
  for (auto field : obj) {
    const std::string_view key = field.key;
    for (std::size_t i = 0; i < N; ++i) {
      if (fields[i].key != key) continue;
      if (seen & (1u << i)) return parse_error("jmid: duplicate key '" + std::string(key) + "'");
      seen |= 1u << i;
      if (fields[i].slot != nullptr) *fields[i].slot = field.value;
      break;
    }
  }
  return seen;
}

}  // namespace jamnet::protocol::jmid::detail
