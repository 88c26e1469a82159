#include <gtest/gtest.h>

#include <vector>

#include "jamnet/media/jmid/state_tracker.hpp"

namespace jamnet::media::jmid {
namespace {

using protocol::jmid::Kind;

Event ev(Kind kind, int ch, int d1, int d2, std::uint64_t seq) {
  Event e;
  e.kind = kind;
  e.channel = static_cast<std::uint8_t>(ch);
  e.data1 = static_cast<std::uint8_t>(d1);
  e.data2 = static_cast<std::uint8_t>(d2);
  e.seq = seq;
  e.ts_ns = static_cast<std::int64_t>(seq) * 1000;
  return e;
}
Event note_on(int ch, int n, int v, std::uint64_t seq) {
  return ev(Kind::kNoteOn, ch, n, v, seq);
}
Event note_off(int ch, int n, std::uint64_t seq) {
  return ev(Kind::kNoteOff, ch, n, 0, seq);
}
Event cc(int ch, int c, int v, std::uint64_t seq) {
  return ev(Kind::kControlChange, ch, c, v, seq);
}
Event bend(int ch, int v, std::uint64_t seq) {
  Event e = ev(Kind::kPitchBend, ch, 0, 0, seq);
  e.value14 = static_cast<std::int16_t>(v);
  return e;
}

TEST(JmidStateTracker, NotesOnOffAndVelocityZero) {
  StateTracker t;
  EXPECT_TRUE(t.apply(note_on(0, 60, 100, 1)));
  EXPECT_TRUE(t.apply(note_on(0, 64, 90, 2)));
  EXPECT_TRUE(t.apply(note_on(3, 60, 80, 3)));
  EXPECT_EQ(t.held_notes(), 3u);
  EXPECT_TRUE(t.channel(0).notes_on[60]);
  EXPECT_EQ(t.channel(0).velocity[60], 100);
  EXPECT_TRUE(t.apply(note_on(0, 60, 0, 4)));  // velocity 0 = note off
  EXPECT_FALSE(t.channel(0).notes_on[60]);
  EXPECT_EQ(t.channel(0).velocity[60], 0);
  EXPECT_TRUE(t.apply(note_off(0, 64, 5)));
  EXPECT_EQ(t.held_notes(), 1u);
  EXPECT_TRUE(t.channel(0) == ChannelState{});
}

TEST(JmidStateTracker, ControllersProgramBendPressure) {
  StateTracker t;
  t.apply(cc(2, 7, 100, 1));
  t.apply(ev(Kind::kProgramChange, 2, 42, 0, 2));
  t.apply(bend(2, -1234, 3));
  t.apply(ev(Kind::kChannelPressure, 2, 77, 0, 4));
  t.apply(ev(Kind::kPolyPressure, 2, 60, 99, 5));  // not kept
  const ChannelState& s = t.channel(2);
  EXPECT_EQ(s.cc[7], 100);
  EXPECT_EQ(s.cc[8], -1);
  EXPECT_EQ(s.program, 42);
  EXPECT_EQ(s.pitch_bend, -1234);
  EXPECT_EQ(s.pressure, 77);
  EXPECT_TRUE(t.channel(1) == ChannelState{});
  // Bad input is dropped, not stored out of range.
  EXPECT_FALSE(t.apply(cc(16, 7, 1, 6)));
  t.apply(bend(2, 20000, 7));
  EXPECT_EQ(t.channel(2).pitch_bend, 8191);
}

TEST(JmidStateTracker, StaleEventsPerItemAreRefused) {
  StateTracker t;
  EXPECT_TRUE(t.apply(note_off(0, 60, 12)));
  EXPECT_FALSE(t.apply(note_on(0, 60, 100, 11)));  // older than the off already applied
  EXPECT_FALSE(t.channel(0).notes_on[60]);
  EXPECT_TRUE(t.apply(note_on(0, 61, 100, 10)));  // another note: independent
  EXPECT_TRUE(t.apply(cc(0, 1, 50, 20)));
  EXPECT_FALSE(t.apply(cc(0, 1, 10, 19)));
  EXPECT_EQ(t.channel(0).cc[1], 50);
  EXPECT_TRUE(t.apply(cc(0, 1, 60, 20)));  // same seq: a repeat, harmless
}

TEST(JmidStateTracker, AllNotesOffReleasesButSparesNewerNotes) {
  StateTracker t;
  t.apply(note_on(0, 60, 100, 1));
  t.apply(note_on(0, 62, 100, 2));
  t.apply(note_on(0, 64, 100, 9));  // arrived before the all-notes-off, but is newer
  EXPECT_TRUE(t.apply(cc(0, 123, 0, 5)));
  EXPECT_EQ(t.held_notes(), 1u);
  EXPECT_TRUE(t.channel(0).notes_on[64]);
  EXPECT_EQ(t.channel(0).cc[123], -1);            // a command, not a controller value
  EXPECT_FALSE(t.apply(note_on(0, 60, 100, 4)));  // older than the all-notes-off
}

TEST(JmidStateTracker, SnapshotListsNonDefaultAndUsedChannels) {
  StateTracker t;
  EXPECT_TRUE(t.snapshot(0, 0).empty());
  t.apply(note_on(4, 60, 100, 1));
  t.apply(cc(9, 7, 1, 2));
  auto lines = t.snapshot(2, 555);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].channel, 4);
  EXPECT_EQ(lines[0].upto_seq, 2u);
  EXPECT_EQ(lines[0].ts_ns, 555);
  EXPECT_TRUE(lines[0].state == t.channel(4));
  EXPECT_EQ(lines[1].channel, 9);
  // Channel 4 goes back to default, but stays in the journal so a receiver
  // that lost this note off can still release the note.
  t.apply(note_off(4, 60, 3));
  lines = t.snapshot(3, 600);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].channel, 4);
  EXPECT_FALSE(lines[0].state.notes_on[60]);
}

TEST(JmidStateTracker, RepairEmitsCorrectionsAndConverges) {
  StateTracker sender;
  StateTracker receiver;
  // Both saw these.
  for (const Event& e : {note_on(1, 60, 100, 1), note_on(1, 62, 90, 2), cc(1, 7, 80, 3)}) {
    sender.apply(e);
    receiver.apply(e);
  }
  // The receiver lost these.
  for (const Event& e : {note_off(1, 60, 4), note_on(1, 67, 70, 5), cc(1, 7, 20, 6),
                         cc(1, 10, 64, 7), ev(Kind::kProgramChange, 1, 5, 0, 8), bend(1, 500, 9),
                         ev(Kind::kChannelPressure, 1, 33, 0, 10)}) {
    sender.apply(e);
  }
  const auto lines = sender.snapshot(10, 777);
  ASSERT_EQ(lines.size(), 1u);
  const auto fixes = receiver.repair(lines[0]);
  EXPECT_TRUE(receiver.channel(1) == sender.channel(1));

  ASSERT_EQ(fixes.size(), 7u);
  for (const Event& e : fixes) {
    EXPECT_EQ(e.seq, 10u);
    EXPECT_EQ(e.ts_ns, 777);
    EXPECT_EQ(e.channel, 1);
  }
  // Stuck note released first, missing note started last (after program and controllers).
  EXPECT_EQ(fixes.front().kind, Kind::kNoteOff);
  EXPECT_EQ(fixes.front().data1, 60);
  EXPECT_EQ(fixes.back().kind, Kind::kNoteOn);
  EXPECT_EQ(fixes.back().data1, 67);
  EXPECT_EQ(fixes.back().data2, 70);  // with the journal's velocity
  int ccs = 0, programs = 0, bends = 0, pressures = 0;
  for (const Event& e : fixes) {
    ccs += e.kind == Kind::kControlChange;
    programs += e.kind == Kind::kProgramChange && e.data1 == 5;
    bends += e.kind == Kind::kPitchBend && e.value14 == 500;
    pressures += e.kind == Kind::kChannelPressure && e.data1 == 33;
  }
  EXPECT_EQ(ccs, 2);
  EXPECT_EQ(programs, 1);
  EXPECT_EQ(bends, 1);
  EXPECT_EQ(pressures, 1);

  // In line now: the same journal again changes nothing.
  EXPECT_TRUE(receiver.repair(lines[0]).empty());
}

TEST(JmidStateTracker, RepairLeavesItemsNewerThanTheJournal) {
  StateTracker receiver;
  receiver.apply(note_on(0, 60, 100, 20));  // newer than the journal below
  receiver.apply(cc(0, 7, 99, 21));
  receiver.apply(note_on(0, 61, 100, 5));  // older: the journal decides
  JournalLine j;
  j.channel = 0;
  j.upto_seq = 10;
  j.state.cc[7] = 10;  // 60 not held, 61 not held, cc7 = 10
  const auto fixes = receiver.repair(j);
  ASSERT_EQ(fixes.size(), 1u);
  EXPECT_EQ(fixes[0].kind, Kind::kNoteOff);
  EXPECT_EQ(fixes[0].data1, 61);
  EXPECT_TRUE(receiver.channel(0).notes_on[60]);
  EXPECT_EQ(receiver.channel(0).cc[7], 99);
}

TEST(JmidStateTracker, LateEventCoveredByJournalIsRefused) {
  StateTracker receiver;
  JournalLine j;
  j.channel = 0;
  j.upto_seq = 50;
  j.state.notes_on.set(60);
  j.state.velocity[60] = 90;
  ASSERT_EQ(receiver.repair(j).size(), 1u);
  // The note on (seq 40) and a later note off (seq 45, lost) are both
  // covered by the journal: a late copy of the note on must not restart it,
  // nor an old cc override what the journal said.
  EXPECT_FALSE(receiver.apply(note_on(0, 62, 100, 40)));
  EXPECT_FALSE(receiver.apply(note_off(0, 60, 45)));
  EXPECT_TRUE(receiver.channel(0).notes_on[60]);
  EXPECT_FALSE(receiver.channel(0).notes_on[62]);
  EXPECT_TRUE(receiver.apply(note_off(0, 60, 51)));
  // A journal older than the last one does not lower the bar.
  j.upto_seq = 30;
  receiver.repair(j);
  EXPECT_FALSE(receiver.apply(note_on(0, 63, 100, 45)));
}

TEST(JmidStateTracker, RepairIgnoresUnsetValuesAndBadChannel) {
  StateTracker receiver;
  receiver.apply(cc(0, 7, 99, 1));
  receiver.apply(ev(Kind::kProgramChange, 0, 3, 0, 2));
  JournalLine j;  // cc/program/pressure "never set" there: leave ours alone
  j.upto_seq = 10;
  EXPECT_TRUE(receiver.repair(j).empty());
  EXPECT_EQ(receiver.channel(0).cc[7], 99);
  EXPECT_EQ(receiver.channel(0).program, 3);
  j.channel = 16;
  j.state.notes_on.set(1);
  EXPECT_TRUE(receiver.repair(j).empty());
  // A held note with velocity 0 in the journal still comes out as a note on.
  JournalLine k;
  k.channel = 2;
  k.upto_seq = 10;
  k.state.notes_on.set(70);
  const auto fixes = receiver.repair(k);
  ASSERT_EQ(fixes.size(), 1u);
  EXPECT_EQ(fixes[0].kind, Kind::kNoteOn);
  EXPECT_GE(fixes[0].data2, 1);
}

TEST(JmidStateTracker, ReleaseAllEmitsNoteOffsAndForgetsSeqHistory) {
  StateTracker t;
  t.apply(note_on(0, 60, 100, 1000));
  t.apply(note_on(5, 61, 100, 1001));
  t.apply(note_on(5, 62, 100, 1002));
  t.apply(cc(5, 7, 64, 1003));
  const auto offs = t.release_all();
  ASSERT_EQ(offs.size(), 3u);
  for (const Event& e : offs) EXPECT_EQ(e.kind, Kind::kNoteOff);
  EXPECT_EQ(offs[0].channel, 0);
  EXPECT_EQ(offs[0].data1, 60);
  EXPECT_EQ(t.held_notes(), 0u);
  EXPECT_TRUE(t.release_all().empty());
  EXPECT_EQ(t.channel(5).cc[7], 64);  // the synth still has it
  // A restarted sender counts from a lower seq: its events apply.
  EXPECT_TRUE(t.apply(note_on(0, 60, 100, 3)));
  EXPECT_TRUE(t.apply(cc(5, 7, 1, 4)));
}

}  // namespace
}  // namespace jamnet::media::jmid
