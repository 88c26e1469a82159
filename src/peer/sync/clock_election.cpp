#include "jamnet/peer/sync/clock_election.hpp"

namespace jamnet::sync {

namespace ctl = protocol::control;

ClockElection::ClockElection(const SyncConfig& config, const Uuid& self, SyncWire& wire)
    : wire_(wire) {
  if (config.test_offset_ns || config.test_skew_ppm != 0)
    clock_ = std::make_unique<TestClock>(config.test_offset_ns.value_or(0), config.test_skew_ppm);
  else
    clock_ = std::make_unique<MonotonicClock>();
  ArbiterConfig ac;
  ac.self = self;
  ac.priority = config.priority;
  ac.force_master = config.force_master;
  ac.sync_hz = config.sync_hz;
  arbiter_ = std::make_unique<ClockDriftArbiter>(
      ac, *clock_, [this](const std::optional<Uuid>& to, const ctl::ControlMessage& m) {
        wire_.send_to(to, m, protocol::StreamType::kSync);
      });
  // Each is believed only from the address discovery proved for the id it
  // names: nobody can win the election, or answer for a master, as another.
  router_.on("sync_ping", [this](const ctl::ControlMessage& m) {
    const auto& p = std::get<ctl::SyncPingMsg>(m);
    if (from_sender(p.from)) arbiter_->on_ping(p, current_rx_local_);
  });
  router_.on("sync_pong", [this](const ctl::ControlMessage& m) {
    const auto& p = std::get<ctl::SyncPongMsg>(m);
    if (from_sender(p.from)) arbiter_->on_pong(p, current_rx_local_);
  });
  router_.on("sync_status", [this](const ctl::ControlMessage& m) {
    const auto& st = std::get<ctl::SyncStatusMsg>(m);
    if (from_sender(st.from)) arbiter_->on_status(st);
  });
  router_.on_reject([this](const ctl::ParseError& e) { wire_.log_reject(e, current_from_); });
}

Nanos ClockElection::local_rx(const net::ReceivedFrame& rx) const {
  Nanos mono = rx.rx_ns;
  if (rx.kernel_rx_realtime_ns != 0) {
    // The kernel stamps CLOCK_REALTIME; move it onto CLOCK_MONOTONIC with the
    // two clocks' current difference (they only differ by slewing, ppm).
    const Nanos k = rx.kernel_rx_realtime_ns - (realtime_ns() - monotonic_ns());
    if (k <= rx.rx_ns && rx.rx_ns - k < 100'000'000) mono = k;
  }
  return clock_->from_monotonic(mono);
}

void ClockElection::dispatch(const SyncWire::Inbound& in) {
  std::lock_guard lock(mu_);
  current_from_ = &in.from;
  current_rx_local_ = in.rx_local;
  current_sender_ = in.sender;
  router_.dispatch(in.text);
  current_from_ = nullptr;
  current_sender_.reset();
}

bool ClockElection::from_sender(const std::string& claimed) {
  const auto id = Uuid::parse(claimed);
  if (current_sender_ && id && *id == *current_sender_) return true;
  wire_.count_unproven();
  return false;
}

void ClockElection::tick(const std::vector<Uuid>& left) {
  for (const auto& id : left) arbiter_->peer_left(id);
  arbiter_->tick();
}

void ClockElection::fill_report(SyncReport& r) const {
  r.clock = arbiter_->status();
  r.mono_ns = monotonic_ns();
  r.local_ns = clock_->from_monotonic(r.mono_ns);
  r.session_ns = arbiter_->session().session_at(r.local_ns);
  std::lock_guard lock(mu_);
  for (std::size_t k = 0; k < ctl::kRejectKinds; ++k) r.rejected[k] += router_.counts().rejected[k];
}

}  // namespace jamnet::sync
