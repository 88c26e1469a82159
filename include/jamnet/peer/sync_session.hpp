// A peer's clock sync and transport: the ClockDriftArbiter and the
// TransportTimeline on the network, plus the JSON control messages of the
// `jamnet transport` command (docs/control.md).
//
// Wire: JSON control messages (protocol/control.hpp) in TOAST frames,
// message kind kJsonControl, format standard JSON:
//   sync://SESSION        sync_ping, sync_pong, sync_status
//   control://SESSION/1   transport, transport_state, hello, request, reply, error
// (control://SESSION/0 stays the foundation's probe stream.)
//
// Transport commands act `transport_lead_ns` (default 50 ms) ahead in session
// time. Each is sent three times, 5 ms apart, and every peer broadcasts its
// transport_state once a second and to each peer it newly discovers, so a
// command survives heavy loss and a late joiner learns the state.
//
// The audio device clock of a peer without a sound card is its local clock
// counted in samples at `audio_rate`; when a transport event starts playback
// the peer works out the sample it starts on (the first sample at or after
// the command's session time, through its session clock) and records it,
// with that sample's true CLOCK_MONOTONIC time (for tests: all namespaces on
// one machine share that clock).
//
// The session owns three parts (peer/sync/), all run by tick() on the
// peer's control thread:
//   SyncWire       frames in (a bounded inbox the receive thread fills) and
//                  messages out, by discovery's routes
//   ClockElection  the local clock and the arbiter: master election and the
//                  session clock, on the sync stream
//   TransportLog   the transport timeline: commands, requests, state, and
//                  the log of the samples this peer started on
#pragma once

#include <functional>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/sync/clock_election.hpp"
#include "jamnet/peer/sync/sync_types.hpp"
#include "jamnet/peer/sync/sync_wire.hpp"
#include "jamnet/peer/sync/transport_log.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/clock_source.hpp"
#include "jamnet/sync/transport.hpp"

namespace jamnet {

class SyncSession {
 public:
  SyncSession(const SyncConfig& config, net::Transport& transport, net::SessionRegistry& registry,
              net::Discovery& discovery, const Uuid& session, const Uuid& self);
  ~SyncSession();
  SyncSession(const SyncSession&) = delete;
  SyncSession& operator=(const SyncSession&) = delete;

  void tick();  // the peer's control thread, every few ms
  void stop();  // unsubscribes; idempotent

  // Issues a transport command into the session, `lead` ahead (default the
  // config's). The command's at_ns, origin and seq are filled in here.
  // Returns the session time it acts at.
  Result<Nanos> command(sync::TransportCommandRec c, std::optional<Nanos> lead = std::nullopt) {
    return transport_log_.command(std::move(c), lead);
  }

  // With a sound card: its sample counter, so transport events are placed on
  // its samples (the clock must outlive this session, or be reset to null).
  // Answers "mix" requests (`jamnet mix`): set by the Session that owns the
  // mix; without one they are refused. Called on the control router's
  // thread with the transport log's lock held: it must not call back into it.
  using MixHandler = sync::TransportLog::MixHandler;
  void set_mix_handler(MixHandler handler) { transport_log_.set_mix_handler(std::move(handler)); }
  void set_audio_clock(const sync::AudioDeviceClock* clock) noexcept {
    transport_log_.set_audio_clock(clock);
  }

  Nanos session_now() const noexcept { return clock_.arbiter().session_now(); }
  const sync::SessionClock& session_clock() const noexcept { return clock_.arbiter().session(); }
  const sync::ClockSource& local_clock() const noexcept { return clock_.local_clock(); }
  sync::TransportState transport_state() const { return transport_log_.state(); }
  SyncReport report() const;

 private:
  sync::SyncWire wire_;
  sync::ClockElection clock_;
  sync::TransportLog transport_log_;
};

}  // namespace jamnet
