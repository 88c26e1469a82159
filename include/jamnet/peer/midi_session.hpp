// MIDI over a session: JMID lines in TOAST MIDI frames, each event burst k
// times, deduplicated, played at sender time + a fixed latency, with a
// recovery journal so no note sticks and no controller stays wrong.
//
// The session owns three parts (peer/midi/), one per job and thread:
//   MidiSender    send(): events to payloads; its send thread releases burst
//                 copies at their instants and the journal
//   MidiReceiver  frames from the transport's receive thread: parsed and
//                 handed to the playout; and the loss reports we send back
//   MidiPlayout   owns what we keep per sending peer; its playout thread
//                 dedupes, clocks and queues what was handed over and hands
//                 events to the handler at their play time, in order,
//                 repaired, released when a peer goes
// send() may be called from any non-audio thread; tick() from the control thread.
#pragma once

#include <span>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/midi/midi_playout.hpp"
#include "jamnet/peer/midi/midi_receiver.hpp"
#include "jamnet/peer/midi/midi_sender.hpp"
#include "jamnet/peer/midi/midi_types.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet {

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
  void send(std::span<const protocol::jmid::Event> events) { sender_.send(events); }
  void set_handler(MidiHandler handler) { playout_.set_handler(std::move(handler)); }
  // The peer's control thread, every few ms: receivers' loss reports
  // applied to our burst size, and ours sent once per feedback interval.
  void tick(Nanos now);
  // Clean stop, before the peer says bye: bursts a note off for every note
  // we hold (and a pedal up where the sustain pedal is down), then waits
  // (at most timeout_ns) until every copy has left.
  void release_sent_notes(Nanos timeout_ns = 100'000'000) {
    sender_.release_sent_notes(timeout_ns);
  }
  // Control thread: `id` left, timed out or restarted. At the play time of
  // everything already queued from it, note offs go to the handler for
  // exactly the notes we tracked from it, and a pedal up where it held the
  // sustain pedal and no other peer holds it on that channel; then its state
  // is forgotten (a restarted peer starts clean). Never a channel-wide All
  // Notes Off: one MIDI output carries the whole band.
  void peer_gone(const Uuid& id) { playout_.peer_gone(id); }
  MidiStats stats() const;
  // The state our playout built from a peer's events and journal repairs.
  protocol::jmid::ChannelState state_from(const Uuid& peer, int channel) const {
    return playout_.state_from(peer, channel);
  }
  // The state of what we sent.
  protocol::jmid::ChannelState sent_state(int channel) const { return sender_.sent_state(channel); }

 private:
  void on_frame(const net::ReceivedFrame& rx);

  net::SessionRegistry& registry_;
  net::SubscriptionId sub_ = 0;
  bool stopped_ = false;
  midi::MidiSender sender_;
  midi::MidiPlayout playout_;
  midi::MidiReceiver receiver_;
};

}  // namespace jamnet
