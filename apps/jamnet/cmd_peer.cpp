// `jamnet peer` (join a session, show live status) and `jamnet peers` (list
// who is there, then exit).
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include "command.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "jamnet/engine/io/midi_file.hpp"
#include "jamnet/engine/telemetry.hpp"
#include "jamnet/peer/session.hpp"
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
  // MIDI
  bool midi = false;
  std::string midi_in;
  bool midi_loop = false;
  std::string midi_log;
  bool jack_midi = false;
  std::string jack_server;
  // audio through JACK
  bool jack = false;
  int channels = 1;
  bool jellie = false;
  double max_drift_ppm = 1000;
  int port_linger_ms = 10000;
  std::string telemetry_jsonl;
  int burst = 3;
  bool no_adaptive = false;
  double burst_window_ms = 0.5;
  double midi_latency_ms = 5;
  double dedupe_ms = 5;
  int accept_copies = 1;
  // clock sync and transport
  bool no_sync = false;
  double sync_hz = 20;
  int sync_priority = 0;
  bool clock_master = false;
  double transport_lead_ms = 50;
  double test_clock_offset_ms = 0;
  double test_clock_skew_ppm = 0;
  bool midi_enabled() const { return midi || !midi_in.empty() || !midi_log.empty() || jack_midi; }
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
  SessionOptions so;
  PeerConfig& cfg = so.peer;
  cfg = c.flags.to_config();
  cfg.probe_rate_hz = c.probe_rate;
  cfg.probe_count = c.probe_count;
  cfg.probe_payload_bytes = c.probe_size;
  cfg.probe_start_delay_ns = Nanos{c.probe_start_ms} * 1'000'000;
  if (!c.no_sync) {
    SyncConfig sc;
    sc.sync_hz = c.sync_hz;
    sc.priority = c.sync_priority;
    sc.force_master = c.clock_master;
    sc.transport_lead_ns = static_cast<Nanos>(c.transport_lead_ms * 1e6);
    if (c.test_clock_offset_ms != 0 || c.test_clock_skew_ppm != 0) {
      sc.test_offset_ns = static_cast<Nanos>(c.test_clock_offset_ms * 1e6);
      sc.test_skew_ppm = c.test_clock_skew_ppm;
    }
    cfg.sync = sc;
  }
  if (!c.midi_in.empty()) {
    auto events = engine::io::read_smf(c.midi_in);
    if (!events) {
      std::fprintf(stderr, "jamnet peer: --midi-in: %s\n", events.error().message.c_str());
      return 1;
    }
    so.midi_file = std::move(*events);
    so.midi_loop = c.midi_loop;
  }
  // Written by its own thread: the MIDI playout thread only queues.
  std::unique_ptr<engine::io::QueuedMidiLog> midi_log;
  if (!c.midi_log.empty()) {
    auto log = engine::io::QueuedMidiLog::open(c.midi_log);
    if (!log) {
      std::fprintf(stderr, "jamnet peer: --midi-log: %s\n", log.error().message.c_str());
      return 1;
    }
    midi_log = std::move(*log);
  }
  if (c.jellie && c.channels != 1) {
    std::fprintf(stderr, "jamnet peer: --jellie sends mono audio: use --channels 1\n");
    return 2;
  }
  if (c.jack || c.jack_midi) {
    if (!engine::io::jack_midi_available()) {
      std::fprintf(stderr, "jamnet peer: %s: this build has no JACK support\n",
                   c.jack ? "--jack" : "--jack-midi");
      return 1;
    }
  }
  // --jack: one JACK client named after the peer: send_1..N in, one set of
  // outputs per remote peer, and (with MIDI) midi_in/midi_out.
  so.audio = c.jack ? AudioIo::kJack : AudioIo::kNone;
  so.channels = c.channels;
  so.jellie = c.jellie;
  so.max_drift_ppm = c.max_drift_ppm;
  so.port_linger_ns = Nanos{c.port_linger_ms} * 1'000'000;
  so.jack_server = c.jack_server;
  so.jack_midi = c.jack_midi;
  if (c.midi_enabled()) {
    MidiConfig mc;
    mc.burst.k = c.burst;
    mc.burst.adaptive = !c.no_adaptive;
    mc.burst.window_ns = static_cast<Nanos>(c.burst_window_ms * 1e6);
    mc.latency_ns = static_cast<Nanos>(c.midi_latency_ms * 1e6);
    mc.dedupe_expiry_ns = static_cast<Nanos>(c.dedupe_ms * 1e6);
    mc.accept_copies = c.accept_copies;
    cfg.midi = mc;
  }
  auto started = Session::start(std::move(so));
  if (!started) {
    const auto& e = started.error();
    // Name the flag whose device failed, so the user knows what to change.
    const bool device = e.message.rfind("JACK", 0) == 0;
    std::fprintf(stderr, "jamnet peer: %s%s\n",
                 device ? (c.jack ? "--jack: " : "--jack-midi: ") : "", e.message.c_str());
    return 1;
  }
  Session& session = **started;
  if (midi_log) {
    session.set_midi_handler([&](const MidiDelivery& d) {
      midi_log->push(d.event, d.scheduled_ns, d.played_ns, d.from);
    });
  }
  Peer& p = session.peer();
  if (!c.quiet) {
    std::fprintf(stderr, "jamnet peer '%s' (%s) on %s, session %s%s, %s\n", cfg.name.c_str(),
                 p.id().short_string().c_str(), p.local().to_string().c_str(),
                 c.flags.session.c_str(),
                 cfg.multicast ? (", multicast " + cfg.multicast->to_string()).c_str() : "",
                 cfg.key ? "keyed (every frame encrypted and authenticated)"
                         : "open (unencrypted: anyone on the path can listen; "
                           "--passphrase-file or --key-file keys it)");
  }
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  const Nanos start = monotonic_ns();
  std::uint64_t telemetry_seq = 0;
  Nanos next_print = start;
  const int tick_ms = c.jack ? std::min(c.status_ms, 20) : c.status_ms;
  Nanos next_status = start;
  while (sleep_unless_stopped(tick_ms)) {
    const Nanos now = monotonic_ns();
    if (now >= next_status) {
      next_status = now + Nanos{c.status_ms} * 1'000'000 - Nanos{tick_ms} * 500'000;
      const auto st = session.status();
      if (!c.status_jsonl.empty()) write_file(c.status_jsonl, st.to_json(), true);
      if (!c.quiet && now >= next_print) {
        std::printf(tty ? "\r\033[K%s" : "%s\n", status_line(st.report).c_str());
        std::fflush(stdout);
        next_print = now + (tty ? 0 : 1'000'000'000);
      }
    }
    // Peers, ports, transport, clock and audio errors: each named once.
    for (const auto& e : session.take_events()) {
      using K = SessionEvent::Kind;
      if (e.kind == K::kAudioError || e.kind == K::kSecurity) {
        std::fprintf(stderr, "%sjamnet peer: %s\n", tty ? "\r\033[K" : "", e.detail.c_str());
        continue;
      }
      if (c.quiet) continue;
      switch (e.kind) {
        case K::kJoined:
        case K::kRestarted:
        case K::kLeft:
        case K::kTimedOut:
          std::fprintf(stderr, "%s%s (%s) %s\n", tty ? "\r\033[K" : "", e.name.c_str(),
                       e.peer.short_string().c_str(), std::string(to_string(e.kind)).c_str());
          break;
        case K::kPortAdded:
          std::fprintf(stderr, "%sJACK port %s\n", tty ? "\r\033[K" : "", e.detail.c_str());
          break;
        case K::kPortRemoved:
          std::fprintf(stderr, "%sJACK port %s removed (its peer left)\n", tty ? "\r\033[K" : "",
                       e.detail.c_str());
          break;
        default:
          break;
      }
    }
    if (!c.telemetry_jsonl.empty()) {
      const auto t = session.telemetry();
      if (t.seq != 0 && t.seq != telemetry_seq) {
        telemetry_seq = t.seq;
        write_file(c.telemetry_jsonl, engine::TelemetryRecorder::to_json(t), true);
      }
    }
    if (const auto f = session.failure()) {
      std::fprintf(stderr, "%sjamnet peer: audio stopped: %s\n", tty ? "\r\033[K" : "",
                   f->message.c_str());
      break;
    }
    if (c.duration_s > 0 && static_cast<double>(now - start) * 1e-9 >= c.duration_s) break;
  }
  if (tty && !c.quiet) std::printf("\n");
  if (c.jack && !c.quiet) {
    // What each remote peer's stream went through, for the musician and for logs.
    for (const auto& r : p.audio()->stats().receivers) {
      const auto& j = r.jitter;
      std::fprintf(stderr,
                   "audio from %s: %llu blocks, %llu missing (lost or late), %llu late, %llu "
                   "underruns, jitter p95 %.2f ms, buffer target %.2f ms, depth %.2f ms, drift "
                   "%+.1f ppm\n",
                   r.from.short_string().c_str(), static_cast<unsigned long long>(r.blocks),
                   static_cast<unsigned long long>(j.missing_packets),
                   static_cast<unsigned long long>(j.late),
                   static_cast<unsigned long long>(j.underruns), j.jitter_ns / 1e6,
                   j.target_ns / 1e6, j.depth_ns / 1e6, j.drift_ppm);
    }
    const auto t = session.telemetry();
    if (t.seq > 0)
      std::fprintf(stderr, "engine: %s\n", engine::TelemetryRecorder::to_json(t).c_str());
  }
  const auto final_report = session.status();
  session.stop();
  if (midi_log) {
    if (!midi_log->close())
      std::fprintf(stderr, "jamnet peer: --midi-log: writing %s failed\n",
                   midi_log->path().c_str());
    if (midi_log->dropped() > 0)
      std::fprintf(stderr,
                   "jamnet peer: --midi-log: %llu events came faster than %s could be written "
                   "and are missing from it\n",
                   static_cast<unsigned long long>(midi_log->dropped()), midi_log->path().c_str());
  }
  if (!c.report_json.empty() && !write_file(c.report_json, final_report.to_json(), false)) {
    std::fprintf(stderr, "jamnet peer: cannot write %s\n", c.report_json.c_str());
    return 1;
  }
  if (!c.quiet) print_summary(stdout, {final_report.report});
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
    std::printf("%-36s %-20s %-21s %-9s %6.2f ms\n", l.info.id.to_string().c_str(),
                l.info.name.c_str(), l.info.address.to_string().c_str(),
                std::string(net::to_string(l.info.source)).c_str(), l.info.rtt_p50_ms);
  }
  if (report.links.empty()) std::printf("(no peers found in %d ms)\n", c.wait_ms);
  return 0;
}

}  // namespace

void add_peer_commands(CLI::App& root, Runner& run) {
  auto pc = std::make_shared<PeerCmd>();
  auto* peer =
      root.add_subcommand("peer", "Join a session and show a live status (peers, RTT, loss)");
  pc->flags.add_to(*peer);
  peer->add_option("--probe-rate", pc->probe_rate, "Test frames per second to each peer (0 = none)")
      ->check(CLI::Range(0.0, 20000.0));
  peer->add_option("--probe-count", pc->probe_count,
                   "Stop after this many test frames per peer (0 = no limit)");
  peer->add_option("--probe-size", pc->probe_size, "Test frame payload bytes")
      ->check(CLI::Range(8, static_cast<int>(protocol::kDefaultMaxPayload)))
      ->capture_default_str();
  peer->add_option("--probe-start-ms", pc->probe_start_ms,
                   "Wait after finding a peer before testing it")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  peer->add_option("--duration", pc->duration_s, "Seconds to run (0 = until Ctrl-C)")
      ->check(CLI::Range(0.0, 1e7));
  peer->add_option("--status-jsonl", pc->status_jsonl,
                   "Append the live report as JSON lines to this file");
  peer->add_option("--status-ms", pc->status_ms, "Status interval")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  peer->add_option("--report-json", pc->report_json, "Write the final report (JSON) to this file");
  peer->add_flag("-q,--quiet", pc->quiet, "No status output");
  peer->add_flag("--midi", pc->midi,
                 "Take part in the session's MIDI (implied by the other MIDI flags)");
  peer->add_option("--midi-in", pc->midi_in, "Play this Standard MIDI File to the session")
      ->check(CLI::ExistingFile);
  peer->add_flag("--midi-loop", pc->midi_loop, "Repeat --midi-in until stopped");
  peer->add_option("--midi-log", pc->midi_log,
                   "Write every MIDI event received to this JSONL file");
  peer->add_flag("--jack-midi", pc->jack_midi,
                 "JACK MIDI ports NAME:midi_in (sent) and NAME:midi_out (received)");
  peer->add_flag("--jack", pc->jack,
                 "Audio through JACK: NAME:send_1..N are sent to the session, and each remote "
                 "peer's audio plays on NAME:<peer>_1..N. Any period: one that does not fit a "
                 "datagram leaves as several whole sub-blocks");
  peer->add_option("--channels", pc->channels, "Audio channels sent and received with --jack")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  peer->add_flag("--jellie", pc->jellie,
                 "Send audio as JELLIE (4 redundant streams, 2x bandwidth; mono only)");
  peer->add_option("--port-linger-ms", pc->port_linger_ms,
                   "With --jack: keep a departed peer's ports this long after it left or timed "
                   "out, so a restart comes back on them with their connections")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  peer->add_option("--max-drift-ppm", pc->max_drift_ppm,
                   "Largest clock drift the jitter buffer corrects by resampling (0: off)")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  peer->add_option("--telemetry-jsonl", pc->telemetry_jsonl,
                   "With --jack: append the audio engine's telemetry (one JSON line per second: "
                   "tick jitter, cycle load, commands, queue depths, xruns) to this file");
  peer->add_option("--jack-server", pc->jack_server,
                   "JACK server name (default: the default server)");
  peer->add_option("--burst", pc->burst,
                   "Copies of each MIDI event (the start value when adaptive)")
      ->check(CLI::Range(1, 15))
      ->capture_default_str();
  peer->add_flag("--no-adaptive", pc->no_adaptive,
                 "Keep --burst fixed instead of adapting it to measured loss");
  peer->add_option("--burst-window-ms", pc->burst_window_ms,
                   "All copies of an event leave within this window")
      ->check(CLI::Range(0.0, 50.0))
      ->capture_default_str();
  peer->add_option("--midi-latency-ms", pc->midi_latency_ms,
                   "Play received MIDI this long after it was sent")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  peer->add_option(
          "--accept-copies", pc->accept_copies,
          "Copies of a MIDI event that must arrive before it plays (at most the burst size)")
      ->check(CLI::Range(1, 15))
      ->capture_default_str();
  peer->add_option("--dedupe-ms", pc->dedupe_ms, "Remember burst ids this long")
      ->check(CLI::Range(0.5, 10000.0))
      ->capture_default_str();
  peer->add_flag("--no-sync", pc->no_sync,
                 "Take no part in clock sync and transport (they are on by default)");
  peer->add_option("--sync-hz", pc->sync_hz, "Clock sync exchanges per second with the master")
      ->check(CLI::Range(1.0, 100.0))
      ->capture_default_str();
  peer->add_option("--sync-priority", pc->sync_priority,
                   "Preference to be the clock master (higher wins; ties go to the lower id)")
      ->check(CLI::Range(-1000, 1000))
      ->capture_default_str();
  peer->add_flag("--clock-master", pc->clock_master,
                 "Be the session's clock master (configured; wins every election)");
  peer->add_option("--transport-lead-ms", pc->transport_lead_ms,
                   "Schedule this peer's transport commands this far ahead, so every peer acts "
                   "on the same sample")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  peer->add_option("--test-clock-offset-ms", pc->test_clock_offset_ms,
                   "Testing: run on a local clock offset by this much from the system's")
      ->check(CLI::Range(-1e9, 1e9));
  peer->add_option("--test-clock-skew-ppm", pc->test_clock_skew_ppm,
                   "Testing: run on a local clock this many ppm fast (negative: slow)")
      ->check(CLI::Range(-1000.0, 1000.0));
  peer->callback([pc, &run] { run = [pc] { return run_peer(*pc); }; });

  auto ps = std::make_shared<PeersCmd>();
  auto* peers = root.add_subcommand("peers", "List the peers of a session and exit");
  ps->flags.add_to(*peers);
  peers->add_option("--wait-ms", ps->wait_ms, "How long to listen")
      ->check(CLI::Range(50, 60000))
      ->capture_default_str();
  peers->add_flag("--json", ps->json, "Print the report as JSON");
  peers->callback([ps, &run] { run = [ps] { return run_peers(*ps); }; });
}

}  // namespace jamnet::app
