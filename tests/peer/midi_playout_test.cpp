// MidiPlayout on fake time: items are pushed (as received copies, or
// already scheduled) and play_due() is called with the test's own "now";
// the playout thread is never started.
#include <gtest/gtest.h>

#include <vector>

#include "jamnet/peer/midi/midi_playout.hpp"

namespace jamnet::midi {
namespace {

using protocol::jmid::Event;
using protocol::jmid::JournalLine;
using protocol::jmid::Kind;

Nanos g_now = 0;
Nanos fake_now() noexcept {
  return g_now;
}

Uuid id_of(std::uint8_t n) {
  Uuid id;
  id.bytes[15] = n;
  return id;
}
const Uuid kA = id_of(1);
const Uuid kB = id_of(2);

Event note(Kind kind, std::uint8_t channel, std::uint8_t n, std::uint64_t seq) {
  Event e;
  e.kind = kind;
  e.channel = channel;
  e.data1 = n;
  e.data2 = kind == Kind::kNoteOn ? 100 : 0;
  e.seq = seq;
  return e;
}

Event pedal(std::uint8_t channel, std::uint8_t value, std::uint64_t seq) {
  Event e;
  e.kind = Kind::kControlChange;
  e.channel = channel;
  e.data1 = 64;
  e.data2 = value;
  e.seq = seq;
  return e;
}

struct Fixture : ::testing::Test {
  MidiConfig config;
  std::vector<MidiDelivery> played;
  std::unique_ptr<MidiPlayout> playout;

  void make() {
    playout = std::make_unique<MidiPlayout>(config, &fake_now);
    playout->set_handler([this](const MidiDelivery& d) { played.push_back(d); });
  }
  void SetUp() override {
    g_now = 1'000'000'000;
    make();
  }
  MidiStats stats() const {
    MidiStats st;
    playout->add_stats(st);
    return st;
  }
};

using MidiPlayoutTest = Fixture;

TEST_F(MidiPlayoutTest, PlaysDueItemsInTimeOrderAndKeepsTheRest) {
  playout->push(300, Due{kA, 0, note(Kind::kNoteOn, 0, 62, 3)});
  playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 1)});
  playout->push(200, Due{kA, 0, note(Kind::kNoteOn, 1, 61, 2)});
  g_now = 250;
  EXPECT_EQ(playout->play_due(250), 2u);
  ASSERT_EQ(played.size(), 2u);
  EXPECT_EQ(played[0].event.data1, 60);
  EXPECT_EQ(played[0].scheduled_ns, 100);
  EXPECT_EQ(played[0].played_ns, 250);  // the injected clock
  EXPECT_EQ(played[1].event.data1, 61);
  EXPECT_EQ(playout->play_due(299), 0u);
  EXPECT_EQ(playout->play_due(300), 1u);
  EXPECT_EQ(played[2].event.data1, 62);
  EXPECT_EQ(stats().senders.at(0).delivered, 3u);
  EXPECT_EQ(stats().rt_allocs, 0u);  // within the reserved buffers
}

TEST_F(MidiPlayoutTest, HandlerLeadHandsItemsOverEarly) {
  config.handler_lead_ns = 1'000'000;
  make();
  playout->push(10'000'000, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 1)});
  EXPECT_EQ(playout->play_due(8'999'999), 0u);
  EXPECT_EQ(playout->play_due(9'000'000), 1u);
  EXPECT_EQ(played.at(0).scheduled_ns, 10'000'000);
}

TEST_F(MidiPlayoutTest, AnEventOlderThanOnePlayedOnItsChannelIsStale) {
  playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 10)});
  playout->push(200, Due{kA, 0, note(Kind::kNoteOff, 0, 61, 5)});  // same channel, older
  playout->push(200, Due{kA, 0, note(Kind::kNoteOn, 3, 62, 6)});   // another channel
  playout->play_due(1000);
  ASSERT_EQ(played.size(), 2u);
  EXPECT_EQ(played[0].event.data1, 60);
  EXPECT_EQ(played[1].event.data1, 62);
  const auto st = stats();
  ASSERT_EQ(st.senders.size(), 1u);
  EXPECT_EQ(st.senders[0].stale, 1u);
  EXPECT_EQ(st.senders[0].delivered, 2u);
  EXPECT_EQ(st.senders[0].held_notes, 2u);
}

TEST_F(MidiPlayoutTest, AJournalLineRepairsTheStateItSummarises) {
  playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 1)});
  playout->play_due(100);
  // The note off for 60 (seq 2) and a note on for 64 (seq 3) were lost.
  JournalLine j;
  j.channel = 0;
  j.upto_seq = 3;
  j.state.notes_on.set(64);
  j.state.velocity[64] = 90;
  playout->push(200, Due{kA, 0, j});
  playout->play_due(200);
  ASSERT_EQ(played.size(), 3u);
  EXPECT_TRUE(played[1].repair);
  EXPECT_EQ(played[1].event.kind, Kind::kNoteOff);
  EXPECT_EQ(played[1].event.data1, 60);
  EXPECT_TRUE(played[2].repair);
  EXPECT_EQ(played[2].event.kind, Kind::kNoteOn);
  EXPECT_EQ(played[2].event.data1, 64);
  EXPECT_EQ(played[2].event.data2, 90);
  EXPECT_EQ(stats().senders.at(0).repairs, 2u);
  EXPECT_TRUE(playout->state_from(kA, 0).notes_on.test(64));
  EXPECT_FALSE(playout->state_from(kA, 0).notes_on.test(60));
  // A late copy of an event the journal covered would undo the repair.
  playout->push(300, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 2)});
  playout->play_due(300);
  EXPECT_EQ(played.size(), 3u);
  EXPECT_EQ(stats().senders.at(0).stale, 1u);
}

TEST_F(MidiPlayoutTest, ReleaseTurnsOffWhatALeaverHeldAndForgetsIt) {
  playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 2, 60, 1)});
  playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 2, 67, 2)});
  playout->push(100, Due{kA, 0, pedal(2, 127, 3)});  // sustain down on channel 2
  playout->push(100, Due{kA, 0, pedal(5, 127, 4)});  // and on channel 5, which B holds too
  playout->push(100, Due{kB, 0, pedal(5, 127, 1)});
  playout->push(200, Due{kA, 0, Release{}});
  playout->play_due(150);
  EXPECT_EQ(stats().senders.size(), 2u);
  played.clear();
  playout->play_due(200);
  ASSERT_EQ(played.size(), 3u);  // two note offs, one pedal up: B still holds channel 5's
  for (const auto& d : played) {
    EXPECT_TRUE(d.release);
    EXPECT_EQ(d.from, kA);
  }
  EXPECT_EQ(played[0].event.kind, Kind::kNoteOff);
  EXPECT_EQ(played[0].event.data1, 60);
  EXPECT_EQ(played[1].event.data1, 67);
  EXPECT_EQ(played[2].event.kind, Kind::kControlChange);
  EXPECT_EQ(played[2].event.channel, 2);
  EXPECT_EQ(played[2].event.data2, 0);
  const auto st = stats();
  EXPECT_EQ(st.release_events, 3u);
  EXPECT_EQ(st.senders_released, 1u);
  ASSERT_EQ(st.senders.size(), 1u);  // A's state is gone
  EXPECT_EQ(st.senders[0].id, kB);
  EXPECT_EQ(playout->state_from(kA, 2), protocol::jmid::ChannelState{});
}

TEST_F(MidiPlayoutTest, AFullQueueDropsAndCounts) {
  for (std::size_t i = 0; i < MidiPlayout::kMaxQueued; ++i)
    ASSERT_TRUE(playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 60, i + 1)}));
  EXPECT_FALSE(playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 61, 1)}));
  EXPECT_EQ(stats().playout_queue_full, 1u);
}

TEST_F(MidiPlayoutTest, NoHandlerPlaysNothingButKeepsState) {
  playout->set_handler(nullptr);
  playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 1)});
  EXPECT_EQ(playout->play_due(100), 1u);
  EXPECT_TRUE(played.empty());
  EXPECT_TRUE(playout->state_from(kA, 0).notes_on.test(60));
}

TEST_F(MidiPlayoutTest, ReceivedCopiesAreDedupedAndPlayAtSenderTimePlusLatency) {
  config.latency_ns = 5'000'000;
  make();
  Event e = note(Kind::kNoteOn, 0, 60, 7);
  e.ts_ns = 0;
  // Three copies of one burst; the fastest sets the clock offset (1000 ns).
  EXPECT_TRUE(playout->push_received(kA, 1'200, 3, e));
  EXPECT_TRUE(playout->push_received(kA, 1'000, 3, e));
  EXPECT_TRUE(playout->push_received(kA, 1'100, 3, e));
  EXPECT_EQ(playout->play_due(5'000'999), 0u);
  EXPECT_EQ(playout->play_due(5'001'200), 1u);
  ASSERT_EQ(played.size(), 1u);
  // Scheduled when its first copy arrived (offset 1200 then).
  EXPECT_EQ(played[0].scheduled_ns, 5'001'200);
  EXPECT_EQ(played[0].received_ns, 1'200);
  const auto st = stats();
  ASSERT_EQ(st.senders.size(), 1u);
  EXPECT_EQ(st.senders[0].copies, 3u);
  EXPECT_EQ(st.senders[0].duplicates, 2u);
  EXPECT_EQ(st.senders[0].delivered, 1u);
}

TEST_F(MidiPlayoutTest, APeerGoneIsReleasedAfterWhatIsQueuedOfIt) {
  config.latency_ns = 5'000'000;
  make();
  Event on = note(Kind::kNoteOn, 0, 60, 1);
  on.ts_ns = 0;
  ASSERT_TRUE(playout->push_received(kA, 1'000, 1, on));
  g_now = 2'000;  // it leaves before its note has played
  playout->peer_gone(kA);
  EXPECT_EQ(playout->play_due(5'000'999), 0u);
  EXPECT_EQ(playout->play_due(5'001'000), 2u);
  ASSERT_EQ(played.size(), 2u);
  EXPECT_EQ(played[0].event.kind, Kind::kNoteOn);
  EXPECT_FALSE(played[0].release);
  EXPECT_EQ(played[1].event.kind, Kind::kNoteOff);
  EXPECT_TRUE(played[1].release);
  EXPECT_TRUE(stats().senders.empty());
  // A peer we never heard from has nothing to release.
  playout->peer_gone(kB);
  EXPECT_EQ(playout->play_due(10'000'000), 0u);
  EXPECT_EQ(stats().senders_released, 1u);
}

TEST_F(MidiPlayoutTest, ALateCopyOfAReleasedPeerIsDroppedNotLeftSounding) {
  config.latency_ns = 5'000'000;
  make();
  Event on = note(Kind::kNoteOn, 0, 60, 1);
  on.ts_ns = 0;
  ASSERT_TRUE(playout->push_received(kA, 1'000, 1, on));
  g_now = 2'000;
  playout->peer_gone(kA);
  EXPECT_EQ(playout->play_due(5'001'000), 2u);  // the note, then its release
  played.clear();
  // A copy of a later note of the leaver still on the way: no new state is
  // made for it (nobody would release it), and it is counted.
  Event late = note(Kind::kNoteOn, 0, 64, 2);
  late.ts_ns = 1'000;
  ASSERT_TRUE(playout->push_received(kA, 5'002'000, 2, late));
  EXPECT_EQ(playout->play_due(20'000'000), 0u);
  EXPECT_TRUE(played.empty());
  EXPECT_EQ(stats().after_release, 1u);
  EXPECT_TRUE(stats().senders.empty());
  // The same id back later (a restart) plays again.
  const Nanos back = 5'001'000 + MidiPlayout::kReleasedHoldNs + 1;
  Event again = note(Kind::kNoteOn, 0, 67, 1);
  again.ts_ns = 0;
  ASSERT_TRUE(playout->push_received(kA, back, 1, again));
  EXPECT_EQ(playout->play_due(back + 10'000'000), 1u);
  ASSERT_EQ(played.size(), 1u);
  EXPECT_EQ(played[0].event.data1, 67);
}

TEST_F(MidiPlayoutTest, AReleaseGetsInEvenWhenTheQueueIsFull) {
  ASSERT_TRUE(playout->push(100, Due{kA, 0, note(Kind::kNoteOn, 0, 60, 1)}));
  playout->play_due(100);  // A holds note 60
  for (std::size_t i = 0; i < MidiPlayout::kMaxQueued; ++i)
    ASSERT_TRUE(playout->push(1'000'000'000'000, Due{kB, 0, note(Kind::kNoteOn, 1, 61, i + 1)}));
  playout->play_due(200);  // taken into the queue, which is now at its cap; none due
  playout->peer_gone(kA);
  played.clear();
  playout->play_due(2'000'000'000);
  ASSERT_EQ(played.size(), 1u);
  EXPECT_TRUE(played[0].release);
  EXPECT_EQ(played[0].event.data1, 60);
  EXPECT_EQ(stats().playout_queue_full, 0u);
}

TEST_F(MidiPlayoutTest, PeersBeyondTheCapAreDroppedAndCounted) {
  for (std::size_t i = 0; i <= MidiPlayout::kMaxPeers; ++i)
    ASSERT_TRUE(playout->push(
        100, Due{id_of(static_cast<std::uint8_t>(i + 1)), 0, note(Kind::kNoteOn, 0, 60, 1)}));
  EXPECT_EQ(playout->play_due(100), MidiPlayout::kMaxPeers);
  const auto st = stats();
  EXPECT_EQ(st.senders.size(), MidiPlayout::kMaxPeers);
  EXPECT_EQ(st.playout_peers_full, 1u);
}

}  // namespace
}  // namespace jamnet::midi
