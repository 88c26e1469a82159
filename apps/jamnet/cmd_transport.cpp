// `jamnet transport play|stop|pause|record|tempo BPM|seek BAR.BEAT.TICK|status`:
// acts on a running session through one of its peers (docs/control.md).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <random>

#include "command.hpp"
#include "jamnet/peer/control_client.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/transport.hpp"
#include "peer_flags.hpp"

namespace jamnet::app {

namespace {

namespace ctl = protocol::control;

struct TransportCmd {
  PeerFlags flags;
  std::string action;
  std::string value;  // tempo: bpm; seek: BAR.BEAT.TICK
  std::string peer;   // HOST:PORT of the peer to ask; default: the first found
  double lead_ms = -1;
  int wait_ms = 2000;
  bool json = false;
};

int run_transport(const TransportCmd& c) {
  ctl::RequestMsg req;
  std::random_device rd;
  req.id = (static_cast<std::uint64_t>(rd()) << 32 | rd()) & 0x7FFF'FFFF'FFFF'FFFFull;
  req.action = c.action;
  if (c.action == "tempo") {
    if (c.value.empty()) {
      std::fprintf(stderr, "jamnet transport tempo: give the tempo, e.g. 'tempo 120'\n");
      return 2;
    }
    char* end = nullptr;
    const double bpm = std::strtod(c.value.c_str(), &end);
    if (end == c.value.c_str() || *end != '\0' || !(bpm >= 20 && bpm <= 999)) {
      std::fprintf(stderr, "jamnet transport tempo: '%s' is not a tempo in 20..999 bpm\n",
                   c.value.c_str());
      return 2;
    }
    req.bpm = bpm;
  } else if (c.action == "seek") {
    if (c.value.empty()) {
      std::fprintf(stderr, "jamnet transport seek: give the position, e.g. 'seek 4.1.0'\n");
      return 2;
    }
    // Checked here against 4/4 for the form; the peer checks the beat against
    // the session's time signature.
    auto bbt = sync::parse_bbt(c.value, sync::TimeSignature{64, 4});
    if (!bbt) {
      std::fprintf(stderr, "jamnet transport seek: %s\n", bbt.error().message.c_str());
      return 2;
    }
    req.bbt = c.value;
  } else if (!c.value.empty()) {
    std::fprintf(stderr, "jamnet transport %s takes no value (got '%s')\n", c.action.c_str(),
                 c.value.c_str());
    return 2;
  }
  if (c.lead_ms >= 0) req.lead_ns = static_cast<Nanos>(c.lead_ms * 1e6);

  PeerConfig cfg = c.flags.to_config();
  cfg.name = "jamnet-transport";
  std::optional<net::Endpoint> target;
  if (!c.peer.empty()) target = endpoint_arg(c.peer);
  auto answer = send_control_request(cfg, req, target, Nanos{c.wait_ms} * 1'000'000,
                                     [] { return stop_requested(); });
  if (!answer) {
    if (answer.error().code == Errc::kNotFound)
      std::fprintf(stderr,
                   "jamnet transport: no peer of session '%s' found in %d ms (is a 'jamnet peer' "
                   "running? name it with --peer HOST:PORT)\n",
                   c.flags.session.c_str(), c.wait_ms);
    else
      std::fprintf(stderr, "jamnet transport: %s\n", answer.error().message.c_str());
    return 1;
  }
  const auto* target_used = &answer->peer;
  const auto& r = answer->reply;
  if (c.json) {
    nlohmann::json j{{"ok", r.ok}, {"detail", r.detail}, {"peer", target_used->to_string()}};
    if (r.at_session_ns) j["at_session_ns"] = *r.at_session_ns;
    if (!r.status_json.empty()) {
      auto s = nlohmann::json::parse(r.status_json, nullptr, false);
      if (!s.is_discarded()) j["status"] = s;
    }
    std::printf("%s\n", j.dump().c_str());
  } else if (!r.status_json.empty()) {
    std::printf("%s\n", r.status_json.c_str());
  } else {
    std::printf("%s: %s\n", r.ok ? "ok" : "refused", r.detail.c_str());
  }
  return r.ok ? 0 : 1;
}

}  // namespace

void add_transport_command(CLI::App& root, Runner& run) {
  auto tc = std::make_shared<TransportCmd>();
  auto* cmd = root.add_subcommand(
      "transport",
      "Play, stop, pause, record, change tempo or seek on a running session, on the same "
      "sample at every peer");
  cmd->add_option("action", tc->action,
                  "play | stop | pause | record | tempo BPM | seek BAR.BEAT.TICK | status")
      ->required()
      ->check(CLI::IsMember({"play", "stop", "pause", "record", "tempo", "seek", "status"}));
  cmd->add_option("value", tc->value,
                  "tempo: beats per minute (20..999); seek: e.g. 4.1.0 "
                  "(bar 4, beat 1, tick 0; 960 ticks per beat)");
  tc->flags.add_to(*cmd);
  cmd->add_option("--peer", tc->peer,
                  "Ask this peer (HOST:PORT, its --bind); default: the first peer found")
      ->check(EndpointValidator{});
  cmd->add_option("--lead-ms", tc->lead_ms,
                  "Act this far ahead in session time (default: the peer's --transport-lead-ms)")
      ->check(CLI::Range(0.0, 10000.0));
  cmd->add_option("--wait-ms", tc->wait_ms, "Give up after this long")
      ->check(CLI::Range(50, 60000))
      ->capture_default_str();
  cmd->add_flag("--json", tc->json, "Print the answer as JSON");
  cmd->callback([tc, &run] { run = [tc] { return run_transport(*tc); }; });
}

}  // namespace jamnet::app
