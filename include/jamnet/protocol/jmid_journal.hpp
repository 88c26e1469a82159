// JMID recovery journal and feedback lines (in the style of RFC 6295's
// recovery journal): a compact summary of one channel's state, so a receiver
// that lost more than a burst can repair stuck notes and wrong controllers.
//
//   {"t":"j","c":1,"upto":42,"ts":123,"on":[60,100,64,90],"cc":[7,100,64,127],"pc":5,"pb":0,"cp":-1}
//
//   on   flat list of note,velocity pairs for the notes held
//   cc   flat list of controller,value pairs for every controller ever set
//   pc   program (-1 = never set); pb pitch bend (-8192..8191); cp channel pressure (-1 = never
//   set) upto the state includes every event of this sender up to this seq
//
// Feedback from a receiver to a sender: {"t":"fb","loss":0.2031,"rx":812,"lost":207}
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "jamnet/core/result.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::protocol::jmid {

struct ChannelState {
  std::bitset<128> notes_on;
  std::array<std::uint8_t, 128> velocity{};
  std::array<std::int16_t, 128> cc;  // -1 = never set
  std::int16_t program = -1;
  std::int16_t pitch_bend = 0;
  std::int16_t pressure = -1;
  ChannelState() { cc.fill(-1); }
  bool is_default() const noexcept;
  friend bool operator==(const ChannelState&, const ChannelState&) = default;
};

struct JournalLine {
  std::uint8_t channel = 0;  // 0..15
  std::uint64_t upto_seq = 0;
  std::int64_t ts_ns = 0;
  ChannelState state;
};

struct Feedback {
  double loss = 0.0;  // packet loss the receiver measures on this stream, 0..1
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
};

// Longest journal line (all notes held, all controllers set).
inline constexpr std::size_t kMaxJournalLineBytes = 2600;

std::size_t format_journal(const JournalLine& j, std::span<char> out) noexcept;
std::string to_line(const JournalLine& j);
std::string to_line(const Feedback& f);

using Line = std::variant<Event, JournalLine, Feedback>;
// Any JMID line: events take the fast path; journal and feedback lines (rare)
// the general one.
Result<Line> parse_any(std::string_view line);

}  // namespace jamnet::protocol::jmid
