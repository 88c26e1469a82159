#include "jamnet/sync/transport.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace jamnet::sync {
namespace {

namespace control = protocol::control;

constexpr Nanos kMs = 1'000'000;
constexpr Nanos kSec = 1'000'000'000;

TransportCommandRec cmd(TransportCommand c, Nanos at, const std::string& origin,
                        std::uint64_t seq) {
  TransportCommandRec r;
  r.command = c;
  r.at_ns = at;
  r.origin = origin;
  r.seq = seq;
  return r;
}
TransportCommandRec play(Nanos at, const std::string& o, std::uint64_t seq) {
  return cmd(TransportCommand::kPlay, at, o, seq);
}
TransportCommandRec stop(Nanos at, const std::string& o, std::uint64_t seq) {
  return cmd(TransportCommand::kStop, at, o, seq);
}
TransportCommandRec pause(Nanos at, const std::string& o, std::uint64_t seq) {
  return cmd(TransportCommand::kPause, at, o, seq);
}
TransportCommandRec record(Nanos at, const std::string& o, std::uint64_t seq) {
  return cmd(TransportCommand::kRecord, at, o, seq);
}
TransportCommandRec seek(Nanos at, const std::string& o, std::uint64_t seq, double beats) {
  auto r = cmd(TransportCommand::kSeek, at, o, seq);
  r.position_beats = beats;
  return r;
}
TransportCommandRec tempo(Nanos at, const std::string& o, std::uint64_t seq, double bpm,
                          std::optional<TimeSignature> ts = std::nullopt) {
  auto r = cmd(TransportCommand::kTempo, at, o, seq);
  r.bpm = bpm;
  r.time_signature = ts;
  return r;
}

// Bitwise-equal states (the fold is the same sequence of operations everywhere).
TransportConfig keep_history(Nanos keep) {
  TransportConfig c;
  c.keep_history_ns = keep;
  return c;
}

void expect_same_state(const TransportState& a, const TransportState& b, Nanos t) {
  EXPECT_EQ(a.play, b.play) << "t=" << t;
  EXPECT_EQ(a.position_beats, b.position_beats) << "t=" << t;
  EXPECT_EQ(a.bpm, b.bpm) << "t=" << t;
  EXPECT_EQ(a.time_signature, b.time_signature) << "t=" << t;
}
void expect_close_state(const TransportState& a, const TransportState& b, Nanos t) {
  EXPECT_EQ(a.play, b.play) << "t=" << t;
  EXPECT_NEAR(a.position_beats, b.position_beats, 1e-9) << "t=" << t;
  EXPECT_EQ(a.bpm, b.bpm) << "t=" << t;
  EXPECT_EQ(a.time_signature, b.time_signature) << "t=" << t;
}
void expect_same_snapshot(const control::TransportStateMsg& a,
                          const control::TransportStateMsg& b) {
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.anchor_session_ns, b.anchor_session_ns);
  EXPECT_EQ(a.anchor_position_ms, b.anchor_position_ms);
  EXPECT_EQ(a.bpm, b.bpm);
  EXPECT_EQ(a.time_signature, b.time_signature);
  EXPECT_EQ(a.last_origin, b.last_origin);
  EXPECT_EQ(a.last_seq, b.last_seq);
  EXPECT_EQ(a.last_timestamp, b.last_timestamp);
}

// ------------------------------------------------------------------- BBT

TEST(BbtTest, BeatsToBbtIn44) {
  const TimeSignature ts{4, 4};
  EXPECT_EQ(beats_to_bbt(0, ts), (Bbt{1, 1, 0}));
  EXPECT_EQ(beats_to_bbt(1, ts), (Bbt{1, 2, 0}));
  EXPECT_EQ(beats_to_bbt(3, ts), (Bbt{1, 4, 0}));
  EXPECT_EQ(beats_to_bbt(4, ts), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(4.5, ts), (Bbt{2, 1, 480}));
  EXPECT_EQ(beats_to_bbt(12.25, ts), (Bbt{4, 1, 240}));
  EXPECT_EQ(beats_to_bbt(1.0 / 3.0, ts), (Bbt{1, 1, 320}));
  EXPECT_EQ(beats_to_bbt(1.0 / 960.0, ts), (Bbt{1, 1, 1}));
  // Ticks round down.
  EXPECT_EQ(beats_to_bbt(0.9999, ts), (Bbt{1, 1, 959}));
  EXPECT_EQ(beats_to_bbt(3.99999, ts), (Bbt{1, 4, 959}));
  // Floating error just under an integer counts as the integer.
  EXPECT_EQ(beats_to_bbt(3.9999999999, ts), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(4.0 - 1e-12, ts), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(0.1 + 0.2 + 0.7, ts), (Bbt{1, 2, 0}));
  // Out of domain values give the start.
  EXPECT_EQ(beats_to_bbt(-1, ts), (Bbt{1, 1, 0}));
  EXPECT_EQ(beats_to_bbt(std::numeric_limits<double>::quiet_NaN(), ts), (Bbt{1, 1, 0}));
}

TEST(BbtTest, OtherTimeSignatures) {
  const TimeSignature t34{3, 4}, t78{7, 8}, t68{6, 8};
  EXPECT_EQ(beats_to_bbt(3, t34), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(5.25, t34), (Bbt{2, 3, 240}));
  EXPECT_EQ(beats_to_bbt(2.9999999999, t34), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(6, t78), (Bbt{1, 7, 0}));
  EXPECT_EQ(beats_to_bbt(7, t78), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(13, t78), (Bbt{2, 7, 0}));
  EXPECT_EQ(beats_to_bbt(14, t78), (Bbt{3, 1, 0}));
  EXPECT_EQ(beats_to_bbt(6, t68), (Bbt{2, 1, 0}));
  EXPECT_EQ(beats_to_bbt(11.5, t68), (Bbt{2, 6, 480}));

  EXPECT_DOUBLE_EQ(bbt_to_beats({4, 1, 0}, {4, 4}), 12.0);
  EXPECT_DOUBLE_EQ(bbt_to_beats({2, 3, 480}, t34), 5.5);
  EXPECT_DOUBLE_EQ(bbt_to_beats({3, 7, 240}, t78), 20.25);
  EXPECT_DOUBLE_EQ(bbt_to_beats({2, 1, 0}, t68), 6.0);
}

TEST(BbtTest, RoundTripsThroughBeats) {
  for (TimeSignature ts : {TimeSignature{4, 4}, TimeSignature{3, 4}, TimeSignature{7, 8},
                           TimeSignature{6, 8}, TimeSignature{1, 1}, TimeSignature{64, 32}}) {
    for (std::int64_t bar : {1, 2, 3, 17, 100, 9999, 1'000'000}) {
      for (int beat = 1; beat <= ts.num; ++beat) {
        for (int tick : {0, 1, 239, 320, 480, 641, 958, 959}) {
          const Bbt b{bar, beat, tick};
          EXPECT_EQ(beats_to_bbt(bbt_to_beats(b, ts), ts), b)
              << format_bbt(b) << " in " << ts.num << "/" << ts.den;
        }
      }
    }
  }
}

TEST(BbtTest, ParsesAndFormats) {
  const TimeSignature ts{4, 4};
  EXPECT_EQ(parse_bbt("4", ts).value(), (Bbt{4, 1, 0}));
  EXPECT_EQ(parse_bbt("4.1", ts).value(), (Bbt{4, 1, 0}));
  EXPECT_EQ(parse_bbt("4.1.0", ts).value(), (Bbt{4, 1, 0}));
  EXPECT_EQ(parse_bbt("12.3.959", ts).value(), (Bbt{12, 3, 959}));
  EXPECT_EQ(parse_bbt("1.4", ts).value(), (Bbt{1, 4, 0}));
  EXPECT_EQ(parse_bbt("2.7.100", {7, 8}).value(), (Bbt{2, 7, 100}));
  EXPECT_EQ(format_bbt({4, 1, 0}), "4.1.0");
  EXPECT_EQ(format_bbt({123456789012, 7, 959}), "123456789012.7.959");
  for (Bbt b : {Bbt{1, 1, 0}, Bbt{4, 2, 480}, Bbt{99, 4, 959}}) {
    EXPECT_EQ(parse_bbt(format_bbt(b), ts).value(), b);
  }
}

void expect_parse_error(std::string_view text, TimeSignature ts, const std::string& message,
                        Errc code) {
  auto r = parse_bbt(text, ts);
  ASSERT_FALSE(r.has_value()) << "'" << text << "' parsed";
  EXPECT_EQ(r.error().message, message) << "'" << text << "'";
  EXPECT_EQ(r.error().code, code) << "'" << text << "'";
}

TEST(BbtTest, ParseErrorsNameTheBadPart) {
  const TimeSignature ts{4, 4};
  expect_parse_error("0.1.0", ts, "bar must be >= 1", Errc::kInvalidArgument);
  expect_parse_error("-3", ts, "bar must be >= 1", Errc::kInvalidArgument);
  expect_parse_error("4.5.0", ts, "beat 5 is outside 1..4 in 4/4", Errc::kInvalidArgument);
  expect_parse_error("4.0", ts, "beat 0 is outside 1..4 in 4/4", Errc::kInvalidArgument);
  expect_parse_error("4.4.0", {3, 4}, "beat 4 is outside 1..3 in 3/4", Errc::kInvalidArgument);
  expect_parse_error("2.8", {7, 8}, "beat 8 is outside 1..7 in 7/8", Errc::kInvalidArgument);
  expect_parse_error("4.1.960", ts, "tick must be 0..959", Errc::kInvalidArgument);
  expect_parse_error("4.1.-1", ts, "tick must be 0..959", Errc::kInvalidArgument);
  expect_parse_error("x", ts, "not a number: 'x'", Errc::kParse);
  expect_parse_error("4.x.0", ts, "not a number: 'x'", Errc::kParse);
  expect_parse_error("4.1.0x", ts, "not a number: '0x'", Errc::kParse);
  expect_parse_error("", ts, "not a number: ''", Errc::kParse);
  expect_parse_error("4.", ts, "not a number: ''", Errc::kParse);
  expect_parse_error("4..0", ts, "not a number: ''", Errc::kParse);
  expect_parse_error(" 4", ts, "not a number: ' 4'", Errc::kParse);
  expect_parse_error("+4", ts, "not a number: '+4'", Errc::kParse);
  expect_parse_error("4.1.0 ", ts, "not a number: '0 '", Errc::kParse);
  expect_parse_error("1.5e3", ts, "not a number: '5e3'", Errc::kParse);
  auto r = parse_bbt("4.1.0.0", ts);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("too many parts"), std::string::npos) << r.error().message;
  auto big = parse_bbt("99999999999999999999999", ts);
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().message.find("out of range"), std::string::npos) << big.error().message;
}

TEST(BbtTest, PlayStateNames) {
  for (PlayState s :
       {PlayState::kStopped, PlayState::kPlaying, PlayState::kPaused, PlayState::kRecording}) {
    EXPECT_EQ(play_state_from(to_string(s)), s);
  }
  EXPECT_EQ(to_string(PlayState::kRecording), "recording");
  EXPECT_FALSE(play_state_from("Playing").has_value());
  EXPECT_FALSE(play_state_from("").has_value());
}

// -------------------------------------------------------------- sequences

TEST(TransportTest, CommandOrderIsAtThenOriginThenSeq) {
  EXPECT_TRUE(command_before(play(1, "b", 9), play(2, "a", 1)));
  EXPECT_FALSE(command_before(play(2, "a", 1), play(1, "b", 9)));
  EXPECT_TRUE(command_before(play(5, "a", 9), stop(5, "b", 1)));
  EXPECT_TRUE(command_before(play(5, "a", 1), stop(5, "a", 2)));
  EXPECT_FALSE(command_before(play(5, "a", 2), play(5, "a", 2)));
}

TEST(TransportTest, InitialStateIsStoppedAtZero) {
  TransportTimeline tl({.initial_bpm = 100, .initial_time_signature = {3, 4}});
  for (Nanos t : {INT64_MIN, Nanos{-5} * kSec, Nanos{0}, 100 * kSec, INT64_MAX}) {
    auto s = tl.state_at(t);
    EXPECT_EQ(s.play, PlayState::kStopped);
    EXPECT_EQ(s.position_beats, 0.0);
    EXPECT_EQ(s.bpm, 100.0);
    EXPECT_EQ(s.time_signature, (TimeSignature{3, 4}));
  }
}

TEST(TransportTest, PlayAdvancesAtTempo) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  EXPECT_EQ(tl.state_at(500 * kMs).play, PlayState::kStopped);
  EXPECT_EQ(tl.state_at(500 * kMs).position_beats, 0.0);
  EXPECT_EQ(tl.state_at(1 * kSec).play, PlayState::kPlaying);
  EXPECT_EQ(tl.state_at(1 * kSec).position_beats, 0.0);
  EXPECT_DOUBLE_EQ(tl.state_at(3 * kSec).position_beats, 4.0);
  EXPECT_DOUBLE_EQ(tl.state_at(1 * kSec + 250 * kMs).position_beats, 0.5);
  EXPECT_EQ(tl.state_at(3 * kSec).bbt(), (Bbt{2, 1, 0}));
  EXPECT_EQ(tl.state_at(3 * kSec + 125 * kMs).bbt(), (Bbt{2, 1, 240}));
}

TEST(TransportTest, TempoChangeKeepsPositionContinuous) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(tl.apply(tempo(3 * kSec, "a", 2, 60)));
  EXPECT_DOUBLE_EQ(tl.state_at(3 * kSec).position_beats, 4.0);
  EXPECT_EQ(tl.state_at(3 * kSec).bpm, 60.0);
  EXPECT_EQ(tl.state_at(3 * kSec - 1).bpm, 120.0);
  EXPECT_DOUBLE_EQ(tl.state_at(5 * kSec).position_beats, 6.0);
  // With a time signature change the bars follow the new signature.
  ASSERT_TRUE(tl.apply(tempo(5 * kSec, "b", 1, 180, TimeSignature{3, 4})));
  auto s = tl.state_at(6 * kSec);
  EXPECT_DOUBLE_EQ(s.position_beats, 9.0);
  EXPECT_EQ(s.time_signature, (TimeSignature{3, 4}));
  EXPECT_EQ(s.bbt(), (Bbt{4, 1, 0}));
  // A TEMPO without a signature keeps the current one.
  ASSERT_TRUE(tl.apply(tempo(7 * kSec, "b", 2, 120)));
  EXPECT_EQ(tl.state_at(8 * kSec).time_signature, (TimeSignature{3, 4}));
  EXPECT_DOUBLE_EQ(tl.state_at(8 * kSec).position_beats, 12.0 + 2.0);
}

TEST(TransportTest, StopAndPauseKeepPosition) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(tl.apply(stop(2 * kSec, "a", 2)));
  EXPECT_EQ(tl.state_at(10 * kSec).play, PlayState::kStopped);
  EXPECT_DOUBLE_EQ(tl.state_at(10 * kSec).position_beats, 2.0);
  ASSERT_TRUE(tl.apply(play(4 * kSec, "a", 3)));
  EXPECT_DOUBLE_EQ(tl.state_at(5 * kSec).position_beats, 4.0);
  ASSERT_TRUE(tl.apply(pause(5 * kSec, "a", 4)));
  EXPECT_EQ(tl.state_at(9 * kSec).play, PlayState::kPaused);
  EXPECT_DOUBLE_EQ(tl.state_at(9 * kSec).position_beats, 4.0);
  ASSERT_TRUE(tl.apply(record(10 * kSec, "a", 5)));
  EXPECT_EQ(tl.state_at(11 * kSec).play, PlayState::kRecording);
  EXPECT_TRUE(tl.state_at(11 * kSec).moving());
  EXPECT_DOUBLE_EQ(tl.state_at(11 * kSec).position_beats, 6.0);
}

TEST(TransportTest, PlayWhilePlayingDoesNotMovePosition) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(0, "a", 1)));
  ASSERT_TRUE(tl.apply(play(1 * kSec, "b", 1)));
  ASSERT_TRUE(tl.apply(record(1500 * kMs, "b", 2)));
  ASSERT_TRUE(tl.apply(play(1750 * kMs, "b", 3)));
  EXPECT_DOUBLE_EQ(tl.state_at(2 * kSec).position_beats, 4.0);
  EXPECT_EQ(tl.state_at(2 * kSec).play, PlayState::kPlaying);
}

TEST(TransportTest, SeekMovesPositionAndKeepsState) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(seek(500 * kMs, "a", 1, 8)));
  EXPECT_EQ(tl.state_at(1 * kSec).play, PlayState::kStopped);
  EXPECT_EQ(tl.state_at(1 * kSec).position_beats, 8.0);
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 2)));
  ASSERT_TRUE(tl.apply(seek(2 * kSec, "a", 3, 16)));
  EXPECT_DOUBLE_EQ(tl.state_at(2 * kSec - 1).position_beats, 8.0 + 2.0 - 120.0 / 60e9);
  EXPECT_EQ(tl.state_at(2 * kSec).position_beats, 16.0);
  EXPECT_EQ(tl.state_at(2 * kSec).play, PlayState::kPlaying);
  EXPECT_DOUBLE_EQ(tl.state_at(3 * kSec).position_beats, 18.0);
  // Seek to zero while playing ("return to start").
  ASSERT_TRUE(tl.apply(seek(4 * kSec, "a", 4, 0)));
  EXPECT_DOUBLE_EQ(tl.state_at(4500 * kMs).position_beats, 1.0);
}

TEST(TransportTest, SameInstantCommandsFoldInKeyOrder) {
  TransportTimeline tl;
  // Applied in reverse of the key order; "a" < "b" so STOP (b) folds last.
  ASSERT_TRUE(tl.apply(stop(1 * kSec, "b", 1)));
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  EXPECT_EQ(tl.state_at(5 * kSec).play, PlayState::kStopped);
  EXPECT_EQ(tl.state_at(5 * kSec).position_beats, 0.0);
  // Two TEMPOs at once: the later key wins.
  ASSERT_TRUE(tl.apply(tempo(2 * kSec, "b", 2, 90)));
  ASSERT_TRUE(tl.apply(tempo(2 * kSec, "a", 2, 140)));
  EXPECT_EQ(tl.state_at(2 * kSec).bpm, 90.0);
  // Same origin: the larger seq folds last.
  ASSERT_TRUE(tl.apply(tempo(3 * kSec, "a", 4, 70)));
  ASSERT_TRUE(tl.apply(tempo(3 * kSec, "a", 3, 80)));
  EXPECT_EQ(tl.state_at(3 * kSec).bpm, 70.0);
}

TEST(TransportTest, LateCommandLandsInItsPlace) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(tl.apply(tempo(4 * kSec, "a", 2, 60)));
  EXPECT_DOUBLE_EQ(tl.state_at(5 * kSec).position_beats, 7.0);
  EXPECT_EQ(tl.state_at(5 * kSec).play, PlayState::kPlaying);
  // A STOP at 2 s arrives after we have looked at 5 s.
  ASSERT_TRUE(tl.apply(stop(2 * kSec, "b", 1)));
  EXPECT_DOUBLE_EQ(tl.state_at(5 * kSec).position_beats, 2.0);
  EXPECT_EQ(tl.state_at(5 * kSec).play, PlayState::kStopped);
  EXPECT_EQ(tl.state_at(5 * kSec).bpm, 60.0);
  EXPECT_DOUBLE_EQ(tl.state_at(1500 * kMs).position_beats, 1.0);
  // And a late SEEK before it.
  ASSERT_TRUE(tl.apply(seek(1500 * kMs, "c", 1, 32)));
  EXPECT_DOUBLE_EQ(tl.state_at(5 * kSec).position_beats, 33.0);
  EXPECT_EQ(tl.log_size(), 4u);
}

TEST(TransportTest, DuplicatesAreIgnored) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  EXPECT_FALSE(tl.apply(play(1 * kSec, "a", 1)));
  // Same origin and seq with different content is still the same command.
  EXPECT_FALSE(tl.apply(stop(2 * kSec, "a", 1)));
  EXPECT_EQ(tl.ignored(), 2u);
  EXPECT_EQ(tl.log_size(), 1u);
  EXPECT_EQ(tl.state_at(3 * kSec).play, PlayState::kPlaying);
  // The same seq from another origin is a different command.
  EXPECT_TRUE(tl.apply(stop(2 * kSec, "b", 1)));
  EXPECT_EQ(tl.state_at(3 * kSec).play, PlayState::kStopped);
}

TEST(TransportTest, InvalidCommandsAreIgnoredAndCounted) {
  TransportTimeline tl;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<TransportCommandRec> bad = {
      tempo(1, "a", 1, 19.99),
      tempo(1, "a", 2, 999.01),
      tempo(1, "a", 3, nan),
      tempo(1, "a", 4, inf),
      tempo(1, "a", 5, 0),
      tempo(1, "a", 6, 120, TimeSignature{0, 4}),
      tempo(1, "a", 7, 120, TimeSignature{65, 4}),
      tempo(1, "a", 8, 120, TimeSignature{4, 3}),
      tempo(1, "a", 9, 120, TimeSignature{4, 64}),
      tempo(1, "a", 10, 120, TimeSignature{4, 0}),
      seek(1, "a", 11, -1),
      seek(1, "a", 12, nan),
      seek(1, "a", 13, inf),
      play(1, "", 14),
      play(1, "a", 0),
      // Times no clock shows (outside 0..2^60 ns): arithmetic on them could overflow.
      play(INT64_MIN, "z", 1),
      stop(INT64_MAX, "z", 2),
      play(-1, "z", 3),
      play(kMaxWireNs + 1, "z", 4),
  };
  auto bogus = play(1, "a", 16);
  bogus.command = static_cast<TransportCommand>(200);
  bad.push_back(bogus);
  for (const auto& c : bad) EXPECT_FALSE(tl.apply(c)) << "seq " << c.seq;
  EXPECT_EQ(tl.ignored(), bad.size());
  EXPECT_EQ(tl.log_size(), 0u);
  // The edges are valid; so are the extreme plausible times, and bpm fields of non-TEMPO
  // commands are not looked at.
  EXPECT_TRUE(tl.apply(tempo(1, "a", 20, 20)));
  EXPECT_TRUE(tl.apply(tempo(2, "a", 21, 999, TimeSignature{64, 32})));
  EXPECT_TRUE(tl.apply(tempo(3, "a", 22, 60, TimeSignature{1, 1})));
  EXPECT_TRUE(tl.apply(seek(4, "a", 23, 0)));
  EXPECT_TRUE(tl.apply(play(0, "z", 1)));
  EXPECT_TRUE(tl.apply(stop(kMaxWireNs, "z", 2)));
  EXPECT_EQ(tl.ignored(), bad.size());
  EXPECT_EQ(tl.log_size(), 6u);
}

TEST(TransportTest, ExtremeTimesDoNotOverflow) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(0, "a", 1)));
  auto s = tl.state_at(INT64_MAX);
  EXPECT_EQ(s.play, PlayState::kPlaying);
  EXPECT_TRUE(std::isfinite(s.position_beats));
  EXPECT_GT(s.position_beats, 0.0);
  tl.compact(INT64_MIN);  // horizon saturates; nothing to fold
  EXPECT_EQ(tl.log_size(), 1u);
  tl.compact(INT64_MAX);
  EXPECT_EQ(tl.log_size(), 0u);
  EXPECT_EQ(tl.state_at(INT64_MAX).position_beats, s.position_beats);
}

TEST(TransportTest, TheLogIsCappedAndFoldedOriginsToo) {
  TransportTimeline tl;
  // Far-future commands never fold: past kMaxLog waiting ones, new ones are
  // ignored and counted.
  for (std::uint64_t i = 1; i <= TransportTimeline::kMaxLog + 10; ++i)
    (void)tl.apply(play(kMaxWireNs - static_cast<Nanos>(i), "flood", i));
  EXPECT_EQ(tl.log_size(), TransportTimeline::kMaxLog);
  EXPECT_EQ(tl.log_full(), 10u);
  EXPECT_EQ(tl.ignored(), 10u);
  // Folded seqs are remembered for at most kMaxOrigins origins.
  TransportTimeline t2;
  for (std::size_t i = 0; i < TransportTimeline::kMaxOrigins + 5; ++i)
    ASSERT_TRUE(t2.apply(play(static_cast<Nanos>(i + 1), "o" + std::to_string(i), 1)));
  t2.compact(kMaxWireNs);
  EXPECT_EQ(t2.log_size(), 0u);
  EXPECT_EQ(t2.origins_evicted(), 5u);
}

TEST(TransportTest, EventsBetweenGiveStatesAroundEachCommand) {
  TransportTimeline tl;
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(tl.apply(tempo(2 * kSec, "a", 2, 60)));
  ASSERT_TRUE(tl.apply(stop(3 * kSec, "a", 3)));
  auto ev = tl.events_between(1 * kSec, 3 * kSec);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].at_ns, 1 * kSec);
  EXPECT_EQ(ev[0].command.command, TransportCommand::kPlay);
  EXPECT_EQ(ev[0].before.play, PlayState::kStopped);
  EXPECT_EQ(ev[0].after.play, PlayState::kPlaying);
  EXPECT_EQ(ev[0].before.position_beats, 0.0);
  EXPECT_EQ(ev[0].after.position_beats, 0.0);
  EXPECT_EQ(ev[1].command.command, TransportCommand::kTempo);
  EXPECT_EQ(ev[1].before.bpm, 120.0);
  EXPECT_EQ(ev[1].after.bpm, 60.0);
  EXPECT_DOUBLE_EQ(ev[1].before.position_beats, 2.0);
  EXPECT_DOUBLE_EQ(ev[1].after.position_beats, 2.0);
  EXPECT_EQ(ev[1].before.play, PlayState::kPlaying);

  auto all = tl.events_between(0, 10 * kSec);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].at_ns, 3 * kSec);
  EXPECT_EQ(all[2].before.play, PlayState::kPlaying);
  EXPECT_DOUBLE_EQ(all[2].before.position_beats, 3.0);
  EXPECT_EQ(all[2].after.play, PlayState::kStopped);
  EXPECT_DOUBLE_EQ(all[2].after.position_beats, 3.0);

  EXPECT_TRUE(tl.events_between(3 * kSec, 3 * kSec).empty());
  EXPECT_TRUE(tl.events_between(3 * kSec + 1, 10 * kSec).empty());
  auto last = tl.events_between(3 * kSec, 4 * kSec);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].command.command, TransportCommand::kStop);
  EXPECT_DOUBLE_EQ(last[0].before.position_beats, 3.0);

  // Two commands at one instant: the second's "before" is the first's "after".
  ASSERT_TRUE(tl.apply(play(5 * kSec, "a", 4)));
  ASSERT_TRUE(tl.apply(seek(5 * kSec, "b", 1, 10)));
  auto pair = tl.events_between(5 * kSec, 6 * kSec);
  ASSERT_EQ(pair.size(), 2u);
  EXPECT_EQ(pair[0].before.play, PlayState::kStopped);
  EXPECT_EQ(pair[1].before.play, PlayState::kPlaying);
  EXPECT_DOUBLE_EQ(pair[1].before.position_beats, 3.0);
  EXPECT_EQ(pair[1].after.position_beats, 10.0);
}

TEST(TransportTest, SnapshotDescribesLastCommandAtOrBeforeNow) {
  TransportTimeline tl;
  auto empty = tl.snapshot(5 * kSec);
  EXPECT_EQ(empty.state, "stopped");
  EXPECT_EQ(empty.last_seq, 0u);
  EXPECT_EQ(empty.last_origin, "");
  EXPECT_EQ(empty.anchor_session_ns, 0);
  EXPECT_EQ(empty.anchor_position_ms, 0.0);
  EXPECT_EQ(empty.last_timestamp, 5 * kSec);
  EXPECT_EQ(empty.bpm, 120.0);
  EXPECT_EQ(empty.time_signature, (std::array<int, 2>{4, 4}));

  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(tl.apply(tempo(3 * kSec, "b", 1, 60, TimeSignature{6, 8})));
  ASSERT_TRUE(tl.apply(stop(9 * kSec, "a", 2)));
  auto s = tl.snapshot(5 * kSec);
  EXPECT_EQ(s.state, "playing");
  EXPECT_EQ(s.anchor_session_ns, 3 * kSec);
  EXPECT_DOUBLE_EQ(s.anchor_position_ms, 4000.0);  // 4 beats at 60 bpm
  EXPECT_EQ(s.bpm, 60.0);
  EXPECT_EQ(s.time_signature, (std::array<int, 2>{6, 8}));
  EXPECT_EQ(s.last_origin, "b");
  EXPECT_EQ(s.last_seq, 1u);
  EXPECT_EQ(s.last_timestamp, 3 * kSec);
  // The command exactly at `now` is in it.
  EXPECT_EQ(tl.snapshot(9 * kSec).state, "stopped");
  EXPECT_EQ(tl.snapshot(9 * kSec - 1).state, "playing");

  auto pending = tl.pending_after(5 * kSec);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].origin, "a");
  EXPECT_EQ(pending[0].seq, 2u);
  EXPECT_EQ(tl.pending_after(3 * kSec).size(), 1u);
  EXPECT_EQ(tl.pending_after(3 * kSec - 1).size(), 2u);
  EXPECT_TRUE(tl.pending_after(9 * kSec).empty());
}

TEST(TransportTest, SnapshotPositionRoundTripsThroughMilliseconds) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> pos(0, 100000);
  std::uniform_real_distribution<double> bpm(20, 999);
  int exact = 0;
  for (int i = 0; i < 500; ++i) {
    TransportTimeline tl;
    const double p = pos(rng);
    const double b = bpm(rng);
    ASSERT_TRUE(tl.apply(tempo(1 * kSec, "a", 1, b)));
    ASSERT_TRUE(tl.apply(seek(2 * kSec, "a", 2, p)));
    auto s = tl.snapshot(3 * kSec);
    const double back = ms_to_beats(s.anchor_position_ms, s.bpm);
    EXPECT_LT(std::fabs(back - p), 1e-9) << p << " at " << b;
    if (back == p) ++exact;
    TransportTimeline joiner;
    ASSERT_TRUE(joiner.load_snapshot(s));
    EXPECT_NEAR(joiner.state_at(3 * kSec).position_beats, p, 1e-9);
  }
  // Nearly every position survives exactly (the encoder searches neighbouring ms values).
  EXPECT_GT(exact, 400);
}

// ---------------------------------------------------- collision resolution

std::vector<TransportCommandRec> conflicting_commands() {
  return {
      play(1 * kSec, "peer-a", 1),
      stop(1 * kSec, "peer-b", 1),  // same instant as a's PLAY: b folds last
      play(1500 * kMs, "peer-c", 1),
      tempo(2 * kSec, "peer-a", 2, 140),
      tempo(2 * kSec, "peer-c", 2, 90),  // two TEMPOs at once: c wins
      seek(3 * kSec, "peer-b", 2, 8),
      play(3 * kSec, "peer-c", 3),
      record(4 * kSec, "peer-a", 3),
      pause(4 * kSec, "peer-b", 3),
      tempo(4 * kSec, "peer-c", 4, 60, TimeSignature{3, 4}),
      play(5 * kSec, "peer-a", 4),
      stop(7 * kSec, "peer-b", 4),
      seek(7 * kSec, "peer-c", 5, 0),
      tempo(7 * kSec, "peer-a", 5, 100, TimeSignature{7, 8}),
      record(8 * kSec, "peer-a", 6),
      play(8 * kSec, "peer-b", 5),
  };
}

std::vector<Nanos> query_times() {
  std::vector<Nanos> t;
  for (Nanos q = 0; q <= 10 * kSec; q += 125 * kMs) t.push_back(q);
  for (Nanos q : {1 * kSec - 1, 2 * kSec + 1, 4 * kSec - 1, 7 * kSec + 1, 100 * kSec}) {
    t.push_back(q);
  }
  return t;
}

TEST(TransportTest, ConflictingCommandsResolveTheSameEverywhere) {
  const auto cmds = conflicting_commands();
  TransportTimeline reference;
  for (const auto& c : cmds) ASSERT_TRUE(reference.apply(c));

  // The resolved timeline, by hand.
  EXPECT_EQ(reference.state_at(1 * kSec).play, PlayState::kStopped);
  EXPECT_EQ(reference.state_at(2 * kSec).bpm, 90.0);
  EXPECT_DOUBLE_EQ(reference.state_at(2 * kSec).position_beats, 1.0);
  EXPECT_DOUBLE_EQ(reference.state_at(3 * kSec - 1).position_beats, 2.5 - 90.0 / 60e9);
  EXPECT_EQ(reference.state_at(3 * kSec).position_beats, 8.0);
  EXPECT_EQ(reference.state_at(3 * kSec).play, PlayState::kPlaying);
  auto at4 = reference.state_at(4 * kSec);
  EXPECT_EQ(at4.play, PlayState::kPaused);
  EXPECT_DOUBLE_EQ(at4.position_beats, 9.5);
  EXPECT_EQ(at4.bpm, 60.0);
  EXPECT_EQ(at4.time_signature, (TimeSignature{3, 4}));
  auto at6 = reference.state_at(6 * kSec);
  EXPECT_EQ(at6.play, PlayState::kPlaying);
  EXPECT_DOUBLE_EQ(at6.position_beats, 10.5);
  auto at7 = reference.state_at(7 * kSec);
  EXPECT_EQ(at7.play, PlayState::kStopped);  // a's TEMPO after b's STOP and c's SEEK
  EXPECT_EQ(at7.position_beats, 0.0);
  EXPECT_EQ(at7.bpm, 100.0);
  EXPECT_EQ(at7.time_signature, (TimeSignature{7, 8}));
  auto at9 = reference.state_at(9 * kSec);
  EXPECT_EQ(at9.play, PlayState::kPlaying);  // b's PLAY after a's RECORD
  EXPECT_DOUBLE_EQ(at9.position_beats, 100.0 / 60.0);

  const auto times = query_times();
  std::mt19937 rng(20240611);
  for (int perm = 0; perm < 100; ++perm) {
    std::vector<TransportTimeline> peers(3);
    for (auto& peer : peers) {
      auto order = cmds;
      std::shuffle(order.begin(), order.end(), rng);
      for (std::size_t i = 0; i < order.size(); ++i) {
        ASSERT_TRUE(peer.apply(order[i]));
        // Queries in between must not change anything.
        if (i % 5 == 0) (void)peer.state_at(order[i].at_ns + kSec);
      }
      // Some copies arrive twice.
      EXPECT_FALSE(peer.apply(order[perm % order.size()]));
    }
    for (Nanos t : times) {
      const auto want = reference.state_at(t);
      for (const auto& peer : peers) expect_same_state(peer.state_at(t), want, t);
      const auto snap = reference.snapshot(t);
      for (const auto& peer : peers) expect_same_snapshot(peer.snapshot(t), snap);
    }
    if (HasFailure()) {
      ADD_FAILURE() << "permutation " << perm;
      return;
    }
  }
}

TEST(TransportTest, PeersWithDifferentCompactionAgreeAfterTheHorizon) {
  const auto cmds = conflicting_commands();
  TransportTimeline a(keep_history(2 * kSec));
  TransportTimeline b(keep_history(2 * kSec));
  std::mt19937 rng(3);
  auto order = cmds;
  std::shuffle(order.begin(), order.end(), rng);
  for (const auto& c : order) ASSERT_TRUE(a.apply(c));
  std::shuffle(order.begin(), order.end(), rng);
  for (std::size_t i = 0; i < order.size(); ++i) {
    ASSERT_TRUE(b.apply(order[i]));
  }
  b.compact(6 * kSec);  // folds everything before 4 s
  EXPECT_LT(b.log_size(), a.log_size());
  for (Nanos t : query_times()) {
    if (t < 4 * kSec) continue;
    expect_same_state(b.state_at(t), a.state_at(t), t);
    expect_same_snapshot(b.snapshot(t), a.snapshot(t));
  }
}

// -------------------------------------------------------------- compaction

TEST(TransportTest, CompactKeepsFutureStatesIdentical) {
  TransportTimeline tl(keep_history(5 * kSec));
  std::mt19937 rng(11);
  std::uniform_int_distribution<Nanos> at(0, 60'000);
  std::uniform_int_distribution<int> kind(0, 5);
  std::map<std::string, std::uint64_t> seqs;
  const std::vector<std::string> origins = {"o1", "o2", "o3"};
  for (int i = 0; i < 200; ++i) {
    const auto& o = origins[i % 3];
    const auto seq = ++seqs[o];
    const Nanos t = at(rng) * kMs;
    TransportCommandRec c = cmd(static_cast<TransportCommand>(kind(rng)), t, o, seq);
    c.position_beats = static_cast<double>(at(rng) % 200) / 4.0;
    c.bpm = 40.0 + static_cast<double>(at(rng) % 200);
    if (i % 7 == 0) c.time_signature = TimeSignature{3 + i % 5, 8};
    ASSERT_TRUE(tl.apply(c));
  }
  const TransportTimeline before = tl;
  const Nanos now = 30 * kSec;
  tl.compact(now);
  EXPECT_LT(tl.log_size(), before.log_size());
  EXPECT_GT(tl.log_size(), 0u);
  for (Nanos t = 25 * kSec; t <= 70 * kSec; t += 37 * kMs) {
    expect_same_state(tl.state_at(t), before.state_at(t), t);
  }
  for (Nanos t : {25 * kSec, 40 * kSec, 61 * kSec}) {
    expect_same_snapshot(tl.snapshot(t), before.snapshot(t));
    EXPECT_EQ(tl.pending_after(t).size(), before.pending_after(t).size());
  }
  // Compacting again at the same time changes nothing; later folds more.
  const auto n = tl.log_size();
  tl.compact(now);
  EXPECT_EQ(tl.log_size(), n);
  tl.compact(now + 20 * kSec);
  EXPECT_LT(tl.log_size(), n);
  for (Nanos t = 45 * kSec; t <= 70 * kSec; t += 101 * kMs) {
    expect_same_state(tl.state_at(t), before.state_at(t), t);
  }
}

TEST(TransportTest, FoldedCommandsStayKnown) {
  TransportTimeline tl(keep_history(1 * kSec));
  ASSERT_TRUE(tl.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(tl.apply(tempo(2 * kSec, "b", 1, 60)));
  ASSERT_TRUE(tl.apply(stop(10 * kSec, "a", 2)));
  tl.compact(5 * kSec);
  EXPECT_EQ(tl.log_size(), 1u);
  EXPECT_DOUBLE_EQ(tl.state_at(4 * kSec).position_beats, 4.0);
  const auto ignored = tl.ignored();
  // Duplicates of folded commands, and anything ordered before the last folded one.
  EXPECT_FALSE(tl.apply(play(1 * kSec, "a", 1)));
  EXPECT_FALSE(tl.apply(tempo(2 * kSec, "b", 1, 60)));
  EXPECT_FALSE(tl.apply(seek(1500 * kMs, "c", 1, 3)));
  EXPECT_FALSE(tl.apply(seek(2 * kSec, "a", 7, 3)));  // same instant, "a" < "b"
  EXPECT_EQ(tl.ignored(), ignored + 4);
  // After the last folded one is fine.
  EXPECT_TRUE(tl.apply(seek(2 * kSec, "c", 1, 100)));
  EXPECT_DOUBLE_EQ(tl.state_at(3 * kSec).position_beats, 101.0);
}

// -------------------------------------------------------------- late joiner

struct History {
  std::vector<TransportCommandRec> cmds;
};

History random_history(std::uint32_t seed, Nanos until) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<Nanos> at(0, until / kMs);
  std::uniform_int_distribution<int> kind(0, 5);
  std::uniform_int_distribution<int> origin(0, 3);
  const std::vector<std::string> origins = {"0a1b", "5f00", "9c3d", "ffee"};
  std::map<std::string, std::uint64_t> seqs;
  History h;
  for (int i = 0; i < 300; ++i) {
    const auto& o = origins[origin(rng)];
    TransportCommandRec c =
        cmd(static_cast<TransportCommand>(kind(rng)), at(rng) * kMs, o, ++seqs[o]);
    c.position_beats = static_cast<double>(at(rng) % 1000) / 3.0;
    c.bpm = 30.0 + static_cast<double>(at(rng) % 9000) / 10.0;
    if (i % 5 == 0) c.time_signature = TimeSignature{1 + i % 12, 1 << (i % 6)};
    h.cmds.push_back(c);
  }
  return h;
}

TEST(TransportTest, LateJoinerCatchesUpFromSnapshot) {
  for (std::uint32_t seed : {1u, 2u, 3u, 4u}) {
    const auto h = random_history(seed, 60 * kSec);
    TransportTimeline a;
    for (const auto& c : h.cmds) ASSERT_TRUE(a.apply(c));
    const Nanos now = 40 * kSec;
    a.compact(now);
    const auto snap = a.snapshot(now);
    const auto pending = a.pending_after(now);
    ASSERT_FALSE(pending.empty());
    ASSERT_NE(snap.last_seq, 0u);

    // B gets some of the pending commands before the snapshot, the rest after.
    TransportTimeline b;
    for (std::size_t i = 0; i < pending.size(); i += 2) ASSERT_TRUE(b.apply(pending[i]));
    ASSERT_TRUE(b.load_snapshot(snap)) << "seed " << seed;
    for (std::size_t i = 1; i < pending.size(); i += 2) ASSERT_TRUE(b.apply(pending[i]));
    EXPECT_EQ(b.log_size(), pending.size());
    // A second copy of the snapshot (or the same history again) changes nothing.
    EXPECT_FALSE(b.load_snapshot(snap));
    for (const auto& c : h.cmds) {
      if (c.at_ns <= snap.last_timestamp) {
        EXPECT_FALSE(b.apply(c));
      }
    }

    for (Nanos t = now; t <= 70 * kSec; t += 53 * kMs) {
      expect_close_state(b.state_at(t), a.state_at(t), t);
    }
    // New commands reach both.
    const auto more = play(65 * kSec, "ffee", 1000);
    const auto more2 = tempo(66 * kSec, "0a1b", 1000, 77);
    ASSERT_TRUE(a.apply(more));
    ASSERT_TRUE(a.apply(more2));
    ASSERT_TRUE(b.apply(more2));
    ASSERT_TRUE(b.apply(more));
    for (Nanos t = 60 * kSec; t <= 80 * kSec; t += 97 * kMs) {
      expect_close_state(b.state_at(t), a.state_at(t), t);
    }
    auto sa = a.snapshot(70 * kSec), sb = b.snapshot(70 * kSec);
    EXPECT_EQ(sa.last_origin, sb.last_origin);
    EXPECT_EQ(sa.last_seq, sb.last_seq);
    EXPECT_EQ(sa.state, sb.state);
    EXPECT_NEAR(sa.anchor_position_ms, sb.anchor_position_ms, 1e-6);
    if (HasFailure()) return;
  }
}

TEST(TransportTest, PeerThatKnowsMoreKeepsItsState) {
  const auto h = random_history(9, 60 * kSec);
  TransportTimeline a;
  TransportTimeline old_peer;
  for (const auto& c : h.cmds) {
    ASSERT_TRUE(a.apply(c));
    if (c.at_ns <= 20 * kSec) {
      ASSERT_TRUE(old_peer.apply(c));
    }
  }
  const auto old_snap = old_peer.snapshot(20 * kSec);
  const TransportTimeline a_before = a;
  EXPECT_FALSE(a.load_snapshot(old_snap));
  EXPECT_EQ(a.log_size(), a_before.log_size());
  for (Nanos t = 0; t <= 70 * kSec; t += 331 * kMs) {
    expect_same_state(a.state_at(t), a_before.state_at(t), t);
  }
  // Still refused after compaction folded past the snapshot.
  a.compact(45 * kSec);
  EXPECT_FALSE(a.load_snapshot(old_snap));

  // A joiner that loaded a newer snapshot refuses an older one.
  TransportTimeline joiner;
  ASSERT_TRUE(joiner.load_snapshot(a.snapshot(45 * kSec)));
  EXPECT_FALSE(joiner.load_snapshot(old_snap));
  EXPECT_FALSE(joiner.load_snapshot(TransportTimeline{}.snapshot(0)));  // "nothing happened"
  // And adopts a newer one (it has none of the commands since).
  EXPECT_TRUE(joiner.load_snapshot(a.snapshot(55 * kSec)));
  for (const auto& c : a.pending_after(55 * kSec)) ASSERT_TRUE(joiner.apply(c));
  for (Nanos t = 55 * kSec; t <= 70 * kSec; t += 331 * kMs) {
    expect_close_state(joiner.state_at(t), a.state_at(t), t);
  }
  // A joiner that already got the commands after its snapshot knows what a
  // newer snapshot says, and keeps its state.
  TransportTimeline joiner2;
  ASSERT_TRUE(joiner2.load_snapshot(a.snapshot(45 * kSec)));
  for (const auto& c : a.pending_after(45 * kSec)) ASSERT_TRUE(joiner2.apply(c));
  const auto n = joiner2.log_size();
  EXPECT_FALSE(joiner2.load_snapshot(a.snapshot(55 * kSec)));
  EXPECT_EQ(joiner2.log_size(), n);
  for (Nanos t = 45 * kSec; t <= 70 * kSec; t += 331 * kMs) {
    expect_close_state(joiner2.state_at(t), a.state_at(t), t);
  }
}

TEST(TransportTest, SeqOrderNeedNotFollowTimeOrder) {
  // One origin issues seq 1 with a long lead and seq 2 with a short one: seq 2
  // acts first. A joiner whose snapshot ends at seq 2 still takes seq 1.
  TransportTimeline a(keep_history(1 * kSec));
  ASSERT_TRUE(a.apply(play(5 * kSec, "x", 1)));
  ASSERT_TRUE(a.apply(seek(1 * kSec, "x", 2, 16)));
  const auto snap = a.snapshot(2 * kSec);
  EXPECT_EQ(snap.last_seq, 2u);
  const auto pending = a.pending_after(2 * kSec);
  ASSERT_EQ(pending.size(), 1u);
  TransportTimeline b;
  ASSERT_TRUE(b.load_snapshot(snap));
  EXPECT_TRUE(b.apply(pending[0]));
  EXPECT_DOUBLE_EQ(b.state_at(6 * kSec).position_beats, 18.0);
  EXPECT_FALSE(b.apply(seek(3 * kSec, "x", 2, 1)));  // reuses the folded (x, 2)

  // The same after compaction folded seq 2 before seq 1 arrived.
  TransportTimeline c(keep_history(1 * kSec));
  ASSERT_TRUE(c.apply(seek(1 * kSec, "x", 2, 16)));
  c.compact(3 * kSec);
  EXPECT_EQ(c.log_size(), 0u);
  EXPECT_TRUE(c.apply(play(5 * kSec, "x", 1)));
  EXPECT_FALSE(c.apply(stop(6 * kSec, "x", 2)));  // reuses the folded (x, 2)
  for (Nanos t = 2 * kSec; t <= 8 * kSec; t += 250 * kMs) {
    expect_same_state(c.state_at(t), a.state_at(t), t);
  }
}

TEST(TransportTest, SnapshotWithCommandWeLackMergesWithOurLaterCommands) {
  TransportTimeline p;  // knows a command at 2 s that we missed
  ASSERT_TRUE(p.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(p.apply(tempo(2 * kSec, "p", 1, 60)));
  TransportTimeline us;
  ASSERT_TRUE(us.apply(play(1 * kSec, "a", 1)));
  ASSERT_TRUE(us.apply(stop(6 * kSec, "a", 2)));
  ASSERT_TRUE(us.load_snapshot(p.snapshot(3 * kSec)));
  EXPECT_EQ(us.log_size(), 1u);  // the STOP, ordered after the snapshot
  ASSERT_TRUE(p.apply(stop(6 * kSec, "a", 2)));
  for (Nanos t = 2 * kSec; t <= 8 * kSec; t += 250 * kMs) {
    expect_close_state(us.state_at(t), p.state_at(t), t);
  }
  EXPECT_DOUBLE_EQ(us.state_at(8 * kSec).position_beats, 2.0 + 4.0);
  // Commands ordered before the adopted snapshot are refused.
  EXPECT_FALSE(us.apply(seek(1500 * kMs, "z", 1, 3)));
}

TEST(TransportTest, InvalidSnapshotsAreRefused) {
  TransportTimeline src;
  ASSERT_TRUE(src.apply(play(1 * kSec, "a", 1)));
  const auto good = src.snapshot(2 * kSec);
  auto bad_state = good;
  bad_state.state = "rolling";
  auto bad_bpm = good;
  bad_bpm.bpm = 0;
  auto bad_bpm2 = good;
  bad_bpm2.bpm = 1500;
  auto bad_ts = good;
  bad_ts.time_signature = {4, 3};
  auto bad_pos = good;
  bad_pos.anchor_position_ms = std::numeric_limits<double>::quiet_NaN();
  auto bad_key = good;
  bad_key.last_origin = "";
  for (const auto& s : {bad_state, bad_bpm, bad_bpm2, bad_ts, bad_pos, bad_key}) {
    TransportTimeline tl;
    EXPECT_FALSE(tl.load_snapshot(s));
    EXPECT_EQ(tl.state_at(5 * kSec).play, PlayState::kStopped);
  }
  TransportTimeline tl;
  EXPECT_TRUE(tl.load_snapshot(good));
  EXPECT_EQ(tl.state_at(5 * kSec).play, PlayState::kPlaying);
  EXPECT_DOUBLE_EQ(tl.state_at(5 * kSec).position_beats, 8.0);
}

TEST(TransportTest, EmptySnapshotSetsTempoOnlyForAnEmptyPeer) {
  TransportTimeline src({.initial_bpm = 90, .initial_time_signature = {5, 4}});
  const auto snap = src.snapshot(10 * kSec);
  TransportTimeline fresh;
  ASSERT_TRUE(fresh.load_snapshot(snap));
  EXPECT_EQ(fresh.state_at(0).bpm, 90.0);
  EXPECT_EQ(fresh.state_at(0).time_signature, (TimeSignature{5, 4}));
  // Commands at any time are still accepted afterwards.
  EXPECT_TRUE(fresh.apply(play(1 * kSec, "a", 1)));
  EXPECT_DOUBLE_EQ(fresh.state_at(3 * kSec).position_beats, 3.0);

  TransportTimeline busy;
  ASSERT_TRUE(busy.apply(play(1 * kSec, "a", 1)));
  EXPECT_FALSE(busy.load_snapshot(snap));
  EXPECT_EQ(busy.state_at(3 * kSec).bpm, 120.0);
  // A peer whose only commands are still to come takes the tempo.
  TransportTimeline later;
  ASSERT_TRUE(later.apply(play(11 * kSec, "a", 1)));
  EXPECT_TRUE(later.load_snapshot(snap));
  EXPECT_EQ(later.log_size(), 1u);
  EXPECT_DOUBLE_EQ(later.state_at(13 * kSec).position_beats, 3.0);
}

// ----------------------------------------------------------------- messages

TEST(TransportTest, MessagesMapToCommands) {
  control::TransportMsg m;
  m.command = TransportCommand::kSeek;
  m.timestamp = 5 * kSec;
  m.position_ms = 2000;
  m.bpm = 120;
  m.origin = "abc";
  m.seq = 7;
  auto c = from_message(m);
  EXPECT_EQ(c.command, TransportCommand::kSeek);
  EXPECT_EQ(c.at_ns, 5 * kSec);
  EXPECT_DOUBLE_EQ(c.position_beats, 4.0);
  EXPECT_EQ(c.origin, "abc");
  EXPECT_EQ(c.seq, 7u);
  EXPECT_FALSE(c.time_signature.has_value());

  m.command = TransportCommand::kTempo;
  m.bpm = 90;
  m.time_signature = {3, 4};
  c = from_message(m);
  EXPECT_EQ(c.bpm, 90.0);
  ASSERT_TRUE(c.time_signature.has_value());
  EXPECT_EQ(*c.time_signature, (TimeSignature{3, 4}));

  m.command = TransportCommand::kPlay;
  c = from_message(m);
  EXPECT_FALSE(c.time_signature.has_value());
  EXPECT_EQ(c.bpm, 0.0);

  // A SEEK without a usable tempo is refused by apply().
  m.command = TransportCommand::kSeek;
  m.bpm = 0;
  TransportTimeline tl;
  EXPECT_FALSE(tl.apply(from_message(m)));
}

TEST(TransportTest, CommandsMapToMessagesAndBack) {
  TransportState at_send;
  at_send.play = PlayState::kPlaying;
  at_send.position_beats = 6;
  at_send.bpm = 100;
  at_send.time_signature = {7, 8};

  auto m = to_message(seek(3 * kSec, "me", 4, 12.345678), at_send, "master");
  EXPECT_EQ(m.command, TransportCommand::kSeek);
  EXPECT_EQ(m.timestamp, 3 * kSec);
  EXPECT_EQ(m.bpm, 100.0);
  EXPECT_NEAR(m.position_ms, 12.345678 * 600.0, 1e-9);
  EXPECT_EQ(m.time_signature, (std::array<int, 2>{7, 8}));
  EXPECT_EQ(m.master_peer, "master");
  EXPECT_EQ(m.origin, "me");
  EXPECT_EQ(m.seq, 4u);
  auto back = from_message(m);
  EXPECT_NEAR(back.position_beats, 12.345678, 1e-9);
  EXPECT_EQ(back.at_ns, 3 * kSec);

  m = to_message(play(1, "me", 5), at_send, "master");
  EXPECT_EQ(m.bpm, 100.0);
  EXPECT_DOUBLE_EQ(m.position_ms, 3600.0);  // 6 beats at 100 bpm

  m = to_message(tempo(2, "me", 6, 150), at_send, "master");
  EXPECT_EQ(m.bpm, 150.0);
  EXPECT_EQ(m.time_signature, (std::array<int, 2>{7, 8}));
  m = to_message(tempo(2, "me", 6, 150, TimeSignature{3, 4}), at_send, "master");
  EXPECT_EQ(m.time_signature, (std::array<int, 2>{3, 4}));
  back = from_message(m);
  EXPECT_EQ(back.command, TransportCommand::kTempo);
  EXPECT_EQ(back.bpm, 150.0);
  EXPECT_EQ(back.time_signature, (TimeSignature{3, 4}));
}

}  // namespace
}  // namespace jamnet::sync
