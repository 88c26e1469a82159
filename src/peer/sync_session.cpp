#include "jamnet/peer/sync_session.hpp"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "jamnet/core/round.hpp"

namespace jamnet {

namespace ctl = protocol::control;
using protocol::StreamType;

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
  r.unproven_dropped = wire_.unproven_dropped();
  return r;
}

nlohmann::ordered_json SyncReport::to_json_value() const {
  using Json = nlohmann::ordered_json;
  const auto num = [](double v) { return round_significant(v, 9); };
  Json ev = Json::array();
  for (const auto& e : events) {
    ev.push_back({{"command", e.command},
                  {"origin", e.origin},
                  {"seq", e.seq},
                  {"at_session_ns", e.at_session_ns},
                  {"sample", e.sample},
                  {"sample_local_ns", e.sample_local_ns},
                  {"sample_mono_ns", e.sample_mono_ns},
                  {"sample_session_ns", e.sample_session_ns},
                  {"late", e.late}});
  }
  Json rej = Json::object();
  for (std::size_t k = 0; k < rejected.size(); ++k)
    rej[std::string(ctl::to_string(static_cast<ctl::Reject>(k)))] = rejected[k];
  return {{"master", clock.master ? clock.master->to_string() : std::string{}},
          {"is_master", clock.is_master},
          {"locked", clock.locked},
          {"offset_us", num(clock.offset_ns * 1e-3)},
          {"drift_ppm", num(clock.drift_ppm)},
          {"quality", num(clock.quality)},
          {"error_us", num(clock.last_error_ns * 1e-3)},
          {"rtt_min_us", num(clock.rtt_min_ns * 1e-3)},
          {"pings", clock.pings_sent},
          {"pongs", clock.pongs_received},
          {"pongs_used", clock.pongs_used},
          {"steps", clock.steps},
          {"steps_locked", clock.steps_while_locked},
          {"master_changes", clock.master_changes},
          {"locked_after_ms", num(clock.locked_after_ns < 0 ? -1.0 : clock.locked_after_ns * 1e-6)},
          {"candidates", clock.candidates},
          {"mono_ns", mono_ns},
          {"local_ns", local_ns},
          {"session_ns", session_ns},
          {"transport",
           {{"state", std::string(sync::to_string(transport.play))},
            {"bbt", sync::format_bbt(transport.bbt())},
            {"beats", num(transport.position_beats)},
            {"bpm", num(transport.bpm)},
            {"time_signature",
             Json::array({transport.time_signature.num, transport.time_signature.den})},
            {"commands", transport_commands},
            {"ignored", transport_ignored},
            {"snapshots_adopted", snapshots_adopted},
            {"events", std::move(ev)}}},
          {"rejected", std::move(rej)},
          {"inbox_dropped", inbox_dropped},
          {"unproven_dropped", unproven_dropped}};
}

std::string SyncReport::to_json() const {
  // Commands and origins come from the network: bytes that are not UTF-8
  // print as U+FFFD.
  return to_json_value().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace jamnet
