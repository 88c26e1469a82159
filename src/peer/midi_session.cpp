#include "jamnet/peer/midi_session.hpp"

namespace jamnet {

MidiSession::MidiSession(const MidiConfig& config, net::Transport& transport,
                         net::SessionRegistry& registry, net::Discovery& discovery,
                         const Uuid& session, const Uuid& self)
    : registry_(registry),
      sender_(config, transport, discovery, session, self),
      playout_(config),
      receiver_(config, transport, discovery, session, playout_) {
  // On the receive thread: MIDI is media.
  sub_ = registry_.subscribe(
      {session, protocol::StreamType::kMidi, 0},
      [this](const net::ReceivedFrame& rx) { on_frame(rx); }, net::Delivery::kReceiveThread);
  sender_.start();
  playout_.start();
}

MidiSession::~MidiSession() {
  stop();
}

void MidiSession::stop() {
  if (stopped_) return;
  stopped_ = true;
  registry_.unsubscribe(sub_);
  sender_.stop();
  playout_.stop();
}

void MidiSession::on_frame(const net::ReceivedFrame& rx) {
  const auto cls = static_cast<MidiLineClass>(rx.frame.header.message_kind & 0xF);
  if (cls == MidiLineClass::kFeedback) {
    sender_.on_feedback(rx);  // a receiver's loss report on what we send
  } else {
    receiver_.on_frame(rx);
  }
}

void MidiSession::tick(Nanos now) {
  sender_.tick();
  receiver_.report_loss(now);
}

MidiStats MidiSession::stats() const {
  MidiStats st;
  sender_.add_stats(st);
  receiver_.add_stats(st);
  playout_.add_stats(st);
  return st;
}

}  // namespace jamnet
