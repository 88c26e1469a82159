// `jamnet peer` (join a session, show live status) and `jamnet peers` (list
// who is there, then exit).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "command.hpp"
#include "peer_flags.hpp"

namespace jamnet::app {

namespace {

struct PeerCmd {
  PeerFlags flags;
  double probe_rate = 0;
  std::uint64_t probe_count = 0;
  std::size_t probe_size = 200;
  int probe_start_ms = 500;
  double duration_s = 0;
  std::string status_jsonl;
  int status_ms = 200;
  std::string report_json;
  bool quiet = false;
};

struct PeersCmd {
  PeerFlags flags;
  int wait_ms = 1500;
  bool json = false;
};

bool write_file(const std::string& path, const std::string& text, bool append) {
  std::ofstream f(path, append ? std::ios::app : std::ios::trunc);
  f << text << '\n';
  return static_cast<bool>(f);
}

int run_peer(const PeerCmd& c) {
  PeerConfig cfg = c.flags.to_config();
  cfg.probe_rate_hz = c.probe_rate;
  cfg.probe_count = c.probe_count;
  cfg.probe_payload_bytes = c.probe_size;
  cfg.probe_start_delay_ns = Nanos{c.probe_start_ms} * 1'000'000;
  auto peer = Peer::start(cfg);
  if (!peer) {
    std::fprintf(stderr, "jamnet peer: %s\n", peer.error().message.c_str());
    return 1;
  }
  Peer& p = **peer;
  if (!c.quiet) {
    std::fprintf(stderr, "jamnet peer '%s' (%s) on %s, session %s%s\n", cfg.name.c_str(),
                 p.id().short_string().c_str(), p.local().to_string().c_str(), c.flags.session.c_str(),
                 cfg.multicast ? (", multicast " + cfg.multicast->to_string()).c_str() : "");
  }
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  const Nanos start = monotonic_ns();
  Nanos next_print = start;
  while (sleep_unless_stopped(c.status_ms)) {
    const Nanos now = monotonic_ns();
    const auto report = p.report();
    if (!c.status_jsonl.empty()) write_file(c.status_jsonl, report.to_json(), true);
    for (const auto& e : p.take_events()) {
      if (!c.quiet) {
        std::fprintf(stderr, "%s%s (%s) %s\n", tty ? "\r\033[K" : "", e.name.c_str(), e.id.short_string().c_str(),
                     std::string(net::to_string(e.kind)).c_str());
      }
    }
    if (!c.quiet && now >= next_print) {
      std::printf(tty ? "\r\033[K%s" : "%s\n", status_line(report).c_str());
      std::fflush(stdout);
      next_print = now + (tty ? 0 : 1'000'000'000);
    }
    if (c.duration_s > 0 && static_cast<double>(now - start) * 1e-9 >= c.duration_s) break;
  }
  const auto final_report = p.report();
  p.stop();
  if (!c.report_json.empty() && !write_file(c.report_json, final_report.to_json(), false)) {
    std::fprintf(stderr, "jamnet peer: cannot write %s\n", c.report_json.c_str());
    return 1;
  }
  if (!c.quiet) print_summary(stdout, {final_report});
  return 0;
}

int run_peers(const PeersCmd& c) {
  auto peer = Peer::start(c.flags.to_config());
  if (!peer) {
    std::fprintf(stderr, "jamnet peers: %s\n", peer.error().message.c_str());
    return 1;
  }
  // Wait long enough for announcements and a few pings to come back.
  sleep_unless_stopped(c.wait_ms);
  const auto report = (*peer)->report();
  (*peer)->stop();
  if (c.json) {
    std::printf("%s\n", report.to_json().c_str());
    return 0;
  }
  std::printf("%-36s %-20s %-21s %-9s %9s\n", "id", "name", "address", "path", "rtt");
  for (const auto& l : report.links) {
    std::printf("%-36s %-20s %-21s %-9s %6.2f ms\n", l.info.id.to_string().c_str(), l.info.name.c_str(),
                l.info.address.to_string().c_str(), std::string(net::to_string(l.info.source)).c_str(),
                l.info.rtt_p50_ms);
  }
  if (report.links.empty()) std::printf("(no peers found in %d ms)\n", c.wait_ms);
  return 0;
}

}  // namespace

void add_peer_commands(CLI::App& root, Runner& run) {
  auto pc = std::make_shared<PeerCmd>();
  auto* peer = root.add_subcommand("peer", "Join a session and show a live status (peers, RTT, loss)");
  pc->flags.add_to(*peer);
  peer->add_option("--probe-rate", pc->probe_rate, "Test frames per second to each peer (0 = none)")
      ->check(CLI::Range(0.0, 20000.0));
  peer->add_option("--probe-count", pc->probe_count, "Stop after this many test frames per peer (0 = no limit)");
  peer->add_option("--probe-size", pc->probe_size, "Test frame payload bytes")
      ->check(CLI::Range(8, static_cast<int>(protocol::kDefaultMaxPayload)))
      ->capture_default_str();
  peer->add_option("--probe-start-ms", pc->probe_start_ms, "Wait after finding a peer before testing it")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  peer->add_option("--duration", pc->duration_s, "Seconds to run (0 = until Ctrl-C)")->check(CLI::Range(0.0, 1e7));
  peer->add_option("--status-jsonl", pc->status_jsonl, "Append the live report as JSON lines to this file");
  peer->add_option("--status-ms", pc->status_ms, "Status interval")->check(CLI::Range(10, 60000))->capture_default_str();
  peer->add_option("--report-json", pc->report_json, "Write the final report (JSON) to this file");
  peer->add_flag("-q,--quiet", pc->quiet, "No status output");
  peer->callback([pc, &run] { run = [pc] { return run_peer(*pc); }; });

  auto ps = std::make_shared<PeersCmd>();
  auto* peers = root.add_subcommand("peers", "List the peers of a session and exit");
  ps->flags.add_to(*peers);
  peers->add_option("--wait-ms", ps->wait_ms, "How long to listen")->check(CLI::Range(50, 60000))->capture_default_str();
  peers->add_flag("--json", ps->json, "Print the report as JSON");
  peers->callback([ps, &run] { run = [ps] { return run_peers(*ps); }; });
}

}  // namespace jamnet::app
