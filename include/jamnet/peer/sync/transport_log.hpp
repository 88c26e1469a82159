// The sync session's transport: the TransportTimeline every peer keeps in
// step (our commands, sent three times; theirs, applied; the state once a
// second and to each newcomer), the control requests of `jamnet transport`
// and `jamnet mix`, and the log of where this peer started and stopped on
// each transport event (its audio sample, and that sample's times).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/peer/sync/clock_election.hpp"
#include "jamnet/peer/sync/sync_types.hpp"
#include "jamnet/peer/sync/sync_wire.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/clock_source.hpp"
#include "jamnet/sync/transport.hpp"

namespace jamnet::sync {

class TransportLog {
 public:
  using MixHandler = std::function<Result<void>(const protocol::control::RequestMsg&)>;
  // A command from the wire may act at most this far ahead of now (a
  // command's lead is at most 60 s; the rest is room for clocks apart).
  // Further ones are ignored (counted with transport.ignored).
  static constexpr Nanos kMaxScheduleAheadNs = 120'000'000'000;

  TransportLog(const SyncConfig& config, const Uuid& session, const Uuid& self,
               ClockElection& clock, SyncWire& wire);
  TransportLog(const TransportLog&) = delete;
  TransportLog& operator=(const TransportLog&) = delete;

  // Control thread: a control frame from the inbox.
  void dispatch(const SyncWire::Inbound& in);
  // Control thread: resends, hello and state to newcomers, the state
  // broadcast, and the events log up to now.
  void tick(const std::vector<Uuid>& joined);

  Result<Nanos> command(TransportCommandRec c, std::optional<Nanos> lead);
  void set_mix_handler(MixHandler handler);
  void set_audio_clock(const AudioDeviceClock* clock) noexcept {
    audio_clock_.store(clock, std::memory_order_release);
  }
  TransportState state() const;
  // The transport, its events and counts, and the control stream's rejected
  // messages (after ClockElection::fill_report: it reads r.session_ns).
  void fill_report(SyncReport& r) const;

 private:
  void on_request(const protocol::control::RequestMsg& r, const net::Endpoint& from);
  Result<Nanos> command_locked(TransportCommandRec c, std::optional<Nanos> lead);
  void record_events_locked(Nanos upto_session);
  void record_if_late_locked(const TransportCommandRec& rec);
  void note_event_locked(const TransportEvent& e, bool late);
  void fill_report_locked(SyncReport& r) const;
  TransportEventReport event_report(const TransportEvent& e, bool late) const;

  SyncConfig config_;
  Uuid session_;
  Uuid self_;
  ClockElection& clock_;
  SyncWire& wire_;
  std::atomic<const AudioDeviceClock*> audio_clock_{nullptr};

  mutable std::mutex mu_;  // everything below
  protocol::control::BasicRouter router_;
  MixHandler mix_handler_;
  TransportTimeline timeline_;
  std::uint64_t seq_ = 0;
  struct Resend {
    Nanos due_mono;
    protocol::control::TransportMsg msg;
  };
  std::vector<Resend> resends_;
  Nanos events_checked_to_ = INT64_MIN;  // session time up to which events are recorded
  std::deque<TransportEventReport> events_;
  Nanos next_state_broadcast_ = 0;
  std::uint64_t commands_ = 0, snapshots_adopted_ = 0;
  std::deque<std::pair<std::uint64_t, protocol::control::ReplyMsg>> replies_;  // by request id
  const net::Endpoint* current_from_ = nullptr;  // while dispatching, for handlers that reply
  std::optional<Uuid> current_sender_;           // ... the peer proven at that address
  bool current_local_ = false;                   // ... from this machine
  bool from_peer();                              // a proven peer sent it (else counted)
  std::uint64_t too_far_ = 0;  // commands for an implausible time or over kMaxScheduleAheadNs ahead
};

}  // namespace jamnet::sync
