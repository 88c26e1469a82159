// JMID <-> raw MIDI 1.0 bytes: every kind, running status, realtime bytes
// inside other messages, SysEx in chunks, stray bytes.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "jamnet/protocol/jmid.hpp"

namespace jamnet::protocol::jmid {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::vector<Event> parse_all(const Bytes& bytes, MidiParser& p) {
  std::vector<Event> out;
  p.feed(bytes, [&](const Event& e) { out.push_back(e); });
  return out;
}

std::vector<Event> parse_all(const Bytes& bytes) {
  MidiParser p;
  return parse_all(bytes, p);
}

Bytes midi_of(const Event& e) {
  Bytes b(kMaxSysExChunk + 2);
  const std::size_t n = to_midi(e, b);
  EXPECT_GT(n, 0u);
  b.resize(n);
  return b;
}

Bytes midi_of(const std::vector<Event>& events) {
  Bytes out;
  for (const auto& e : events) {
    const Bytes b = midi_of(e);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

TEST(JmidMidi, EveryKindRoundTripsThroughBytes) {
  const std::vector<Bytes> messages = {
      {0x93, 60, 100}, {0x93, 60, 0},  {0x82, 60, 64},
      {0xA1, 61, 5},   {0xBF, 7, 127}, {0xC0, 5},
      {0xD5, 77},      {0xE0, 0, 0},   {0xE0, 127, 127},
      {0xE4, 0, 64},   {0xF1, 0x71},   {0xF2, 0x7F, 0x7F},
      {0xF3, 9},       {0xF6},         {0xF8},
      {0xFA},          {0xFB},         {0xFC},
      {0xFE},          {0xFF},         {0xF0, 0x7E, 0x7F, 0x09, 0x01, 0xF7},
      {0xF0, 0xF7},
  };
  std::vector<bool> kinds(kKindCount, false);
  for (const auto& m : messages) {
    auto e = from_midi(m);
    ASSERT_TRUE(e.has_value()) << e.error().message;
    kinds[static_cast<std::size_t>(e->kind)] = true;
    EXPECT_EQ(midi_of(*e), m) << type_name(e->kind);
    // ... and through a JSON line as well.
    auto line = parse_line(to_line(*e));
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(midi_of(*line), m);
  }
  for (std::size_t k = 0; k < kKindCount; ++k)
    EXPECT_TRUE(kinds[k]) << type_name(static_cast<Kind>(k));
}

TEST(JmidMidi, FieldsAreDecodedAsDocumented) {
  auto e = from_midi(Bytes{0x9F, 60, 0});
  EXPECT_EQ(e->kind, Kind::kNoteOn);  // velocity 0 stays a note on
  EXPECT_EQ(e->channel, 15);
  EXPECT_EQ(e->data1, 60);
  EXPECT_EQ(e->data2, 0);
  EXPECT_EQ(from_midi(Bytes{0xE0, 0, 0})->value14, -8192);
  EXPECT_EQ(from_midi(Bytes{0xE0, 0, 64})->value14, 0);
  EXPECT_EQ(from_midi(Bytes{0xE0, 127, 127})->value14, 8191);
  EXPECT_EQ(from_midi(Bytes{0xF2, 0x00, 0x01})->value14, 128);
  EXPECT_EQ(from_midi(Bytes{0xC3, 42})->data1, 42);
  EXPECT_EQ(from_midi(Bytes{0xD3, 43})->data1, 43);
  EXPECT_EQ(from_midi(Bytes{0xF3, 44})->data1, 44);
  EXPECT_EQ(from_midi(Bytes{0xA0, 1, 2})->data2, 2);
}

TEST(JmidMidi, RunningStatus) {
  const Bytes in = {0x90, 60, 100, 62, 100, 64, 0, 0xB0, 7, 100, 10, 64, 0xC1, 5, 6};
  auto events = parse_all(in);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[2].kind, Kind::kNoteOn);
  EXPECT_EQ(events[2].data1, 64);
  EXPECT_EQ(events[2].data2, 0);
  EXPECT_EQ(events[4].kind, Kind::kControlChange);
  EXPECT_EQ(events[4].data1, 10);
  EXPECT_EQ(events[6].kind, Kind::kProgramChange);
  EXPECT_EQ(events[6].data1, 6);
  const Bytes expanded = {0x90, 60,  100,  0x90, 62, 100,  0x90, 64,   0, 0xB0,
                          7,    100, 0xB0, 10,   64, 0xC1, 5,    0xC1, 6};
  EXPECT_EQ(midi_of(events), expanded);
  EXPECT_EQ(parse_all(expanded), events);
}

TEST(JmidMidi, SystemCommonCancelsRunningStatus) {
  MidiParser p;
  auto events = parse_all(Bytes{0x90, 60, 100, 0xF3, 1, 61, 100}, p);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, Kind::kSongSelect);
  EXPECT_EQ(p.stray_bytes(), 2u);
}

TEST(JmidMidi, RealtimeBytesInsideMessagesComeOutAtOnce) {
  const Bytes in = {0x90, 0xF8, 60, 0xFA, 100, 0xF2, 0xFE, 1, 0xFC, 2};
  auto events = parse_all(in);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].kind, Kind::kClock);
  EXPECT_EQ(events[1].kind, Kind::kStart);
  EXPECT_EQ(events[2].kind, Kind::kNoteOn);
  EXPECT_EQ(events[2].data1, 60);
  EXPECT_EQ(events[2].data2, 100);
  EXPECT_EQ(events[3].kind, Kind::kActiveSensing);
  EXPECT_EQ(events[4].kind, Kind::kStop);
  EXPECT_EQ(events[5].kind, Kind::kSongPosition);
  EXPECT_EQ(events[5].value14, 1 | 2 << 7);
}

TEST(JmidMidi, RealtimeBytesInsideSysEx) {
  const Bytes in = {0xF0, 0x7E, 0xF8, 0x7F, 0xFF, 0x01, 0xF7};
  auto events = parse_all(in);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, Kind::kClock);
  EXPECT_EQ(events[1].kind, Kind::kReset);
  ASSERT_EQ(events[2].kind, Kind::kSysEx);
  EXPECT_EQ(events[2].sysex_len, 3);
  EXPECT_TRUE(events[2].sysex_last);
  EXPECT_EQ(midi_of(events[2]), (Bytes{0xF0, 0x7E, 0x7F, 0x01, 0xF7}));
}

Bytes sysex_of(std::size_t n, std::mt19937_64& rng) {
  Bytes b{0xF0};
  for (std::size_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(rng() % 128));
  b.push_back(0xF7);
  return b;
}

TEST(JmidMidi, LongSysExIsSplitIntoChunks) {
  std::mt19937_64 rng(5);
  for (std::size_t n : {0u, 1u, 255u, 256u, 257u, 512u, 513u, 1000u, 5000u}) {
    const Bytes in = sysex_of(n, rng);
    auto events = parse_all(in);
    const std::size_t chunks = n == 0 ? 1 : (n + kMaxSysExChunk - 1) / kMaxSysExChunk;
    ASSERT_EQ(events.size(), chunks) << n;
    for (std::size_t i = 0; i < chunks; ++i) {
      EXPECT_EQ(events[i].kind, Kind::kSysEx);
      EXPECT_EQ(events[i].sysex_index, i);
      EXPECT_EQ(events[i].sysex_last, i + 1 == chunks);
      EXPECT_EQ(events[i].sysex_len, i + 1 == chunks ? n - i * kMaxSysExChunk : kMaxSysExChunk);
    }
    EXPECT_EQ(midi_of(events), in) << n;
    // Through JSON lines too.
    std::vector<Event> via_lines;
    for (const auto& e : events) via_lines.push_back(*parse_line(to_line(e)));
    EXPECT_EQ(midi_of(via_lines), in);
  }
}

TEST(JmidMidi, StrayAndUndefinedBytesAreCountedAndSkipped) {
  MidiParser p;
  auto events = parse_all(Bytes{0x01, 0x02, 0xF4, 0x90, 0xF9, 60, 0xF5, 100, 0xFD, 0xF7}, p);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kNoteOn);
  EXPECT_EQ(events[0].data1, 60);
  EXPECT_EQ(events[0].data2, 100);
  EXPECT_EQ(p.stray_bytes(), 7u);  // 01 02 F4 F9 F5 FD F7
  // An unfinished message's data bytes are stray once a new status arrives.
  events = parse_all(Bytes{0x90, 60, 0x80, 60, 0}, p);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kNoteOff);
  EXPECT_EQ(p.stray_bytes(), 8u);
  p.reset();
  EXPECT_EQ(p.stray_bytes(), 0u);
  EXPECT_TRUE(parse_all(Bytes{60, 100}, p).empty());  // reset forgets running status
  EXPECT_EQ(p.stray_bytes(), 2u);
}

TEST(JmidMidi, SysExEndedByAStatusByteIsClosedAndCounted) {
  MidiParser p;
  auto events = parse_all(Bytes{0xF0, 1, 2, 0x90, 60, 100}, p);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kSysEx);
  EXPECT_TRUE(events[0].sysex_last);
  EXPECT_EQ(events[0].sysex_len, 2);
  EXPECT_EQ(events[1].kind, Kind::kNoteOn);
  EXPECT_EQ(p.stray_bytes(), 1u);
  // One byte, two events: the SysEx is older than the tune request.
  events = parse_all(Bytes{0xF0, 1, 0xF6}, p);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kSysEx);
  EXPECT_EQ(events[1].kind, Kind::kTuneRequest);
}

TEST(JmidMidi, FromMidiWantsExactlyOneMessage) {
  EXPECT_FALSE(from_midi(Bytes{}).has_value());
  EXPECT_FALSE(from_midi(Bytes{0x90, 60}).has_value());
  EXPECT_FALSE(from_midi(Bytes{0x90, 60, 100, 61, 100}).has_value());
  EXPECT_FALSE(from_midi(Bytes{0x90, 60, 100, 61}).has_value());
  EXPECT_FALSE(from_midi(Bytes{0xF8, 0xF8}).has_value());
  EXPECT_FALSE(from_midi(Bytes{60, 100}).has_value());
  EXPECT_FALSE(from_midi(Bytes{0xF4}).has_value());
  EXPECT_FALSE(from_midi(Bytes{0xF0, 1, 2}).has_value());
  std::mt19937_64 rng(6);
  EXPECT_TRUE(from_midi(sysex_of(256, rng)).has_value());
  auto too_long = from_midi(sysex_of(257, rng));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_NE(too_long.error().message.find("MidiParser"), std::string::npos);
  EXPECT_EQ(too_long.error().code, Errc::kParse);
}

TEST(JmidMidi, ToMidiNeedsRoom) {
  Event e;
  e.kind = Kind::kNoteOn;
  std::uint8_t buf[3];
  EXPECT_EQ(to_midi(e, {buf, 2}), 0u);
  EXPECT_EQ(to_midi(e, {buf, 3}), 3u);
  e.kind = Kind::kSysEx;
  e.sysex_len = 4;
  e.sysex_last = true;
  std::uint8_t big[6];
  EXPECT_EQ(to_midi(e, {big, 5}), 0u);
  EXPECT_EQ(to_midi(e, {big, 6}), 6u);
}

// Random streams: events (SysEx of any length among them) written as bytes,
// realtime bytes sprinkled in anywhere; the parser gives back the same events.
TEST(JmidMidi, RandomStreamsRoundTrip) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    Bytes stream;
    std::vector<Event> expected;
    for (int i = 0; i < 50; ++i) {
      Bytes msg;
      const int pick = static_cast<int>(rng() % 12);
      if (pick == 0) {
        msg = sysex_of(rng() % 700, rng);
      } else {
        static const std::uint8_t statuses[] = {0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0};
        const std::uint8_t st = pick < 8
                                    ? static_cast<std::uint8_t>(statuses[pick - 1] | (rng() % 16))
                                    : std::uint8_t{0xF1} + static_cast<std::uint8_t>(rng() % 3);
        msg.push_back(st);
        const int n =
            (st & 0xF0) == 0xC0 || (st & 0xF0) == 0xD0 || st == 0xF1 || st == 0xF3 ? 1 : 2;
        for (int k = 0; k < n; ++k) msg.push_back(static_cast<std::uint8_t>(rng() % 128));
      }
      for (const auto& e : parse_all(msg)) expected.push_back(e);
      stream.insert(stream.end(), msg.begin(), msg.end());
    }
    ASSERT_EQ(midi_of(expected), stream);
    // Sprinkle realtime bytes.
    Bytes noisy;
    std::vector<Kind> realtime;
    static const std::uint8_t rt[] = {0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF};
    for (auto b : stream) {
      if (rng() % 10 == 0) {
        const auto r = rt[rng() % 6];
        noisy.push_back(r);
        realtime.push_back(from_midi(Bytes{r})->kind);
      }
      noisy.push_back(b);
    }
    MidiParser p;
    std::vector<Event> got, got_rt;
    p.feed(noisy, [&](const Event& e) {
      const bool is_rt = e.kind >= Kind::kClock && e.kind <= Kind::kReset;
      (is_rt ? got_rt : got).push_back(e);
    });
    EXPECT_EQ(p.stray_bytes(), 0u);
    ASSERT_EQ(got, expected);
    ASSERT_EQ(got_rt.size(), realtime.size());
    for (std::size_t i = 0; i < realtime.size(); ++i) EXPECT_EQ(got_rt[i].kind, realtime[i]);
  }
}

TEST(JmidMidi, GarbageNeverCrashesAndEveryEventWritesBack) {
  std::mt19937_64 rng(8);
  MidiParser p;
  std::uint8_t out[kMaxSysExChunk + 2];
  for (int round = 0; round < 200; ++round) {
    Bytes junk(rng() % 2000);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    p.feed(junk, [&](const Event& e) {
      ASSERT_GT(to_midi(e, out), 0u);
      auto back = parse_line(to_line(e));
      ASSERT_TRUE(back.has_value());
      EXPECT_EQ(*back, e);
    });
  }
}

}  // namespace
}  // namespace jamnet::protocol::jmid
