// The sync session's clock: the local clock (monotonic, or a test crystal)
// and the ClockDriftArbiter that elects a master and follows its session
// clock, wired to the sync stream (sync_ping, sync_pong, sync_status in;
// the arbiter's messages out through the wire).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/sync/sync_types.hpp"
#include "jamnet/peer/sync/sync_wire.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/clock_drift_arbiter.hpp"
#include "jamnet/sync/clock_source.hpp"

namespace jamnet::sync {

class ClockElection {
 public:
  ClockElection(const SyncConfig& config, const Uuid& self, SyncWire& wire);
  ClockElection(const ClockElection&) = delete;
  ClockElection& operator=(const ClockElection&) = delete;

  // Control thread: a sync frame from the inbox.
  void dispatch(const SyncWire::Inbound& in);
  // Control thread: peers discovery no longer lists, then the arbiter's own tick.
  void tick(const std::vector<Uuid>& left);
  // A frame's kernel receive time on the local clock (receive thread).
  Nanos local_rx(const net::ReceivedFrame& rx) const;

  ClockDriftArbiter& arbiter() noexcept { return *arbiter_; }
  const ClockDriftArbiter& arbiter() const noexcept { return *arbiter_; }
  const ClockSource& local_clock() const noexcept { return *clock_; }
  // The clock status and one reading of the three clocks, taken together;
  // and the sync stream's rejected messages (added to r.rejected).
  void fill_report(SyncReport& r) const;

 private:
  std::unique_ptr<ClockSource> clock_;
  std::unique_ptr<ClockDriftArbiter> arbiter_;
  SyncWire& wire_;

  mutable std::mutex mu_;  // the router and what its handlers read
  protocol::control::BasicRouter router_;
  const net::Endpoint* current_from_ = nullptr;  // while dispatching
  Nanos current_rx_local_ = 0;
  std::optional<Uuid> current_sender_;
  bool from_sender(const std::string& claimed);  // claimed id is the proven sender's (else counted)
};

}  // namespace jamnet::sync
