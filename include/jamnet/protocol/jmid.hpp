// JMID: MIDI 1.0 as compact JSON lines (docs/protocol.md, schemas/jmid.schema.json).
//
//   {"t":"n+","c":1,"n":60,"v":100,"ts":1234567,"seq":42}
//
// Keys, always in this canonical order when written (a reader accepts any order,
// whitespace, and ignores unknown keys):
//   t    type: n+ n- pp cc pc cp pb | mtc spp ss tr | clk start cont stop as rst | sx
//   c    channel 1..16 (channel messages only)
//   n    note or controller number 0..127 (n+ n- pp cc)
//   v    velocity / value / pressure / program 0..127; pitch bend -8192..8191;
//        song position 0..16383; MTC quarter-frame data byte 0..127
//   i,l,d  SysEx chunk: index from 0, l=1 on the last chunk, d = hex bytes
//        (without F0/F7), at most kMaxSysExChunk bytes per chunk
//   ts   sender's session time of the event, ns (int64)
//   seq  per-sender event number (uint64): the burst id
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "jamnet/core/result.hpp"

namespace jamnet::protocol::jmid {

enum class Kind : std::uint8_t {
  kNoteOn,           // n+  9n
  kNoteOff,          // n-  8n
  kPolyPressure,     // pp  An
  kControlChange,    // cc  Bn
  kProgramChange,    // pc  Cn
  kChannelPressure,  // cp  Dn
  kPitchBend,        // pb  En
  kTimeCode,         // mtc F1
  kSongPosition,     // spp F2
  kSongSelect,       // ss  F3
  kTuneRequest,      // tr  F6
  kClock,            // clk F8
  kStart,            // start FA
  kContinue,         // cont FB
  kStop,             // stop FC
  kActiveSensing,    // as  FE
  kReset,            // rst FF
  kSysEx,            // sx  F0 ... F7, in chunks
};
inline constexpr std::size_t kKindCount = 18;
inline constexpr std::size_t kMaxSysExChunk = 256;
// Longest line format_line() can produce (a full SysEx chunk).
inline constexpr std::size_t kMaxLineBytes = 96 + 2 * kMaxSysExChunk;

std::string_view type_name(Kind k) noexcept;  // "n+", "cc", ...
bool is_channel_message(Kind k) noexcept;

struct Event {
  Kind kind = Kind::kNoteOn;
  std::uint8_t channel = 0;  // 0..15 (the line says 1..16)
  std::uint8_t data1 = 0;    // note, controller, program, pressure, song number, MTC byte
  std::uint8_t data2 = 0;    // velocity, controller value, poly pressure
  std::int16_t value14 = 0;  // pitch bend (-8192..8191) or song position (0..16383)
  std::int64_t ts_ns = 0;
  std::uint64_t seq = 0;
  std::uint16_t sysex_index = 0;
  bool sysex_last = false;
  std::uint16_t sysex_len = 0;
  std::array<std::uint8_t, kMaxSysExChunk> sysex{};

  friend bool operator==(const Event& a, const Event& b) noexcept;
};

// ---- JSON lines -----------------------------------------------------------

// Writes the canonical compact line (no newline). Returns its length, or 0
// when `out` is too small. Never allocates.
std::size_t format_line(const Event& e, std::span<char> out) noexcept;
std::string to_line(const Event& e);

// Parses one line: a fast path for the canonical compact form, then a general
// JSON parser (simdjson) for anything else. Never crashes, whatever the input;
// every rejection says why.
Result<Event> parse_line(std::string_view line);
// The general path alone (for tests and benchmarks).
Result<Event> parse_line_general(std::string_view line);

// ---- raw MIDI 1.0 bytes -------------------------------------------------

// Writes the MIDI bytes of one event (a SysEx chunk: F0 only before chunk 0,
// F7 only after the last chunk). Returns the length, 0 if `out` is too small.
std::size_t to_midi(const Event& e, std::span<std::uint8_t> out) noexcept;

// Streaming MIDI byte parser: running status, realtime bytes interleaved in
// other messages, SysEx split into chunks of at most kMaxSysExChunk bytes.
// Stray data bytes and broken SysEx are counted, never fatal.
class MidiParser {
 public:
  // Calls on_event(const Event&) for every complete message; ts and seq are
  // left 0 for the caller to fill in.
  template <class F>
  void feed(std::span<const std::uint8_t> bytes, F&& on_event) {
    for (auto b : bytes) {
      const std::uint8_t ready = push(b);
      // A SysEx chunk that one byte completes (a full chunk, F7, or a status
      // byte that ends the SysEx) is older than the message the byte starts.
      if (ready & kSysExReady) on_event(static_cast<const Event&>(sysex_[sysex_ready_]));
      if (ready & kOutReady) on_event(static_cast<const Event&>(out_));
    }
  }
  std::uint64_t stray_bytes() const noexcept { return stray_; }
  void reset() noexcept;

 private:
  friend Result<Event> from_midi(std::span<const std::uint8_t> message);
  static constexpr std::uint8_t kOutReady = 1;
  static constexpr std::uint8_t kSysExReady = 2;
  // Returns which of out_ / sysex_[sysex_ready_] the byte completed.
  std::uint8_t push(std::uint8_t b) noexcept;
  bool idle() const noexcept { return have_ == 0 && !in_sysex_; }
  Event out_;                     // the last complete non-SysEx message
  Event sysex_[2];                // two chunk buffers: one handed out, one filling
  std::uint8_t sysex_fill_ = 0;   // the buffer being filled
  std::uint8_t sysex_ready_ = 0;  // the buffer last handed out
  std::uint8_t status_ = 0;       // running status (0 = none)
  std::uint8_t data_[2] = {0, 0};
  std::uint8_t have_ = 0;
  bool in_sysex_ = false;
  std::uint64_t stray_ = 0;
};

// Parses exactly one complete message (not SysEx longer than one chunk).
Result<Event> from_midi(std::span<const std::uint8_t> message);

}  // namespace jamnet::protocol::jmid
