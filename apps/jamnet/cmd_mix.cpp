// `jamnet mix --to PEER --source NAME|ID [--gain-db G] [--mute|--unmute] [--pan P]`:
// sets one source of a running peer's personal mix (Session::set_mix).
#include <cstdio>
#include <memory>
#include <random>

#include "command.hpp"
#include "jamnet/peer/control_client.hpp"
#include "peer_flags.hpp"

namespace jamnet::app {

namespace {

struct MixCmd {
  PeerFlags flags;
  std::string to;    // the peer whose mix changes, by name
  std::string peer;  // ... or by address
  std::string source;
  std::optional<double> gain_db;
  bool mute = false, unmute = false;
  std::optional<double> pan;
  int wait_ms = 2000;
};

int run_mix(const MixCmd& c) {
  if (c.to.empty() && c.peer.empty()) {
    std::fprintf(stderr, "jamnet mix: say whose mix to change: --to NAME or --peer HOST:PORT\n");
    return 2;
  }
  protocol::control::RequestMsg req;
  std::random_device rd;
  req.id = (static_cast<std::uint64_t>(rd()) << 32 | rd()) & 0x7FFF'FFFF'FFFF'FFFFull;
  req.action = "mix";
  req.source = c.source;
  req.gain_db = c.gain_db;
  if (c.mute) req.mute = true;
  if (c.unmute) req.mute = false;
  req.pan = c.pan;
  PeerConfig cfg = c.flags.to_config();
  cfg.name = "jamnet-mix";
  std::optional<net::Endpoint> target;
  if (!c.peer.empty()) target = endpoint_arg(c.peer);
  auto answer = send_control_request(cfg, req, target, Nanos{c.wait_ms} * 1'000'000,
                                     [] { return stop_requested(); }, c.to);
  if (!answer) {
    std::fprintf(stderr, "jamnet mix: %s\n", answer.error().message.c_str());
    return 1;
  }
  const auto& r = answer->reply;
  std::printf("%s: %s\n", r.ok ? "ok" : "refused", r.detail.c_str());
  return r.ok ? 0 : 1;
}

}  // namespace

void add_mix_command(CLI::App& root, Runner& run) {
  auto mc = std::make_shared<MixCmd>();
  auto* cmd = root.add_subcommand(
      "mix",
      "Set one source's gain, mute and pan in a running peer's personal mix (what that peer "
      "hears of it)");
  cmd->add_option("--to", mc->to, "The peer whose mix changes, by its --name");
  cmd->add_option("--peer", mc->peer, "... or by its address (HOST:PORT, its --bind)")
      ->check(EndpointValidator{});
  cmd->add_option("--source", mc->source, "The source: a peer's name or id, as its status shows")
      ->required();
  cmd->add_option("--gain-db", mc->gain_db, "Gain in dB (-120..+24; 0 = as sent)")
      ->check(CLI::Range(-120.0, 24.0));
  auto* mute = cmd->add_flag("--mute", mc->mute, "Silence the source");
  cmd->add_flag("--unmute", mc->unmute, "Hear the source again")->excludes(mute);
  cmd->add_option("--pan", mc->pan, "Stereo position: -1 left, 0 centre, +1 right")
      ->check(CLI::Range(-1.0, 1.0));
  mc->flags.add_to(*cmd);
  cmd->add_option("--wait-ms", mc->wait_ms, "Give up after this long")
      ->check(CLI::Range(50, 60000))
      ->capture_default_str();
  cmd->callback([mc, &run] { run = [mc] { return run_mix(*mc); }; });
}

}  // namespace jamnet::app
