// The MIDI session's configuration, what it hands to the app and what it
// counts; shared by its sender, receiver and playout (peer/midi/).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/protocol/jmid.hpp"
#include "jamnet/protocol/topic.hpp"

namespace jamnet {

struct MidiConfig {
  media::jmid::BurstConfig burst;
  Nanos latency_ns = 5'000'000;  // playout delay after the sender's timestamp
  Nanos dedupe_expiry_ns = 5'000'000;
  // Acceptance threshold: copies of a burst that must arrive before the event
  // plays (at most k). 1 plays on the first copy: lowest latency, best under
  // loss; 2 or more trades both for resistance to a stray forged or
  // misrouted copy.
  int accept_copies = 1;
  Nanos journal_interval_ns = 50'000'000;  // recovery journal period while channels are in use
  Nanos feedback_interval_ns = 250'000'000;
  // Hand events to the handler this long before their play time, for sinks
  // that place them at an exact sample themselves (JACK); 0 = at play time.
  Nanos handler_lead_ns = 0;
};

// message_kind of MIDI frames: line class | copy << 4 | k << 8 (docs/protocol.md).
enum class MidiLineClass : std::uint16_t { kEvents = 1, kJournal = 2, kFeedback = 3 };

inline constexpr protocol::Topic kMidiTopic{protocol::StreamType::kMidi, 0};

constexpr std::uint16_t midi_message_kind(MidiLineClass cls, int copy, int k) noexcept {
  return static_cast<std::uint16_t>(static_cast<std::uint16_t>(cls) | (copy & 0xF) << 4 |
                                    (k & 0xF) << 8);
}

struct MidiDelivery {
  protocol::jmid::Event event;
  Uuid from;
  Nanos received_ns = 0;   // when its first copy arrived
  Nanos scheduled_ns = 0;  // sender timestamp mapped to our clock + latency
  Nanos played_ns = 0;     // when the handler was called
  bool repair = false;     // generated from the journal, not received as an event
  bool release = false;    // a note off (or pedal up) for a peer that left, timed out or restarted
};
using MidiHandler = std::function<void(const MidiDelivery&)>;

struct MidiSenderStats {
  Uuid id;
  std::uint64_t copies = 0;
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t too_old = 0;
  std::uint64_t repairs = 0;
  std::uint64_t late = 0;   // arrived after their play time: played at once
  std::uint64_t stale = 0;  // too late to play in order, or older than a journal repair: dropped
  std::size_t held_notes = 0;
  double copy_loss = 0;  // packet loss seen in completed bursts
};

struct MidiStats {
  std::uint64_t events_sent = 0;
  std::uint64_t packets_sent = 0;  // frames, all copies and destinations
  std::uint64_t bytes_sent = 0;    // on the wire (TOAST frames), events + journal + feedback
  std::uint64_t journal_lines_sent = 0;
  std::uint64_t journal_lines_oversize = 0;  // too long for one datagram: not sent
  std::uint64_t parse_errors = 0;
  int k = 0;
  bool realtime = false;             // sender and playout threads got SCHED_FIFO
  std::uint64_t release_events = 0;  // note offs / pedal ups played for peers that went away
  std::uint64_t senders_released =
      0;  // peers whose notes were released (left, timed out, restarted)
  std::uint64_t notes_released_on_stop =
      0;  // note offs we sent for our own held notes at a clean stop
  // Allocations or frees a real-time MIDI thread could not avoid: a buffer
  // grown past what was reserved up front, a payload freed on the send thread.
  std::uint64_t rt_allocs = 0;
  std::uint64_t playout_queue_full = 0;  // items dropped: the playout queue was at its cap
  std::uint64_t playout_peers_full = 0;  // items dropped: from a peer beyond the playout's cap
  std::uint64_t after_release = 0;     // items dropped: from a peer already released (late copies)
  std::uint64_t bad_time = 0;          // items dropped: a timestamp outside [0, 2^60] ns
  std::uint64_t send_queue_full = 0;   // copies not sent: the send thread's queue stayed full
  std::uint64_t feedback_dropped = 0;  // loss reports dropped: too many waiting to be applied
  std::vector<MidiSenderStats> senders;
};

}  // namespace jamnet
