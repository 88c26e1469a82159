#include "peer_flags.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>

#include "command.hpp"
#include "jamnet/peer/key_file.hpp"

namespace jamnet::app {

void PeerFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--name", name, "Name shown to other peers (default: host name)");
  cmd.add_option("--session", session, "Session to join: a name or a UUID")->capture_default_str();
  cmd.add_option("--id", id, "Fixed peer UUID (default: random per run)");
  cmd.add_option(
         "--bind", bind,
         "Local address for all unicast traffic; use your LAN address to play with other machines")
      ->check(EndpointValidator{})
      ->capture_default_str();
  cmd.add_option("--multicast", multicast, "Discovery multicast group")
      ->check(EndpointValidator{})
      ->capture_default_str();
  cmd.add_flag("--no-multicast", no_multicast,
               "Do not use multicast (find peers with --connect only)");
  cmd.add_option("--multicast-if", multicast_if,
                 "Interface address for multicast (default: the --bind address)");
  cmd.add_option("--connect", connect, "Peer or relay to announce to by unicast (repeatable)")
      ->check(EndpointValidator{});
  cmd.add_option("--announce-ms", announce_ms, "Announce interval")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  cmd.add_option("--heartbeat-ms", heartbeat_ms, "Ping interval (RTT)")
      ->check(CLI::Range(5, 60000))
      ->capture_default_str();
  cmd.add_option("--timeout-ms", timeout_ms, "Drop a peer silent this long")
      ->check(CLI::Range(50, 600000))
      ->capture_default_str();
  auto* kf = cmd.add_option("--key-file", key_file,
                            "Join a keyed session: every frame encrypted and authenticated with "
                            "the 256-bit key in FILE (from `jamnet keygen`; mode 0600)");
  cmd.add_option("--passphrase-file", passphrase_file,
                 "Join a keyed session whose key comes from the passphrase on FILE's first line "
                 "(Argon2id, salted with the session name; mode 0600). JAMNET_PASSPHRASE does "
                 "the same from the environment")
      ->excludes(kf);
}

PeerConfig PeerFlags::to_config() const {
  PeerConfig c;
  if (name.empty()) {
    char host[64] = "peer";
    ::gethostname(host, sizeof host - 1);
    c.name = std::string(host) + "-" + std::to_string(::getpid());
  } else {
    c.name = name;
  }
  // Keyed or open: the key decides the session id too.
  if (!key_file.empty()) {
    auto key = read_key_file(key_file);
    if (!key) throw CLI::ValidationError("--key-file", key.error().message);
    c.key = *key;
  } else {
    std::string passphrase;
    const char* from = "--passphrase-file";
    if (!passphrase_file.empty()) {
      auto p = read_passphrase_file(passphrase_file);
      if (!p) throw CLI::ValidationError("--passphrase-file", p.error().message);
      passphrase = std::move(*p);
    } else if (const char* env = std::getenv("JAMNET_PASSPHRASE"); env != nullptr && *env != 0) {
      passphrase = env;
      from = "JAMNET_PASSPHRASE";
      // Read once; programs this one starts do not inherit it.
      protocol::wipe({reinterpret_cast<std::uint8_t*>(const_cast<char*>(env)), std::strlen(env)});
      ::unsetenv("JAMNET_PASSPHRASE");
    }
    if (!passphrase.empty()) {
      auto key = protocol::key_from_passphrase(passphrase, session);
      protocol::wipe(passphrase);
      if (!key) throw CLI::ValidationError(from, key.error().message);
      c.key = *key;
    }
  }
  c.session = c.key ? session_id_from(session, *c.key) : session_id_from(session);
  if (!id.empty()) {
    auto parsed = Uuid::parse(id);
    if (!parsed) throw CLI::ValidationError("--id", parsed.error().message);
    c.id = *parsed;
  }
  c.bind = endpoint_arg(bind);
  if (no_multicast) {
    c.multicast.reset();
  } else {
    c.multicast = endpoint_arg(multicast);
    if (!c.multicast->is_multicast()) {
      throw CLI::ValidationError("--multicast",
                                 multicast + " is not a multicast address (224.0.0.0/4)");
    }
  }
  if (!multicast_if.empty()) {
    in_addr a{};
    if (::inet_pton(AF_INET, multicast_if.c_str(), &a) != 1) {
      throw CLI::ValidationError("--multicast-if",
                                 "expected an IPv4 address, got '" + multicast_if + "'");
    }
    c.multicast_iface = ntohl(a.s_addr);
  }
  for (const auto& s : connect) c.connect.push_back(endpoint_arg(s));
  c.announce_interval_ns = Nanos{announce_ms} * 1'000'000;
  c.heartbeat_interval_ns = Nanos{heartbeat_ms} * 1'000'000;
  c.peer_timeout_ns = Nanos{timeout_ms} * 1'000'000;
  return c;
}

std::string status_line(const PeerReport& r) {
  std::string s =
      r.name + ": " + std::to_string(r.links.size()) + " peer" + (r.links.size() == 1 ? "" : "s");
  for (const auto& l : r.links) {
    char buf[160];
    std::snprintf(
        buf, sizeof buf, " | %s rtt %.2f ms loss %.1f%%", l.info.name.c_str(), l.info.rtt_last_ms,
        100.0 * (l.probes_received + l.probes_lost > 0 ? l.probe_loss() : l.info.heartbeat_loss()));
    s += buf;
  }
  if (r.sync) {
    const auto& k = r.sync->clock;
    char buf[200];
    if (k.is_master)
      std::snprintf(buf, sizeof buf, " | clock master");
    else if (k.master)
      std::snprintf(buf, sizeof buf, " | clock %s offset %+.3f ms drift %+.2f ppm q %.2f",
                    k.locked ? "locked" : "syncing", k.offset_ns * 1e-6, k.drift_ppm, k.quality);
    else
      std::snprintf(buf, sizeof buf, " | clock alone");
    s += buf;
    const auto& t = r.sync->transport;
    std::snprintf(buf, sizeof buf, " | %s %s %.1f bpm",
                  std::string(sync::to_string(t.play)).c_str(), sync::format_bbt(t.bbt()).c_str(),
                  t.bpm);
    s += buf;
  }
  if (r.midi) {
    std::uint64_t delivered = 0;
    std::size_t held = 0;
    for (const auto& m : r.midi->senders) {
      delivered += m.delivered;
      held += m.held_notes;
    }
    char buf[128];
    std::snprintf(buf, sizeof buf, " | midi sent %llu got %llu held %zu k=%d",
                  static_cast<unsigned long long>(r.midi->events_sent),
                  static_cast<unsigned long long>(delivered), held, r.midi->k);
    s += buf;
  }
  if (r.audio) {
    const auto& a = *r.audio;
    char buf[200];
    std::snprintf(buf, sizeof buf, " | audio sent %llu pkts of %d fr",
                  static_cast<unsigned long long>(a.packets_sent), a.packet_frames);
    s += buf;
    if (a.send_errors + a.encode_errors + a.bad_blocks > 0) {
      std::snprintf(buf, sizeof buf, " NOT SENT %llu (send %llu, encode %llu, bad %llu)",
                    static_cast<unsigned long long>(a.send_errors + a.encode_errors + a.bad_blocks),
                    static_cast<unsigned long long>(a.send_errors),
                    static_cast<unsigned long long>(a.encode_errors),
                    static_cast<unsigned long long>(a.bad_blocks));
      s += buf;
    }
    for (const auto& rx : a.receivers) {
      const double db = rx.peak > 0 ? 20.0 * std::log10(rx.peak) : -120.0;
      std::snprintf(buf, sizeof buf, " | %s %.0f dB buf %.1f ms miss %llu", rx.name.c_str(), db,
                    rx.jitter.depth_ns * 1e-6,
                    static_cast<unsigned long long>(rx.jitter.missing_packets));
      s += buf;
    }
  }
  return s;
}

void print_midi_summary(std::FILE* out, const std::vector<PeerReport>& reports) {
  std::map<Uuid, std::pair<std::string, std::uint64_t>> senders;  // id -> (name, events sent)
  for (const auto& r : reports) {
    if (r.midi) senders[r.id] = {r.name, r.midi->events_sent};
  }
  std::fprintf(out, "\n%-10s %-10s %8s %10s %8s %9s %8s %6s %7s %6s\n", "midi to", "from", "sent",
               "delivered", "rate", "dup-drop", "repairs", "late", "stuck", "k");
  for (const auto& r : reports) {
    if (!r.midi) continue;
    for (const auto& m : r.midi->senders) {
      const auto it = senders.find(m.id);
      const std::string name = it != senders.end() ? it->second.first : m.id.short_string();
      const std::uint64_t sent = it != senders.end() ? it->second.second : 0;
      const int k = [&] {
        for (const auto& x : reports) {
          if (x.id == m.id && x.midi) return x.midi->k;
        }
        return 0;
      }();
      std::fprintf(
          out, "%-10s %-10s %8llu %10llu %7.2f%% %9llu %8llu %6llu %7zu %6d\n", r.name.c_str(),
          name.c_str(), static_cast<unsigned long long>(sent),
          static_cast<unsigned long long>(m.delivered),
          sent ? 100.0 * static_cast<double>(m.delivered) / static_cast<double>(sent) : 0.0,
          static_cast<unsigned long long>(m.duplicates), static_cast<unsigned long long>(m.repairs),
          static_cast<unsigned long long>(m.late), m.held_notes, k);
    }
  }
  std::fprintf(
      out,
      "delivered: events received (first copy of a burst); dup-drop: copies dropped as "
      "duplicates;\n"
      "repairs: corrections from the recovery journal; stuck: notes still held here at the end.\n");
}

void print_summary(std::FILE* out, const std::vector<PeerReport>& reports) {
  std::fprintf(out, "\n%-10s %-10s %-9s %10s %10s %8s %7s %8s %6s %9s %9s\n", "peer", "from",
               "path", "sent", "received", "lost", "loss%", "dup-drop", "crc", "rtt p50",
               "rtt p99");
  for (const auto& r : reports) {
    std::uint64_t sent = 0, received = 0, lost = 0, dups = 0, corrupt = 0;
    for (const auto& l : r.links) {
      std::fprintf(
          out, "%-10s %-10s %-9s %10llu %10llu %8llu %6.2f%% %8llu %6llu %6.2f ms %6.2f ms\n",
          r.name.c_str(), l.info.name.c_str(), std::string(net::to_string(l.info.source)).c_str(),
          static_cast<unsigned long long>(l.probes_sent),
          static_cast<unsigned long long>(l.probes_received),
          static_cast<unsigned long long>(l.probes_lost), 100.0 * l.probe_loss(),
          static_cast<unsigned long long>(l.duplicates_dropped),
          static_cast<unsigned long long>(l.corrupt), l.info.rtt_p50_ms, l.info.rtt_p99_ms);
      sent += l.probes_sent;
      received += l.probes_received;
      lost += l.probes_lost;
      dups += l.duplicates_dropped;
      corrupt += l.corrupt;
    }
    const double loss =
        received + lost ? 100.0 * static_cast<double>(lost) / static_cast<double>(received + lost)
                        : 0;
    std::fprintf(out, "%-10s %-10s %-9s %10llu %10llu %8llu %6.2f%% %8llu %6llu\n", r.name.c_str(),
                 "(total)", "", static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(received), static_cast<unsigned long long>(lost),
                 loss, static_cast<unsigned long long>(dups),
                 static_cast<unsigned long long>(corrupt));
  }
  std::fprintf(out,
               "\nsent/received/lost: test frames to/from that peer; dup-drop: duplicates the "
               "transport dropped;\n"
               "crc: frames from that peer that failed the CRC; rtt: heartbeat round trip.\n");
}

}  // namespace jamnet::app
