// `jamnet send` and `jamnet listen`: raw TOAST frames, for debugging.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <random>

#include "command.hpp"
#include "jamnet/net/udp_socket.hpp"
#include "jamnet/peer/peer.hpp"
#include "jamnet/protocol/toast_frame.hpp"
#include "jamnet/protocol/topic.hpp"

namespace jamnet::app {

namespace {

using protocol::FormatType;
using protocol::StreamType;

const std::map<std::string, StreamType> kStreams{
    {"midi", StreamType::kMidi},          {"audio", StreamType::kAudio},
    {"video", StreamType::kVideo},        {"control", StreamType::kControl},
    {"sync", StreamType::kSync},          {"discovery", StreamType::kDiscovery},
    {"heartbeat", StreamType::kHeartbeat}};
const std::map<std::string, FormatType> kFormats{{"json", FormatType::kStandardJson},
                                                 {"jsonl", FormatType::kCompactJsonl},
                                                 {"binary", FormatType::kBinary}};

Result<std::vector<std::uint8_t>> parse_hex(const std::string& hex) {
  std::vector<std::uint8_t> out;
  int hi = -1;
  for (char c : hex) {
    if (c == ' ' || c == ':') continue;
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0) return make_error(Errc::kParse, std::string("not a hex digit: '") + c + "'");
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) return make_error(Errc::kParse, "odd number of hex digits");
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

struct SendCmd {
  std::string bind = "127.0.0.1:0";
  std::string connect;
  std::string multicast;
  std::string session = "default";
  std::string stream = "control";
  std::string format = "binary";
  std::uint16_t kind = 1;
  std::uint16_t index = 0;
  std::string payload;
  std::string payload_hex;
  std::string raw_hex;
  std::uint64_t count = 1;
  int interval_ms = 10;
  std::uint32_t seq = 0;
};

int run_send(const SendCmd& c) {
  if (c.connect.empty() == c.multicast.empty()) {
    std::fprintf(stderr, "jamnet send: give exactly one of --connect or --multicast\n");
    return 2;
  }
  const net::Endpoint to = endpoint_arg(c.connect.empty() ? c.multicast : c.connect);
  const net::Endpoint local = endpoint_arg(c.bind);
  auto sock = net::UdpSocket::bind(local);
  if (!sock) {
    std::fprintf(stderr, "jamnet send: %s\n", sock.error().message.c_str());
    return 1;
  }
  if (to.is_multicast()) (void)sock->set_multicast_out(local.addr);
  std::vector<std::uint8_t> raw;
  std::vector<std::uint8_t> payload(c.payload.begin(), c.payload.end());
  if (!c.raw_hex.empty() || !c.payload_hex.empty()) {
    auto bytes = parse_hex(c.raw_hex.empty() ? c.payload_hex : c.raw_hex);
    if (!bytes) {
      std::fprintf(stderr, "jamnet send: %s: %s\n",
                   c.raw_hex.empty() ? "--payload-hex" : "--raw-hex",
                   bytes.error().message.c_str());
      return 2;
    }
    (c.raw_hex.empty() ? payload : raw) = std::move(*bytes);
  }
  protocol::FrameHeader h;
  h.stream_type = kStreams.at(c.stream);
  h.format_type = kFormats.at(c.format);
  h.message_kind = c.kind;
  h.stream_index = c.index;
  h.session_id = session_id_from(c.session);
  std::uint64_t sent = 0;
  for (std::uint64_t i = 0; i < c.count; ++i) {
    if (i > 0 && !sleep_unless_stopped(c.interval_ms)) break;
    std::vector<std::uint8_t> bytes = raw;
    if (raw.empty()) {
      h.sequence = c.seq + static_cast<std::uint32_t>(i);
      h.timestamp_ns = monotonic_ns();
      auto frame = protocol::encode_frame(h, payload);
      if (!frame) {
        std::fprintf(stderr, "jamnet send: %s\n", frame.error().message.c_str());
        return 1;
      }
      bytes = std::move(*frame);
    }
    if (sock->send_to(bytes, to)) ++sent;
  }
  std::fprintf(stderr, "sent %llu of %llu datagrams to %s\n", static_cast<unsigned long long>(sent),
               static_cast<unsigned long long>(c.count), to.to_string().c_str());
  return sent == c.count ? 0 : 1;
}

struct ListenCmd {
  std::string bind = "127.0.0.1:0";
  std::string multicast;
  bool json = false;
  std::uint64_t count = 0;
  double duration_s = 0;
};

int run_listen(const ListenCmd& c) {
  net::Endpoint local = endpoint_arg(c.bind);
  std::optional<net::Endpoint> group;
  net::UdpOptions opts;
  if (!c.multicast.empty()) {
    group = endpoint_arg(c.multicast);
    if (!group->is_multicast()) {
      std::fprintf(stderr, "jamnet listen: --multicast: %s is not a multicast address\n",
                   c.multicast.c_str());
      return 2;
    }
    opts.reuse = true;
  }
  auto sock = net::UdpSocket::bind(group ? *group : local, opts);
  if (!sock) {
    std::fprintf(stderr, "jamnet listen: %s\n", sock.error().message.c_str());
    return 1;
  }
  if (group) {
    if (auto r = sock->join_multicast(*group, local.addr); !r) {
      std::fprintf(stderr, "jamnet listen: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "listening on %s\n", sock->local().to_string().c_str());
  std::vector<std::uint8_t> buf(65536);
  std::uint64_t seen = 0;
  const Nanos start = monotonic_ns();
  net::Datagram dg;
  while (!stop_requested() && (c.count == 0 || seen < c.count)) {
    if (c.duration_s > 0 && static_cast<double>(monotonic_ns() - start) * 1e-9 >= c.duration_s)
      break;
    if (!sock->receive(buf, dg)) {
      sleep_unless_stopped(1);
      continue;
    }
    ++seen;
    const std::span<const std::uint8_t> bytes(buf.data(), dg.truncated ? buf.size() : dg.size);
    auto f = protocol::decode_frame(bytes);
    if (c.json) {
      nlohmann::json j;
      j["from"] = dg.from.to_string();
      j["bytes"] = dg.size;
      j["rx_kernel_ns"] = dg.kernel_rx_realtime_ns;
      if (!f) {
        j["error"] = protocol::to_string(f.error());
      } else {
        const auto& h = f->header;
        j["version"] = h.version;
        j["stream"] = protocol::to_string(h.stream_type);
        j["format"] = protocol::to_string(h.format_type);
        j["kind"] = h.message_kind;
        j["index"] = h.stream_index;
        j["message_type"] = h.message_type();
        j["timestamp_ns"] = h.timestamp_ns;
        j["seq"] = h.sequence;
        j["session"] = h.session_id.to_string();
        j["topic"] = protocol::topic_uri(h.session_id, {h.stream_type, h.stream_index});
        j["payload_len"] = f->payload.size();
        j["payload_hex"] = to_hex(f->payload);
        if (h.format_type != FormatType::kBinary) {
          j["payload_text"] = std::string(f->payload.begin(), f->payload.end());
        }
      }
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else if (!f) {
      std::printf("%s  %zu bytes  ERROR %s\n", dg.from.to_string().c_str(), dg.size,
                  std::string(protocol::to_string(f.error())).c_str());
    } else {
      const auto& h = f->header;
      std::printf("%s  %-9s %-13s kind=%u seq=%u ts=%lld payload=%zu topic=%s\n",
                  dg.from.to_string().c_str(),
                  std::string(protocol::to_string(h.stream_type)).c_str(),
                  std::string(protocol::to_string(h.format_type)).c_str(), h.message_kind,
                  h.sequence, static_cast<long long>(h.timestamp_ns), f->payload.size(),
                  protocol::topic_uri(h.session_id, {h.stream_type, h.stream_index}).c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

void add_frame_commands(CLI::App& root, Runner& run) {
  auto s = std::make_shared<SendCmd>();
  auto* send = root.add_subcommand("send", "Send raw TOAST frames (debugging)");
  send->add_option("--bind", s->bind, "Local address")
      ->check(EndpointValidator{})
      ->capture_default_str();
  send->add_option("--connect", s->connect, "Destination HOST:PORT")->check(EndpointValidator{});
  send->add_option("--multicast", s->multicast, "Destination multicast GROUP:PORT")
      ->check(EndpointValidator{});
  send->add_option("--session", s->session, "Session name or UUID")->capture_default_str();
  send->add_option("--stream", s->stream, "Stream type")
      ->check(CLI::IsMember(kStreams))
      ->capture_default_str();
  send->add_option("--format", s->format, "Format type")
      ->check(CLI::IsMember(kFormats))
      ->capture_default_str();
  send->add_option("--kind", s->kind, "Message kind (low 16 bits of message type)")
      ->capture_default_str();
  send->add_option("--index", s->index, "Stream index (high 16 bits of message type)")
      ->capture_default_str();
  send->add_option("--payload", s->payload, "Payload text");
  send->add_option("--payload-hex", s->payload_hex, "Payload bytes in hex")->excludes("--payload");
  send->add_option("--raw-hex", s->raw_hex,
                   "Send these bytes as they are, not as a frame (tests receivers)")
      ->excludes("--payload", "--payload-hex");
  send->add_option("--count", s->count, "Frames to send")
      ->check(CLI::Range(1ull, 100'000'000ull))
      ->capture_default_str();
  send->add_option("--interval-ms", s->interval_ms, "Gap between frames")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  send->add_option("--seq", s->seq, "First sequence number")->capture_default_str();
  send->callback([s, &run] { run = [s] { return run_send(*s); }; });

  auto l = std::make_shared<ListenCmd>();
  auto* listen =
      root.add_subcommand("listen", "Print every datagram received, decoded (debugging)");
  listen->add_option("--bind", l->bind, "Local address (with --multicast: the interface address)")
      ->check(EndpointValidator{})
      ->capture_default_str();
  listen->add_option("--multicast", l->multicast, "Join this multicast GROUP:PORT")
      ->check(EndpointValidator{});
  listen->add_flag("--json", l->json, "One JSON object per datagram (JSONL)");
  listen->add_option("--count", l->count, "Exit after this many datagrams (0 = no limit)");
  listen->add_option("--duration", l->duration_s, "Exit after this many seconds (0 = until Ctrl-C)")
      ->check(CLI::Range(0.0, 1e7));
  listen->callback([l, &run] { run = [l] { return run_listen(*l); }; });
}

}  // namespace jamnet::app
