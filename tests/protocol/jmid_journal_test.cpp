// JMID journal and feedback lines, and parse_any's dispatch.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "jamnet/protocol/jmid_journal.hpp"

namespace jamnet::protocol::jmid {
namespace {

JournalLine random_journal(std::mt19937_64& rng) {
  JournalLine j;
  j.channel = static_cast<std::uint8_t>(rng() % 16);
  j.upto_seq = rng();
  j.ts_ns = static_cast<std::int64_t>(rng());
  const int density = static_cast<int>(rng() % 4);  // empty, sparse, dense, full
  for (std::size_t n = 0; n < 128; ++n) {
    const bool on = density == 3 || (density > 0 && rng() % (density == 1 ? 20 : 2) == 0);
    if (on) {
      j.state.notes_on.set(n);
      j.state.velocity[n] = static_cast<std::uint8_t>(rng() % 128);
    }
    if (density == 3 || (density > 0 && rng() % 3 == 0))
      j.state.cc[n] = static_cast<std::int16_t>(rng() % 128);
  }
  j.state.program = static_cast<std::int16_t>(static_cast<int>(rng() % 129) - 1);
  j.state.pitch_bend = static_cast<std::int16_t>(static_cast<int>(rng() % 16384) - 8192);
  j.state.pressure = static_cast<std::int16_t>(static_cast<int>(rng() % 129) - 1);
  return j;
}

void expect_same(const JournalLine& a, const JournalLine& b) {
  EXPECT_EQ(a.channel, b.channel);
  EXPECT_EQ(a.upto_seq, b.upto_seq);
  EXPECT_EQ(a.ts_ns, b.ts_ns);
  EXPECT_TRUE(a.state == b.state);
}

TEST(JmidJournal, CanonicalText) {
  JournalLine j;
  j.channel = 0;
  j.upto_seq = 42;
  j.ts_ns = 123;
  j.state.notes_on.set(60);
  j.state.velocity[60] = 100;
  j.state.notes_on.set(64);
  j.state.velocity[64] = 90;
  j.state.cc[7] = 100;
  j.state.cc[64] = 127;
  j.state.program = 5;
  EXPECT_EQ(
      to_line(j),
      R"({"t":"j","c":1,"upto":42,"ts":123,"on":[60,100,64,90],"cc":[7,100,64,127],"pc":5,"pb":0,"cp":-1})");
  EXPECT_EQ(to_line(JournalLine{}),
            R"({"t":"j","c":1,"upto":0,"ts":0,"on":[],"cc":[],"pc":-1,"pb":0,"cp":-1})");
}

TEST(JmidJournal, RoundTrip) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 2000; ++i) {
    const JournalLine j = random_journal(rng);
    const std::string line = to_line(j);
    ASSERT_LE(line.size(), kMaxJournalLineBytes);
    auto back = parse_any(line);
    ASSERT_TRUE(back.has_value()) << line << ": " << back.error().message;
    ASSERT_TRUE(std::holds_alternative<JournalLine>(*back));
    expect_same(std::get<JournalLine>(*back), j);
    EXPECT_EQ(to_line(std::get<JournalLine>(*back)), line);
  }
}

TEST(JmidJournal, FullStateFitsTheBound) {
  JournalLine j;
  j.channel = 15;
  j.upto_seq = std::numeric_limits<std::uint64_t>::max();
  j.ts_ns = std::numeric_limits<std::int64_t>::min();
  for (std::size_t n = 0; n < 128; ++n) {
    j.state.notes_on.set(n);
    j.state.velocity[n] = 127;
    j.state.cc[n] = 127;
  }
  j.state.program = 127;
  j.state.pitch_bend = -8192;
  j.state.pressure = 127;
  std::string buf(kMaxJournalLineBytes, '\0');
  const std::size_t n = format_journal(j, buf);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(buf.substr(0, n), to_line(j));
  std::string small(n - 1, '\0');
  EXPECT_EQ(format_journal(j, small), 0u);
  std::string exact(n, '\0');
  EXPECT_EQ(format_journal(j, exact), n);
}

TEST(JmidJournal, IsDefault) {
  ChannelState s;
  EXPECT_TRUE(s.is_default());
  s.velocity[3] = 50;  // a leftover velocity of a released note is not state
  EXPECT_TRUE(s.is_default());
  s.cc[1] = 0;
  EXPECT_FALSE(s.is_default());
  s = ChannelState{};
  s.notes_on.set(1);
  EXPECT_FALSE(s.is_default());
  s = ChannelState{};
  s.pitch_bend = 1;
  EXPECT_FALSE(s.is_default());
  s = ChannelState{};
  s.program = 0;
  EXPECT_FALSE(s.is_default());
  s = ChannelState{};
  s.pressure = 0;
  EXPECT_FALSE(s.is_default());
}

TEST(JmidJournal, KeysInAnyOrderAndOptionalState) {
  auto l = parse_any(
      R"( { "cp" : 3, "upto" : 7, "t" : "j", "c" : 2, "on" : [ 1 , 2 ], "future" : [] } )");
  ASSERT_TRUE(l.has_value()) << l.error().message;
  const auto& j = std::get<JournalLine>(*l);
  EXPECT_EQ(j.channel, 1);
  EXPECT_EQ(j.upto_seq, 7u);
  EXPECT_TRUE(j.state.notes_on.test(1));
  EXPECT_EQ(j.state.velocity[1], 2);
  EXPECT_EQ(j.state.pressure, 3);
  EXPECT_EQ(j.state.program, -1);
}

void expect_rejected(const std::string& line, const std::string& why) {
  auto l = parse_any(line);
  ASSERT_FALSE(l.has_value()) << line << " was accepted";
  EXPECT_EQ(l.error().code, Errc::kParse);
  EXPECT_NE(l.error().message.find(why), std::string::npos) << line << " -> " << l.error().message;
}

TEST(JmidJournal, Rejections) {
  expect_rejected(R"({"t":"j","upto":1})", "missing key 'c' for j");
  expect_rejected(R"({"t":"j","c":1})", "missing key 'upto' for j");
  expect_rejected(R"({"t":"j","c":17,"upto":1})", "channel must be 1..16, got 17");
  expect_rejected(R"({"t":"j","c":1,"upto":-1})", "'upto' must be an unsigned");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"on":[60]})", "pairs");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"on":[128,1]})", "note must be 0..127, got 128");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"on":[1,128]})", "velocity must be 0..127, got 128");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"on":[1,2,1,3]})", "lists note 1 twice");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"on":{}})", "'on' must be an array");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"cc":[1,"x"]})", "integers only");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"cc":[1,200]})",
                  "controller value must be 0..127, got 200");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"pc":128})", "program must be -1..127, got 128");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"pb":9000})",
                  "pitch bend must be -8192..8191, got 9000");
  expect_rejected(R"({"t":"j","c":1,"upto":1,"cp":-2})",
                  "channel pressure must be -1..127, got -2");
  expect_rejected(R"({"t":"j","c":1,"c":1,"upto":1})", "duplicate key 'c'");
  expect_rejected(R"({"t":"fb","rx":1})", "missing key 'loss' for fb");
  expect_rejected(R"({"t":"fb","loss":1.5})", "loss must be 0..1");
  expect_rejected(R"({"t":"fb","loss":"x"})", "'loss' must be a number");
  expect_rejected(R"({"t":"fb","loss":0.1,"rx":-1})", "'rx' must be an unsigned");
  expect_rejected(R"({"t":"fb","loss":0.1,"loss":0.2})", "duplicate key 'loss'");
  expect_rejected(R"({"t":"zz"})", "unknown type 'zz'");
  expect_rejected(R"({"x":1})", "missing key 't'");
  expect_rejected(R"({"t":1})", "'t' must be a string");
  expect_rejected("nope", "not valid JSON");
}

TEST(JmidFeedback, RoundTrip) {
  for (double loss : {0.0, 1.0, 0.2031, 1e-9, 0.1 + 0.2, 0.999999999999}) {
    const Feedback f{loss, 812, 207};
    const std::string line = to_line(f);
    auto back = parse_any(line);
    ASSERT_TRUE(back.has_value()) << line << ": " << back.error().message;
    const auto& g = std::get<Feedback>(*back);
    EXPECT_EQ(g.loss, loss) << line;
    EXPECT_EQ(g.received, 812u);
    EXPECT_EQ(g.lost, 207u);
  }
  EXPECT_EQ(to_line(Feedback{0.2031, 812, 207}), R"({"t":"fb","loss":0.2031,"rx":812,"lost":207})");
  // Values no receiver can measure are clamped, so the line still parses.
  EXPECT_EQ(std::get<Feedback>(*parse_any(to_line(Feedback{std::nan(""), 1, 2}))).loss, 0.0);
  EXPECT_EQ(std::get<Feedback>(*parse_any(to_line(Feedback{7.0, 1, 2}))).loss, 1.0);
}

TEST(JmidParseAny, DispatchesOnType) {
  auto e = parse_any(R"({"t":"n+","c":1,"n":60,"v":100,"ts":1,"seq":2})");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(std::holds_alternative<Event>(*e));
  auto e2 = parse_any(R"({ "seq":2, "t":"cc","c":1,"n":60,"v":100 })");
  ASSERT_TRUE(e2.has_value()) << e2.error().message;
  EXPECT_EQ(std::get<Event>(*e2).kind, Kind::kControlChange);
  EXPECT_TRUE(std::holds_alternative<Feedback>(*parse_any(R"({"loss":0,"t":"fb"})")));
  EXPECT_TRUE(std::holds_alternative<JournalLine>(*parse_any(R"({"c":1,"upto":3,"t":"j"})")));
}

TEST(JmidParseAny, GarbageNeverCrashes) {
  std::mt19937_64 rng(10);
  for (int i = 0; i < 300; ++i) {
    const std::string line = to_line(random_journal(rng));
    for (std::size_t n = 0; n < line.size(); n += 1 + rng() % 7)
      EXPECT_FALSE(parse_any(std::string_view(line).substr(0, n)).has_value());
    for (int m = 0; m < 20; ++m) {
      std::string bad = line;
      bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
      auto l = parse_any(bad);
      if (!l) {
        EXPECT_FALSE(l.error().message.empty());
      }
    }
  }
}

}  // namespace
}  // namespace jamnet::protocol::jmid
