// MIDI state per channel (held notes, controllers, program, bend, pressure),
// kept by the sender to write the recovery journal and by the receiver to
// repair itself from it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "jamnet/protocol/jmid.hpp"
#include "jamnet/protocol/jmid_journal.hpp"

namespace jamnet::media::jmid {

using protocol::jmid::ChannelState;
using protocol::jmid::Event;
using protocol::jmid::JournalLine;

class StateTracker {
 public:
  // Applies a channel message (others are ignored). Note on with velocity 0
  // counts as note off. Remembers which event seq last touched each item.
  // Returns false, changing nothing, when the event is stale: older than the
  // last event that touched the same item, or covered by a journal already
  // repaired from. The caller should not play a stale event. CC 120 and
  // 123..127 (channel mode: all sound/notes off) release the held notes and
  // are not kept as controller values; 121 and 122 are not kept either.
  bool apply(const Event& e);
  const ChannelState& channel(int ch) const { return state_[static_cast<std::size_t>(ch)]; }

  // Journal lines for every channel not in its default state, and for every
  // channel that has carried an event even if back to default (otherwise a
  // lost note off on a channel that then fell silent could never be repaired),
  // as of upto_seq.
  std::vector<JournalLine> snapshot(std::uint64_t upto_seq, std::int64_t ts_ns) const;

  // The events that bring this state in line with the sender's journal line,
  // applied already. Items an event newer than j.upto_seq touched are left
  // alone: that event is more recent than the journal.
  std::vector<Event> repair(const JournalLine& j);
  // The same, appended to `out` (no allocation while it has room).
  void repair(const JournalLine& j, std::vector<Event>& out);

  // Note offs for every held note (a peer left or the stream died). Also
  // forgets the seq history, so a restarted sender's lower seqs apply again;
  // controller values stay, since the synth still has them.
  std::vector<Event> release_all();
  void release_all(std::vector<Event>& out);  // appended to `out`

  std::size_t held_notes() const noexcept;

 private:
  struct Touched {
    std::array<std::uint64_t, 128> note{};
    std::array<std::uint64_t, 128> cc{};
    std::uint64_t program = 0, bend = 0, pressure = 0;
  };
  void set_note(std::size_t ch, std::uint8_t note, std::uint8_t velocity,
                std::uint64_t seq) noexcept;

  std::array<ChannelState, 16> state_{};
  std::array<Touched, 16> touched_{};
  // Per channel: events below this seq are already reflected by a journal.
  std::array<std::uint64_t, 16> journal_floor_{};
  std::array<bool, 16> active_{};  // the channel has carried an event
};

}  // namespace jamnet::media::jmid
