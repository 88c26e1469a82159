// JMID events <-> raw MIDI 1.0 bytes.
#include <algorithm>
#include <string>

#include "jamnet/protocol/jmid.hpp"
#include "jmid_detail.hpp"

namespace jamnet::protocol::jmid {

namespace {

// Data bytes that complete a message with this status (0 for single-byte ones).
constexpr std::uint8_t data_bytes(std::uint8_t status) noexcept {
  switch (status & 0xF0) {
    case 0xC0:
    case 0xD0:
      return 1;
    case 0xF0:
      switch (status) {
        case 0xF1:
        case 0xF3:
          return 1;
        case 0xF2:
          return 2;
        default:
          return 0;
      }
    default:
      return 2;
  }
}

void set_message(Event& e, Kind kind) noexcept {
  e.kind = kind;
  e.channel = 0;
  e.data1 = 0;
  e.data2 = 0;
  e.value14 = 0;
}

}  // namespace

std::size_t to_midi(const Event& e, std::span<std::uint8_t> out) noexcept {
  std::uint8_t buf[3];
  std::size_t n = 0;
  const auto ch = static_cast<std::uint8_t>(e.channel & 0x0F);
  const auto d1 = static_cast<std::uint8_t>(e.data1 & 0x7F);
  const auto d2 = static_cast<std::uint8_t>(e.data2 & 0x7F);
  auto three = [&](std::uint8_t s, std::uint8_t a, std::uint8_t b) {
    buf[0] = s, buf[1] = a, buf[2] = b;
    n = 3;
  };
  auto two = [&](std::uint8_t s, std::uint8_t a) {
    buf[0] = s, buf[1] = a;
    n = 2;
  };
  auto one = [&](std::uint8_t s) {
    buf[0] = s;
    n = 1;
  };
  switch (e.kind) {
    case Kind::kNoteOn:
      three(0x90 | ch, d1, d2);
      break;
    case Kind::kNoteOff:
      three(0x80 | ch, d1, d2);
      break;
    case Kind::kPolyPressure:
      three(0xA0 | ch, d1, d2);
      break;
    case Kind::kControlChange:
      three(0xB0 | ch, d1, d2);
      break;
    case Kind::kProgramChange:
      two(0xC0 | ch, d1);
      break;
    case Kind::kChannelPressure:
      two(0xD0 | ch, d1);
      break;
    case Kind::kPitchBend: {
      const auto u = static_cast<unsigned>(std::clamp<int>(e.value14, -8192, 8191) + 8192);
      three(0xE0 | ch, u & 0x7F, (u >> 7) & 0x7F);
      break;
    }
    case Kind::kTimeCode:
      two(0xF1, d1);
      break;
    case Kind::kSongPosition: {
      const auto u = static_cast<unsigned>(std::clamp<int>(e.value14, 0, 16383));
      three(0xF2, u & 0x7F, (u >> 7) & 0x7F);
      break;
    }
    case Kind::kSongSelect:
      two(0xF3, d1);
      break;
    case Kind::kTuneRequest:
      one(0xF6);
      break;
    case Kind::kClock:
      one(0xF8);
      break;
    case Kind::kStart:
      one(0xFA);
      break;
    case Kind::kContinue:
      one(0xFB);
      break;
    case Kind::kStop:
      one(0xFC);
      break;
    case Kind::kActiveSensing:
      one(0xFE);
      break;
    case Kind::kReset:
      one(0xFF);
      break;
    case Kind::kSysEx: {
      const std::size_t len = std::min<std::size_t>(e.sysex_len, kMaxSysExChunk);
      const std::size_t total = len + (e.sysex_index == 0 ? 1 : 0) + (e.sysex_last ? 1 : 0);
      if (out.size() < total) return 0;
      std::size_t k = 0;
      if (e.sysex_index == 0) out[k++] = 0xF0;
      for (std::size_t i = 0; i < len; ++i)
        out[k++] = e.sysex[i] & 0x7F;  // a data byte, whatever the caller put there
      if (e.sysex_last) out[k++] = 0xF7;
      return k;
    }
  }
  if (n == 0 || out.size() < n) return 0;
  std::copy(buf, buf + n, out.begin());
  return n;
}

void MidiParser::reset() noexcept {
  status_ = 0;
  have_ = 0;
  in_sysex_ = false;
  sysex_fill_ = 0;
  sysex_ready_ = 0;
  stray_ = 0;
}

std::uint8_t MidiParser::push(std::uint8_t b) noexcept {
  // Realtime bytes may appear anywhere, even inside another message or a
  // SysEx, and leave everything else as it was.
  if (b >= 0xF8) {
    Kind k;
    switch (b) {
      case 0xF8:
        k = Kind::kClock;
        break;
      case 0xFA:
        k = Kind::kStart;
        break;
      case 0xFB:
        k = Kind::kContinue;
        break;
      case 0xFC:
        k = Kind::kStop;
        break;
      case 0xFE:
        k = Kind::kActiveSensing;
        break;
      case 0xFF:
        k = Kind::kReset;
        break;
      default:
        ++stray_;
        return 0;  // F9, FD: undefined
    }
    set_message(out_, k);
    return kOutReady;
  }
  if (b == 0xF4 || b == 0xF5) {  // undefined system common: skipped, changes nothing
    ++stray_;
    return 0;
  }

  std::uint8_t ready = 0;
  if (b & 0x80) {
    if (in_sysex_) {
      // F7 ends the SysEx; any other status byte ends it too (a broken SysEx,
      // counted): the chunk goes out marked last so no receiver waits for more.
      in_sysex_ = false;
      Event& chunk = sysex_[sysex_fill_];
      chunk.sysex_last = true;
      sysex_ready_ = sysex_fill_;
      sysex_fill_ ^= 1;
      ready = kSysExReady;
      if (b == 0xF7) return ready;
      ++stray_;
    } else if (have_ != 0) {
      stray_ += have_;  // the data bytes of a message that never completed
    }
    have_ = 0;
    switch (b) {
      case 0xF7:  // end of a SysEx that never started
        ++stray_;
        status_ = 0;
        return ready;
      case 0xF0: {
        status_ = 0;
        in_sysex_ = true;
        Event& chunk = sysex_[sysex_fill_];
        set_message(chunk, Kind::kSysEx);
        chunk.sysex_index = 0;
        chunk.sysex_len = 0;
        chunk.sysex_last = false;
        return ready;
      }
      case 0xF6:
        status_ = 0;
        set_message(out_, Kind::kTuneRequest);
        return ready | kOutReady;
      default:  // channel messages and F1..F3
        status_ = b;
        return ready;
    }
  }

  // A data byte.
  if (in_sysex_) {
    Event* chunk = &sysex_[sysex_fill_];
    if (chunk->sysex_len == kMaxSysExChunk) {
      // Hand out the full chunk and go on in the other buffer, which the
      // caller is done with (it had it one chunk ago).
      chunk->sysex_last = false;
      sysex_ready_ = sysex_fill_;
      sysex_fill_ ^= 1;
      Event& next = sysex_[sysex_fill_];
      set_message(next, Kind::kSysEx);
      next.sysex_index = chunk->sysex_index == 0xFFFF
                             ? 0xFFFF
                             : static_cast<std::uint16_t>(chunk->sysex_index + 1);
      next.sysex_len = 0;
      next.sysex_last = false;
      chunk = &next;
      ready = kSysExReady;
    }
    chunk->sysex[chunk->sysex_len++] = b;
    return ready;
  }
  if (status_ == 0) {
    ++stray_;
    return 0;
  }
  data_[have_++] = b;
  const std::uint8_t need = data_bytes(status_);
  if (have_ < need) return 0;
  have_ = 0;
  const auto ch = static_cast<std::uint8_t>(status_ & 0x0F);
  switch (status_ & 0xF0) {
    case 0x80:
      set_message(out_, Kind::kNoteOff);
      break;
    case 0x90:
      set_message(out_, Kind::kNoteOn);
      break;  // velocity 0 stays a note on: lossless
    case 0xA0:
      set_message(out_, Kind::kPolyPressure);
      break;
    case 0xB0:
      set_message(out_, Kind::kControlChange);
      break;
    case 0xC0:
      set_message(out_, Kind::kProgramChange);
      break;
    case 0xD0:
      set_message(out_, Kind::kChannelPressure);
      break;
    case 0xE0:
      set_message(out_, Kind::kPitchBend);
      out_.value14 = static_cast<std::int16_t>((data_[0] | data_[1] << 7) - 8192);
      break;
    default:  // system common: no running status after it
      switch (status_) {
        case 0xF1:
          set_message(out_, Kind::kTimeCode);
          break;
        case 0xF2:
          set_message(out_, Kind::kSongPosition);
          out_.value14 = static_cast<std::int16_t>(data_[0] | data_[1] << 7);
          break;
        default:
          set_message(out_, Kind::kSongSelect);
          break;
      }
      status_ = 0;
      out_.data1 = data_[0];
      return kOutReady;
  }
  out_.channel = ch;
  if (out_.kind != Kind::kPitchBend) {
    out_.data1 = data_[0];
    if (need == 2) out_.data2 = data_[1];
  }
  return kOutReady;
}

Result<Event> from_midi(std::span<const std::uint8_t> message) {
  if (message.empty()) return detail::parse_error("jmid: empty MIDI message");
  MidiParser parser;
  Event first;
  std::size_t count = 0;
  parser.feed(message, [&](const Event& e) {
    if (count++ == 0) first = e;
  });
  if (parser.stray_bytes() != 0)
    return detail::parse_error("jmid: MIDI message has " + std::to_string(parser.stray_bytes()) +
                               " stray or undefined byte(s)");
  if (count == 0) return detail::parse_error("jmid: incomplete MIDI message");
  if (count > 1)
    return detail::parse_error("jmid: " + std::to_string(count) +
                               " MIDI messages where one was expected (SysEx over " +
                               std::to_string(kMaxSysExChunk) + " bytes needs MidiParser)");
  if (!parser.idle())
    return detail::parse_error("jmid: MIDI message followed by the start of another");
  return first;
}

}  // namespace jamnet::protocol::jmid
