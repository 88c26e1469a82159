#include "jamnet/peer/sync_session.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace jamnet {

namespace ctl = protocol::control;
using protocol::StreamType;

namespace {
std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
}  // namespace

SyncSession::SyncSession(const SyncConfig& config, net::Transport& transport,
                         net::SessionRegistry& registry, net::Discovery& discovery,
                         const Uuid& session, const Uuid& self)
    : wire_(transport, registry, discovery, session),
      clock_(config, self, wire_),
      transport_log_(config, session, self, clock_, wire_) {
  wire_.subscribe([this](const net::ReceivedFrame& rx) { return clock_.local_rx(rx); });
}

SyncSession::~SyncSession() {
  stop();
}

void SyncSession::stop() {
  wire_.stop();
}

void SyncSession::tick() {
  // What arrived since the last tick, in arrival order.
  wire_.drain([this](const sync::SyncWire::Inbound& in) {
    if (in.type == StreamType::kSync)
      clock_.dispatch(in);
    else
      transport_log_.dispatch(in);
  });
  const auto changes = wire_.refresh_routes(monotonic_ns());
  clock_.tick(changes.left);
  transport_log_.tick(changes.joined);
}

SyncReport SyncSession::report() const {
  SyncReport r;
  clock_.fill_report(r);
  transport_log_.fill_report(r);
  r.inbox_dropped = wire_.inbox_dropped();
  return r;
}

std::string SyncReport::to_json() const {
  std::ostringstream o;
  o << "{\"master\":\"" << (clock.master ? clock.master->to_string() : std::string{})
    << "\",\"is_master\":" << (clock.is_master ? "true" : "false")
    << ",\"locked\":" << (clock.locked ? "true" : "false")
    << ",\"offset_us\":" << num(clock.offset_ns * 1e-3) << ",\"drift_ppm\":" << num(clock.drift_ppm)
    << ",\"quality\":" << num(clock.quality) << ",\"error_us\":" << num(clock.last_error_ns * 1e-3)
    << ",\"rtt_min_us\":" << num(clock.rtt_min_ns * 1e-3) << ",\"pings\":" << clock.pings_sent
    << ",\"pongs\":" << clock.pongs_received << ",\"pongs_used\":" << clock.pongs_used
    << ",\"steps\":" << clock.steps << ",\"steps_locked\":" << clock.steps_while_locked
    << ",\"master_changes\":" << clock.master_changes << ",\"locked_after_ms\":"
    << num(clock.locked_after_ns < 0 ? -1.0 : clock.locked_after_ns * 1e-6)
    << ",\"candidates\":" << clock.candidates << ",\"mono_ns\":" << mono_ns
    << ",\"local_ns\":" << local_ns << ",\"session_ns\":" << session_ns
    << ",\"transport\":{\"state\":\"" << sync::to_string(transport.play) << "\",\"bbt\":\""
    << sync::format_bbt(transport.bbt()) << "\",\"beats\":" << num(transport.position_beats)
    << ",\"bpm\":" << num(transport.bpm) << ",\"time_signature\":[" << transport.time_signature.num
    << ',' << transport.time_signature.den << "],\"commands\":" << transport_commands
    << ",\"ignored\":" << transport_ignored << ",\"snapshots_adopted\":" << snapshots_adopted
    << ",\"events\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (i) o << ',';
    o << "{\"command\":\"" << e.command << "\",\"origin\":\"" << e.origin << "\",\"seq\":" << e.seq
      << ",\"at_session_ns\":" << e.at_session_ns << ",\"sample\":" << e.sample
      << ",\"sample_local_ns\":" << e.sample_local_ns << ",\"sample_mono_ns\":" << e.sample_mono_ns
      << ",\"sample_session_ns\":" << e.sample_session_ns
      << ",\"late\":" << (e.late ? "true" : "false") << '}';
  }
  o << "]},\"rejected\":{";
  for (std::size_t k = 0; k < rejected.size(); ++k) {
    if (k) o << ',';
    o << '"' << ctl::to_string(static_cast<ctl::Reject>(k)) << "\":" << rejected[k];
  }
  o << "},\"inbox_dropped\":" << inbox_dropped << '}';
  return o.str();
}

}  // namespace jamnet
