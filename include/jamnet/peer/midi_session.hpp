// MIDI over a session: JMID lines in TOAST MIDI frames, each event burst k
// times, deduplicated, played at sender time + a fixed latency, with a
// recovery journal so no note sticks and no controller stays wrong.
//
// Threads: send() may be called from any non-audio thread; a sender thread
// releases burst copies at their scheduled instants and writes journal and
// feedback lines; frames arrive on the transport's receive thread; a playout
// thread hands events to the handler at their play time.
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/sample_stats.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/media/jmid/playout.hpp"
#include "jamnet/media/jmid/state_tracker.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/protocol/jmid.hpp"

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
  bool realtime = false;  // sender and playout threads got SCHED_FIFO
  std::uint64_t release_events = 0;  // note offs / pedal ups played for peers that went away
  std::uint64_t senders_released = 0;  // peers whose notes were released (left, timed out, restarted)
  std::uint64_t notes_released_on_stop = 0;  // note offs we sent for our own held notes at a clean stop
  std::vector<MidiSenderStats> senders;
};

class MidiSession {
 public:
  MidiSession(const MidiConfig& config, net::Transport& transport, net::SessionRegistry& registry,
              net::Discovery& discovery, const Uuid& session, const Uuid& self);
  ~MidiSession();
  MidiSession(const MidiSession&) = delete;
  MidiSession& operator=(const MidiSession&) = delete;

  void stop();
  // Stamps ts (session time now, unless ts_ns is already set) and seq, and
  // bursts the events to every peer. Events sent in one call share a packet.
  void send(std::span<const protocol::jmid::Event> events);
  void set_handler(MidiHandler handler);
  // Clean stop, before the peer says bye: bursts a note off for every note
  // we hold (and a pedal up where the sustain pedal is down), then waits
  // (at most timeout_ns) until every copy has left.
  void release_sent_notes(Nanos timeout_ns = 100'000'000);
  // Control thread: `id` left, timed out or restarted. At the play time of
  // everything already queued from it, note offs go to the handler for
  // exactly the notes we tracked from it, and a pedal up where it held the
  // sustain pedal and no other peer holds it on that channel; then its state
  // is forgotten (a restarted peer starts clean). Never a channel-wide All
  // Notes Off: one MIDI output carries the whole band.
  void peer_gone(const Uuid& id);
  MidiStats stats() const;
  // The state our playout built from a peer's events and journal repairs.
  protocol::jmid::ChannelState state_from(const Uuid& peer, int channel) const;
  // The state of what we sent.
  protocol::jmid::ChannelState sent_state(int channel) const;

 private:
  struct Outgoing {
    Nanos at;
    std::uint64_t order;
    std::shared_ptr<const std::string> payload;
    std::uint16_t kind;
  };
  struct Sender {
    Uuid id;
    media::jmid::BurstDeduper dedupe;
    media::jmid::StateTracker state;
    media::jmid::PlayoutClock clock;
    MidiSenderStats stats;
    net::Endpoint last_from;
    std::uint64_t fb_received = 0, fb_lost = 0;  // transport counts at the last feedback
    Nanos last_play_ns = 0;
    std::array<std::uint64_t, 17> newest_played{};  // per channel, [16]: system messages
    explicit Sender(const MidiConfig& c);
    Nanos play_time(std::int64_t sender_ts_ns);  // never earlier than the previous item's
  };
  // What the playout thread handles at its time: an event, or a journal line
  // (applied at its own play time, so it meets the state its events built).
  struct Release {};  // the peer went away: release what it holds
  struct Due {
    Uuid from;
    Nanos received_ns;
    std::variant<protocol::jmid::Event, protocol::jmid::JournalLine, Release> item;
  };

  void on_frame(const net::ReceivedFrame& rx);
  void send_loop();
  void playout_loop();
  void send_journal(Nanos now);
  void send_feedback(Nanos now);
  void enqueue(std::shared_ptr<const std::string> payload, MidiLineClass cls, Nanos now,
               bool burst);
  void transmit(const Outgoing& o);
  Sender& sender_for(const Uuid& id);
  void release(Sender& s, const Due& d, Nanos at, Nanos now, std::vector<MidiDelivery>& out);

  MidiConfig config_;
  net::Transport& transport_;
  net::SessionRegistry& registry_;
  net::Discovery& discovery_;
  Uuid session_;
  Uuid self_;
  net::SubscriptionId sub_ = 0;
  std::atomic<bool> running_{true};
  std::atomic<bool> realtime_{false};

  // send side
  mutable std::mutex send_mu_;
  std::condition_variable send_cv_;
  media::jmid::BurstSender burst_;
  media::jmid::StateTracker sent_state_;
  std::bitset<16> used_channels_;
  std::uint64_t last_seq_ = 0;
  std::vector<Outgoing> outgoing_;  // min-heap on (at, order)
  std::uint64_t order_ = 0;
  std::unordered_map<Uuid, std::pair<double, Nanos>, UuidHash> feedback_;  // peer -> (loss, when)
  std::atomic<std::uint64_t> events_sent_{0}, packets_sent_{0}, bytes_sent_{0}, journal_sent_{0},
      journal_oversize_{0};

  // receive side
  mutable std::mutex rx_mu_;
  std::condition_variable rx_cv_;
  std::unordered_map<Uuid, std::unique_ptr<Sender>, UuidHash> senders_;
  media::jmid::PlayoutQueue<Due> queue_;
  std::uint64_t parse_errors_ = 0;
  std::uint64_t release_events_ = 0, senders_released_ = 0;
  std::atomic<std::uint64_t> notes_released_on_stop_{0};
  MidiHandler handler_;

  std::thread send_thread_;
  std::thread playout_thread_;
};

}  // namespace jamnet
