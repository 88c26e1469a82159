// JMID event lines: canonical writer, fast path, general path, rejections.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "../../src/protocol/jmid_detail.hpp"  // parse_canonical: to prove the fast path really takes canonical lines
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::protocol::jmid {
namespace {

std::optional<Event> fast_path(std::string_view line) {
  Event e;
  if (detail::parse_canonical(line, e)) return e;
  return std::nullopt;
}

Event make(Kind k) {
  Event e;
  e.kind = k;
  e.ts_ns = 1234567;
  e.seq = 42;
  return e;
}

std::int64_t random_ts(std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0:
      return 0;
    case 1:
      return std::numeric_limits<std::int64_t>::min();
    case 2:
      return std::numeric_limits<std::int64_t>::max();
    case 3:
      return -static_cast<std::int64_t>(rng() % 1'000'000'000);
    default:
      return static_cast<std::int64_t>(rng() >> 1);
  }
}

std::uint64_t random_seq(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return 0;
    case 1:
      return std::numeric_limits<std::uint64_t>::max();
    case 2:
      return rng() % 1000;
    default:
      return rng();
  }
}

// A valid event with only the fields its kind uses set (the rest stay default).
Event random_event(std::mt19937_64& rng) {
  Event e;
  e.kind = static_cast<Kind>(rng() % kKindCount);
  e.ts_ns = random_ts(rng);
  e.seq = random_seq(rng);
  const auto d7 = [&] { return static_cast<std::uint8_t>(rng() % 128); };
  switch (e.kind) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
    case Kind::kPolyPressure:
    case Kind::kControlChange:
      e.channel = static_cast<std::uint8_t>(rng() % 16);
      e.data1 = d7();
      e.data2 = d7();
      break;
    case Kind::kProgramChange:
    case Kind::kChannelPressure:
      e.channel = static_cast<std::uint8_t>(rng() % 16);
      e.data1 = d7();
      break;
    case Kind::kPitchBend:
      e.channel = static_cast<std::uint8_t>(rng() % 16);
      e.value14 = static_cast<std::int16_t>(static_cast<int>(rng() % 16384) - 8192);
      break;
    case Kind::kTimeCode:
    case Kind::kSongSelect:
      e.data1 = d7();
      break;
    case Kind::kSongPosition:
      e.value14 = static_cast<std::int16_t>(rng() % 16384);
      break;
    case Kind::kSysEx:
      e.sysex_index = static_cast<std::uint16_t>(rng() % 3 == 0 ? 0 : rng() % 65536);
      e.sysex_last = (rng() & 1) != 0;
      e.sysex_len = static_cast<std::uint16_t>(rng() % 4 == 0 ? kMaxSysExChunk
                                                              : rng() % (kMaxSysExChunk + 1));
      for (std::size_t i = 0; i < e.sysex_len; ++i) e.sysex[i] = d7();
      break;
    default:
      break;
  }
  return e;
}

// The same event written the way a person or another program might: keys
// shuffled, whitespace everywhere, unknown keys, upper-case hex.
std::string scrambled_line(const Event& e, std::mt19937_64& rng) {
  std::vector<std::pair<std::string, std::string>> kv;
  kv.emplace_back("t", "\"" + std::string(type_name(e.kind)) + "\"");
  const auto s = [](auto v) { return std::to_string(v); };
  switch (e.kind) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
    case Kind::kPolyPressure:
    case Kind::kControlChange:
      kv.emplace_back("c", s(e.channel + 1));
      kv.emplace_back("n", s(e.data1));
      kv.emplace_back("v", s(e.data2));
      break;
    case Kind::kProgramChange:
    case Kind::kChannelPressure:
      kv.emplace_back("c", s(e.channel + 1));
      kv.emplace_back("v", s(e.data1));
      break;
    case Kind::kPitchBend:
      kv.emplace_back("c", s(e.channel + 1));
      kv.emplace_back("v", s(e.value14));
      break;
    case Kind::kTimeCode:
    case Kind::kSongSelect:
      kv.emplace_back("v", s(e.data1));
      break;
    case Kind::kSongPosition:
      kv.emplace_back("v", s(e.value14));
      break;
    case Kind::kSysEx: {
      kv.emplace_back("i", s(e.sysex_index));
      kv.emplace_back("l", s(e.sysex_last ? 1 : 0));
      std::string d;
      const char* digits = (rng() & 1) ? "0123456789ABCDEF" : "0123456789abcdef";
      for (std::size_t i = 0; i < e.sysex_len; ++i) {
        d += digits[e.sysex[i] >> 4];
        d += digits[e.sysex[i] & 15];
      }
      kv.emplace_back("d", "\"" + d + "\"");
      break;
    }
    default:
      break;
  }
  kv.emplace_back("ts", s(e.ts_ns));
  kv.emplace_back("seq", s(e.seq));
  if (rng() % 2) kv.emplace_back("x_future", "{\"a\":[1,2.5,null,\"z\"]}");
  if (rng() % 2) kv.emplace_back("note", "\"unknown keys are ignored\"");
  std::shuffle(kv.begin(), kv.end(), rng);
  const auto ws = [&] {
    static const char* kWs[] = {"", " ", "  ", "\t", "\n", " \r\n "};
    return std::string(kWs[rng() % 6]);
  };
  std::string line = ws() + "{";
  for (std::size_t i = 0; i < kv.size(); ++i) {
    if (i) line += ws() + ",";
    line += ws() + "\"" + kv[i].first + "\"" + ws() + ":" + ws() + kv[i].second;
  }
  return line + ws() + "}" + ws();
}

TEST(JmidLine, CanonicalTextOfEveryKind) {
  Event e = make(Kind::kNoteOn);
  e.channel = 0, e.data1 = 60, e.data2 = 100;
  EXPECT_EQ(to_line(e), R"({"t":"n+","c":1,"n":60,"v":100,"ts":1234567,"seq":42})");
  e.kind = Kind::kNoteOff, e.channel = 15, e.data2 = 0;
  EXPECT_EQ(to_line(e), R"({"t":"n-","c":16,"n":60,"v":0,"ts":1234567,"seq":42})");
  e.kind = Kind::kPolyPressure;
  EXPECT_EQ(to_line(e), R"({"t":"pp","c":16,"n":60,"v":0,"ts":1234567,"seq":42})");
  e.kind = Kind::kControlChange, e.data1 = 7, e.data2 = 127;
  EXPECT_EQ(to_line(e), R"({"t":"cc","c":16,"n":7,"v":127,"ts":1234567,"seq":42})");
  e.kind = Kind::kProgramChange, e.data1 = 5;
  EXPECT_EQ(to_line(e), R"({"t":"pc","c":16,"v":5,"ts":1234567,"seq":42})");
  e.kind = Kind::kChannelPressure;
  EXPECT_EQ(to_line(e), R"({"t":"cp","c":16,"v":5,"ts":1234567,"seq":42})");
  e.kind = Kind::kPitchBend, e.value14 = -8192;
  EXPECT_EQ(to_line(e), R"({"t":"pb","c":16,"v":-8192,"ts":1234567,"seq":42})");
  e.kind = Kind::kTimeCode, e.data1 = 0x71;
  EXPECT_EQ(to_line(e), R"({"t":"mtc","v":113,"ts":1234567,"seq":42})");
  e.kind = Kind::kSongPosition, e.value14 = 16383;
  EXPECT_EQ(to_line(e), R"({"t":"spp","v":16383,"ts":1234567,"seq":42})");
  e.kind = Kind::kSongSelect, e.data1 = 3;
  EXPECT_EQ(to_line(e), R"({"t":"ss","v":3,"ts":1234567,"seq":42})");
  const std::pair<Kind, const char*> bare[] = {
      {Kind::kTuneRequest, "tr"}, {Kind::kClock, "clk"}, {Kind::kStart, "start"},
      {Kind::kContinue, "cont"},  {Kind::kStop, "stop"}, {Kind::kActiveSensing, "as"},
      {Kind::kReset, "rst"}};
  for (auto [k, name] : bare) {
    EXPECT_EQ(to_line(make(k)), std::string(R"({"t":")") + name + R"(","ts":1234567,"seq":42})");
    EXPECT_EQ(type_name(k), name);
    EXPECT_FALSE(is_channel_message(k));
  }
  e = make(Kind::kSysEx);
  e.sysex_index = 0, e.sysex_last = true, e.sysex_len = 4;
  e.sysex[0] = 0x7E, e.sysex[1] = 0x7F, e.sysex[2] = 0x09, e.sysex[3] = 0x01;
  EXPECT_EQ(to_line(e), R"({"t":"sx","i":0,"l":1,"d":"7e7f0901","ts":1234567,"seq":42})");
  e.sysex_len = 0, e.sysex_last = false, e.sysex_index = 65535;
  EXPECT_EQ(to_line(e), R"({"t":"sx","i":65535,"l":0,"d":"","ts":1234567,"seq":42})");
  EXPECT_TRUE(is_channel_message(Kind::kNoteOn));
  EXPECT_TRUE(is_channel_message(Kind::kPitchBend));
  EXPECT_FALSE(is_channel_message(Kind::kSysEx));
}

TEST(JmidLine, RoundTripIsByteIdenticalForEveryKind) {
  std::mt19937_64 rng(1);
  std::vector<int> seen(kKindCount, 0);
  for (int i = 0; i < 20000; ++i) {
    const Event e = random_event(rng);
    ++seen[static_cast<std::size_t>(e.kind)];
    const std::string line = to_line(e);
    ASSERT_LE(line.size(), kMaxLineBytes);
    auto back = parse_line(line);
    ASSERT_TRUE(back.has_value()) << line << ": " << back.error().message;
    EXPECT_EQ(*back, e) << line;
    EXPECT_EQ(to_line(*back), line);
  }
  for (std::size_t k = 0; k < kKindCount; ++k)
    EXPECT_GT(seen[k], 0) << type_name(static_cast<Kind>(k));
}

TEST(JmidLine, FastPathTakesEveryCanonicalLineAndAgreesWithGeneral) {
  std::mt19937_64 rng(2);
  for (int i = 0; i < 20000; ++i) {
    const Event e = random_event(rng);
    const std::string line = to_line(e);
    auto fast = fast_path(line);
    ASSERT_TRUE(fast.has_value()) << "fast path fell back on a canonical line: " << line;
    auto general = parse_line_general(line);
    ASSERT_TRUE(general.has_value()) << line << ": " << general.error().message;
    EXPECT_EQ(*fast, *general) << line;
    EXPECT_EQ(*fast, e) << line;
  }
}

TEST(JmidLine, GeneralPathReadsAnyKeyOrderWhitespaceAndUnknownKeys) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const Event e = random_event(rng);
    const std::string line = scrambled_line(e, rng);
    auto viaparse = parse_line(line);
    ASSERT_TRUE(viaparse.has_value()) << line << ": " << viaparse.error().message;
    EXPECT_EQ(*viaparse, e) << line;
    auto general = parse_line_general(line);
    ASSERT_TRUE(general.has_value()) << line;
    EXPECT_EQ(*general, e) << line;
    EXPECT_EQ(to_line(*viaparse), to_line(e));
  }
}

TEST(JmidLine, TsAndSeqAreOptional) {
  auto e = parse_line(R"({"t":"clk"})");
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_EQ(e->kind, Kind::kClock);
  EXPECT_EQ(e->ts_ns, 0);
  EXPECT_EQ(e->seq, 0u);
}

TEST(JmidLine, NonCanonicalButValidFormsFallBackAndParse) {
  const char* lines[] = {
      R"({"t":"pb","c":1,"v":-0,"ts":0,"seq":0})",
      R"({"t":"sx","i":0,"l":1,"d":"7E7F","ts":0,"seq":0})",
      R"({"t":"n+","c":1,"n":60,"v":100,"ts":1,"seq":2}   )",
      R"({"t":"n\u002b","c":1,"n":60,"v":100,"ts":1,"seq":2})",
      R"({"t":"n+","c":1,"n":60,"v":100,"seq":2,"ts":1})",
      R"({"t":"n+","c":1,"n":60,"v":100,"ts":1,"seq":2,"extra":true})",
  };
  for (const char* l : lines) {
    EXPECT_FALSE(fast_path(l).has_value()) << l;
    auto e = parse_line(l);
    EXPECT_TRUE(e.has_value()) << l << ": " << e.error().message;
  }
  EXPECT_EQ(parse_line(lines[3])->kind, Kind::kNoteOn);
  EXPECT_EQ(parse_line(lines[1])->sysex[0], 0x7E);
}

void expect_rejected(const std::string& line, const std::string& why) {
  auto e = parse_line(line);
  ASSERT_FALSE(e.has_value()) << line << " was accepted";
  EXPECT_EQ(e.error().code, Errc::kParse);
  EXPECT_NE(e.error().message.find(why), std::string::npos) << line << " -> " << e.error().message;
  EXPECT_EQ(e.error().message.rfind("jmid: ", 0), 0u) << e.error().message;
  auto g = parse_line_general(line);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().message, e.error().message);
}

TEST(JmidLine, EveryRangeViolationIsRejectedWithAReason) {
  expect_rejected(R"({"t":"n+","c":17,"n":60,"v":100,"ts":0,"seq":0})",
                  "channel must be 1..16, got 17");
  expect_rejected(R"({"t":"n+","c":0,"n":60,"v":100,"ts":0,"seq":0})",
                  "channel must be 1..16, got 0");
  expect_rejected(R"({"t":"n+","c":1,"n":128,"v":100,"ts":0,"seq":0})",
                  "note must be 0..127, got 128");
  expect_rejected(R"({"t":"n-","c":1,"n":-1,"v":100,"ts":0,"seq":0})",
                  "note must be 0..127, got -1");
  expect_rejected(R"({"t":"n+","c":1,"n":60,"v":128,"ts":0,"seq":0})",
                  "velocity must be 0..127, got 128");
  expect_rejected(R"({"t":"pp","c":1,"n":60,"v":200,"ts":0,"seq":0})",
                  "pressure must be 0..127, got 200");
  expect_rejected(R"({"t":"cc","c":1,"n":300,"v":1,"ts":0,"seq":0})",
                  "controller must be 0..127, got 300");
  expect_rejected(R"({"t":"cc","c":1,"n":3,"v":999,"ts":0,"seq":0})",
                  "value must be 0..127, got 999");
  expect_rejected(R"({"t":"pc","c":1,"v":128,"ts":0,"seq":0})", "program must be 0..127, got 128");
  expect_rejected(R"({"t":"cp","c":1,"v":128,"ts":0,"seq":0})", "pressure must be 0..127, got 128");
  expect_rejected(R"({"t":"pb","c":1,"v":8192,"ts":0,"seq":0})",
                  "pitch bend must be -8192..8191, got 8192");
  expect_rejected(R"({"t":"pb","c":1,"v":-8193,"ts":0,"seq":0})",
                  "pitch bend must be -8192..8191, got -8193");
  expect_rejected(R"({"t":"spp","v":16384,"ts":0,"seq":0})",
                  "song position must be 0..16383, got 16384");
  expect_rejected(R"({"t":"spp","v":-1,"ts":0,"seq":0})", "song position must be 0..16383, got -1");
  expect_rejected(R"({"t":"mtc","v":128,"ts":0,"seq":0})",
                  "MTC quarter-frame byte must be 0..127, got 128");
  expect_rejected(R"({"t":"ss","v":128,"ts":0,"seq":0})", "song number must be 0..127, got 128");
  expect_rejected(R"({"t":"sx","i":65536,"l":1,"d":"","ts":0,"seq":0})",
                  "must be 0..65535, got 65536");
  expect_rejected(R"({"t":"sx","i":0,"l":2,"d":"","ts":0,"seq":0})", "must be 0..1, got 2");
  expect_rejected(R"({"t":"sx","i":0,"l":1,"d":"7e8","ts":0,"seq":0})", "odd number of hex digits");
  expect_rejected(R"({"t":"sx","i":0,"l":1,"d":"7e80","ts":0,"seq":0})", "not a 7-bit data byte");
  expect_rejected(R"({"t":"sx","i":0,"l":1,"d":"7g","ts":0,"seq":0})", "not a hex digit");
  expect_rejected(R"({"t":"sx","i":0,"l":1,"d":7,"ts":0,"seq":0})", "'d' must be a string");
  expect_rejected(R"({"t":"sx","i":0,"l":1,"d":")" + std::string(2 * kMaxSysExChunk + 2, '0') +
                      R"(","ts":0,"seq":0})",
                  "257 bytes, more than 256 per chunk");
  expect_rejected(R"({"t":"xx","ts":0,"seq":0})", "unknown type 'xx'");
  expect_rejected(R"({"t":7})", "'t' must be a string");
  expect_rejected(R"({"c":1})", "missing key 't'");
  expect_rejected(R"({"t":"n+","c":1,"v":100,"ts":0,"seq":0})", "missing key 'n' for n+");
  expect_rejected(R"({"t":"n+","n":1,"v":100})", "missing key 'c' for n+");
  expect_rejected(R"({"t":"pc","c":1})", "missing key 'v' for pc");
  expect_rejected(R"({"t":"sx","i":0,"d":""})", "missing key 'l' for sx");
  expect_rejected(R"({"t":"n+","c":1,"n":60.5,"v":100})", "'n' must be an integer");
  expect_rejected(R"({"t":"n+","c":"1","n":60,"v":100})", "'c' must be an integer");
  expect_rejected(R"({"t":"n+","c":1,"n":60,"v":100,"ts":9223372036854775808})",
                  "'ts' must be a signed 64-bit");
  expect_rejected(R"({"t":"n+","c":1,"n":60,"v":100,"seq":-1})",
                  "'seq' must be an unsigned 64-bit");
  expect_rejected(R"({"t":"n+","c":1,"c":2,"n":60,"v":100})", "duplicate key 'c'");
  expect_rejected(R"({"t":"n+","t":"n-","c":1,"n":60,"v":100})", "duplicate key 't'");
  expect_rejected(R"({"t":"j","c":1,"upto":1})", "not an event");
  expect_rejected(R"([1,2])", "must be a JSON object");
  expect_rejected(R"({"t":"n+",)", "not valid JSON");
  expect_rejected("", "not valid JSON");
  expect_rejected(std::string(70000, ' '), "line too long");
}

TEST(JmidLine, FormatLineNeedsRoomAndNeverOverruns) {
  Event e = make(Kind::kNoteOn);
  e.data1 = 60, e.data2 = 100;
  const std::string line = to_line(e);
  std::vector<char> buf(line.size() + 8, '#');
  EXPECT_EQ(format_line(e, {buf.data(), line.size() - 1}), 0u);
  EXPECT_EQ(buf[0], '#');
  EXPECT_EQ(format_line(e, {buf.data(), line.size()}), line.size());
  EXPECT_EQ(std::string(buf.data(), line.size()), line);
  EXPECT_EQ(buf[line.size()], '#');
  // The longest line there is fits kMaxLineBytes.
  Event sx = make(Kind::kSysEx);
  sx.sysex_index = 65535, sx.sysex_last = true, sx.sysex_len = kMaxSysExChunk;
  sx.ts_ns = std::numeric_limits<std::int64_t>::min();
  sx.seq = std::numeric_limits<std::uint64_t>::max();
  std::vector<char> big(kMaxLineBytes);
  const std::size_t n = format_line(sx, big);
  EXPECT_GT(n, 2 * kMaxSysExChunk);
  EXPECT_LE(n, kMaxLineBytes);
}

TEST(JmidLine, OutOfRangeEventsAreClampedSoTheLineStillParses) {
  Event e = make(Kind::kPitchBend);
  e.channel = 200;  // not 0..15
  e.value14 = 9000;
  auto back = parse_line(to_line(e));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->value14, 8191);
  Event sx = make(Kind::kSysEx);
  sx.sysex_len = 1000;
  sx.sysex[0] = 0xF0;
  back = parse_line(to_line(sx));
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->sysex_len, kMaxSysExChunk);
}

TEST(JmidLine, EqualityComparesOnlyWhatTheKindUses) {
  Event a = make(Kind::kProgramChange), b = a;
  b.data2 = 99;      // unused by pc
  b.value14 = 1234;  // unused by pc
  b.sysex[5] = 1;    // unused by pc
  EXPECT_EQ(a, b);
  b.data1 = 1;
  EXPECT_NE(a, b);
  Event s = make(Kind::kSysEx), t = s;
  s.sysex_len = t.sysex_len = 2;
  t.sysex[2] = 9;  // beyond the length
  EXPECT_EQ(s, t);
  t.sysex[1] = 9;
  EXPECT_NE(s, t);
  Event c = make(Kind::kClock), d = c;
  d.seq = 43;
  EXPECT_NE(c, d);
}

TEST(JmidLine, GarbageNeverCrashes) {
  std::mt19937_64 rng(4);
  // Every prefix and every one-byte mutation of valid lines.
  for (int i = 0; i < 300; ++i) {
    const std::string line = to_line(random_event(rng));
    for (std::size_t n = 0; n < line.size(); ++n) {
      // A strict prefix of an object is never a whole object.
      EXPECT_FALSE(parse_line(std::string_view(line).substr(0, n)).has_value())
          << line.substr(0, n);
    }
    for (int m = 0; m < 40; ++m) {
      std::string bad = line;
      bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
      auto e = parse_line(bad);
      if (e) {  // still valid: then it round-trips
        auto again = parse_line(to_line(*e));
        ASSERT_TRUE(again.has_value());
        EXPECT_EQ(*again, *e);
      } else {
        EXPECT_FALSE(e.error().message.empty());
      }
    }
  }
  // Random bytes, biased towards JSON punctuation.
  const char alphabet[] = "{}[]\":,0123456789-+.etnrsxcvdilqfu \\\x01\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 80, ' ');
    for (auto& ch : s)
      ch = (rng() & 1) ? alphabet[rng() % (sizeof alphabet - 1)] : static_cast<char>(rng() % 256);
    if (rng() % 2) s = "{\"t\":\"" + s;
    auto e = parse_line(s);
    if (e) {
      EXPECT_EQ(*parse_line(to_line(*e)), *e);
    }
  }
}

}  // namespace
}  // namespace jamnet::protocol::jmid
