// The whole session under fuzzed traffic: sequences of datagrams from many
// fake sources go into one running peer (discovery, clock election,
// transport log, MIDI playout, audio receivers; open or keyed) through
// Transport::receive, without a socket read. The harness builds the frames
// itself (TOAST header and CRC, and in a keyed session the seal with the
// session's key), so most inputs get past the checks and reach the state
// behind them. Per input, the first byte picks open or keyed; then records:
//
//   source (1) | op (1) | length (1) | length bytes
//
// source picks one of 64 fake peers (id and loopback address 127.0.1.x),
// op what the bytes become: raw datagram, announce, bye, ping, sync status,
// sync ping, transport command, transport state, hello, request, MIDI line,
// MIDI journal-ish line, audio packet, or any frame with a fuzzed header.
//
// Checks: nothing undefined (ASan/UBSan); the peer's state stays bounded
// (peers, audio receivers, MIDI playout peers, the transport log: checked
// after every input against their caps); and, at exit, that the election,
// the transport log, a jitter buffer and the JMID playout were each reached
// at least once (else the harness reaches nothing and proves nothing: exit 1).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jamnet/peer/midi/midi_types.hpp"
#include "jamnet/peer/peer.hpp"
#include "jamnet/peer/sync/sync_types.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/protocol/discovery_message.hpp"
#include "jamnet/protocol/jdat.hpp"
#include "jamnet/protocol/jmid.hpp"
#include "jamnet/protocol/security.hpp"
#include "jamnet/protocol/toast_frame.hpp"

using namespace jamnet;
namespace ctl = protocol::control;
using protocol::StreamType;

namespace {

constexpr int kFakePeers = 64;
constexpr std::uint16_t kFenceIndex = 0x7A7A;  // a control stream nobody else uses

struct Reached {
  bool election = false, transport_log = false, jitter_buffer = false, playout = false;
};
Reached g_reached;

// The key of the keyed runs (a test key, fixed: inputs replay the same).
protocol::SessionKey test_key() {
  protocol::SessionKey k;
  for (std::size_t i = 0; i < k.bytes.size(); ++i)
    k.bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return k;
}

struct Harness {
  bool keyed;
  Uuid session;
  std::unique_ptr<Peer> peer;
  std::vector<Uuid> ids;
  std::vector<std::unique_ptr<protocol::Sealer>> sealers;  // keyed: one per fake peer
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t fences_seen = 0, fences_sent = 0;
  std::uint32_t seq = 1;

  explicit Harness(bool keyed_run) : keyed(keyed_run) {
    const auto key = test_key();
    session = keyed ? protocol::keyed_session_id(key, "fuzz") : protocol::open_session_id("fuzz");
    PeerConfig pc;
    pc.session = session;
    pc.name = "fuzzed";
    pc.bind = net::Endpoint::loopback(0);
    pc.multicast.reset();
    pc.receive_thread = false;         // datagrams come from here
    pc.require_address_proof = false;  // fake peers cannot answer challenges
    if (keyed) pc.key = key;
    MidiConfig mc;
    mc.latency_ns = 1'000'000;
    pc.midi = mc;
    AudioConfig ac;
    ac.channels = 1;
    pc.audio = ac;
    SyncConfig sc;
    pc.sync = sc;
    auto p = Peer::start(pc);
    if (!p) {
      std::fprintf(stderr, "session_fuzz: the peer did not start: %s\n", p.error().message.c_str());
      std::abort();
    }
    peer = std::move(*p);
    peer->registry().subscribe({session, StreamType::kControl, kFenceIndex},
                               [this](const net::ReceivedFrame&) {
                                 std::lock_guard lock(mu);
                                 ++fences_seen;
                                 cv.notify_all();
                               });
    for (int i = 0; i < kFakePeers; ++i) {
      Uuid id;
      for (std::size_t b = 0; b < id.bytes.size(); ++b)
        id.bytes[b] = static_cast<std::uint8_t>(0x40 + i + b * 3);
      id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);
      id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);
      ids.push_back(id);
      if (keyed) sealers.push_back(std::make_unique<protocol::Sealer>(key, id, 1000 + i));
    }
  }

  static net::Endpoint address_of(int i) {
    return {(127u << 24) | (0u << 16) | (1u << 8) | static_cast<std::uint32_t>(i + 1),
            static_cast<std::uint16_t>(40000 + i)};
  }

  // A frame from fake peer `who` (sealed in a keyed run), handed to the transport.
  void send(int who, StreamType type, std::uint16_t kind, std::uint16_t index,
            protocol::FormatType format, std::span<const std::uint8_t> payload,
            std::optional<std::uint32_t> sequence = std::nullopt) {
    protocol::FrameHeader h;
    h.stream_type = type;
    h.format_type = format;
    h.message_kind = kind;
    h.stream_index = index;
    h.session_id = session;
    h.timestamp_ns = monotonic_ns();
    h.sequence = sequence.value_or(seq++);
    std::vector<std::uint8_t> out(protocol::kAbsoluteMaxDatagram);
    auto n = keyed ? protocol::encode_sealed_frame(h, payload,
                                                   *sealers[static_cast<std::size_t>(who)], out)
                   : protocol::encode_frame(h, payload, out);
    if (!n) return;
    out.resize(*n);
    raw(who, out);
  }
  void raw(int who, std::span<const std::uint8_t> bytes) {
    (void)peer->transport().receive(bytes, address_of(who), false, monotonic_ns());
  }
  void send_text(int who, StreamType type, std::uint16_t kind, std::uint16_t index,
                 const std::string& text) {
    send(who, type, kind, index, protocol::FormatType::kCompactJsonl,
         {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  }

  // Waits until the registry's control thread has handled everything sent so far.
  void settle() {
    std::uint64_t want = 0;
    {
      std::lock_guard lock(mu);
      want = ++fences_sent;
    }
    const std::uint8_t empty = 0;
    send(0, StreamType::kControl, 0, kFenceIndex, protocol::FormatType::kBinary, {&empty, 0});
    std::unique_lock lock(mu);
    (void)cv.wait_for(lock, std::chrono::seconds(2), [&] { return fences_seen >= want; });
  }
};

struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte(std::uint8_t dflt = 0) {
    if (n == 0) return dflt;
    --n;
    return *p++;
  }
  std::int64_t i64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | byte();
    return static_cast<std::int64_t>(v);
  }
  std::string text() { return std::string(reinterpret_cast<const char*>(p), n); }
};

// Times near now (in session time, which starts as the local monotonic
// clock) most of the time, anything at all sometimes.
std::int64_t time_from(Reader& r) {
  const std::uint8_t mode = r.byte();
  const std::int64_t v = r.i64();
  if (mode % 4 == 0) return v;
  return monotonic_ns() + (v % 2'000'000'000);
}

void one_record(Harness& h, int who, std::uint8_t op, Reader r) {
  const Uuid& id = h.ids[static_cast<std::size_t>(who)];
  const std::string ids = id.to_string();
  switch (op % 15) {
    case 0:  // a raw datagram
      h.raw(who, {r.p, r.n});
      return;
    case 1: {  // announce
      protocol::Announce a{id, 1u + r.byte() % 3u, "fake" + std::to_string(who)};
      h.send(who, StreamType::kDiscovery, 1, 0, protocol::FormatType::kBinary, protocol::encode(a));
      return;
    }
    case 2: {  // bye
      const auto b = protocol::encode(protocol::Bye{id, 1u + r.byte() % 3u});
      h.send(who, StreamType::kDiscovery, 2, 0, protocol::FormatType::kBinary, b);
      return;
    }
    case 3: {  // ping or pong with fuzzed times
      if (r.byte() % 2 == 0) {
        const auto m =
            protocol::encode(protocol::Ping{id, static_cast<std::uint32_t>(r.i64()), r.i64()});
        h.send(who, StreamType::kHeartbeat, 1, 0, protocol::FormatType::kBinary, m);
      } else {
        const auto m = protocol::encode(
            protocol::Pong{id, static_cast<std::uint32_t>(r.byte()), r.i64(), r.i64(), r.i64()});
        h.send(who, StreamType::kHeartbeat, 2, 0, protocol::FormatType::kBinary, m);
      }
      return;
    }
    case 4: {  // sync status
      ctl::SyncStatusMsg s;
      s.from = r.byte() % 8 == 0 ? h.ids[r.byte() % kFakePeers].to_string() : ids;
      s.priority = static_cast<std::int8_t>(r.byte());
      const std::uint8_t f = r.byte();
      s.forced = (f & 1) != 0;
      s.master = (f & 2) != 0;
      s.locked = (f & 4) != 0;
      s.quality = r.byte() / 255.0;
      s.master_peer = s.master ? s.from : h.ids[r.byte() % kFakePeers].to_string();
      h.send_text(who, StreamType::kSync, kJsonControlKind, 0, ctl::serialize(s));
      return;
    }
    case 5: {  // sync ping / pong
      if (r.byte() % 2 == 0) {
        ctl::SyncPingMsg m{ids, static_cast<std::uint64_t>(r.i64()), time_from(r)};
        h.send_text(who, StreamType::kSync, kJsonControlKind, 0, ctl::serialize(m));
      } else {
        ctl::SyncPongMsg m{ids,          r.byte(),     time_from(r),
                           time_from(r), time_from(r), r.byte() % 2 == 0};
        h.send_text(who, StreamType::kSync, kJsonControlKind, 0, ctl::serialize(m));
      }
      return;
    }
    case 6: {  // transport command
      ctl::TransportMsg t;
      t.command = static_cast<ctl::TransportCommand>(r.byte() % 6);
      t.timestamp = time_from(r);
      t.position_ms = static_cast<double>(r.byte()) * 100;
      t.bpm = 20 + r.byte() * 3;
      t.origin = r.byte() % 4 == 0 ? h.ids[r.byte() % kFakePeers].to_string() : ids;
      t.seq = 1 + r.byte();
      t.master_peer = ids;
      h.send_text(who, StreamType::kControl, kJsonControlKind, 1, ctl::serialize(t));
      return;
    }
    case 7: {  // transport state
      ctl::TransportStateMsg s;
      const char* states[] = {"stopped", "playing", "paused", "recording", "bogus"};
      s.state = states[r.byte() % 5];
      s.anchor_session_ns = time_from(r);
      s.anchor_position_ms = r.byte() * 10.0;
      s.bpm = 20 + r.byte() * 3;
      s.last_origin = ids;
      s.last_seq = r.byte();
      if (s.last_seq == 0) s.last_origin.clear();
      s.last_timestamp = time_from(r);
      h.send_text(who, StreamType::kControl, kJsonControlKind, 1, ctl::serialize(s));
      return;
    }
    case 8: {  // hello, or a request
      if (r.byte() % 2 == 0) {
        ctl::HelloMsg m;
        m.from = ids;
        h.send_text(who, StreamType::kControl, kJsonControlKind, 1, ctl::serialize(m));
      } else {
        ctl::RequestMsg m;
        m.id = static_cast<std::uint64_t>(r.i64());
        const char* actions[] = {"play", "stop", "status", "tempo", "seek", "mix", "x"};
        m.action = actions[r.byte() % 7];
        h.send_text(who, StreamType::kControl, kJsonControlKind, 1, ctl::serialize(m));
      }
      return;
    }
    case 9:  // any JSON-ish text on the sync or control stream
      h.send_text(who, r.byte() % 2 ? StreamType::kSync : StreamType::kControl, kJsonControlKind,
                  r.byte() % 2, r.text());
      return;
    case 10: {  // a MIDI event line, as a burst copy
      protocol::jmid::Event e;
      e.kind = r.byte() % 2 ? protocol::jmid::Kind::kNoteOn : protocol::jmid::Kind::kNoteOff;
      e.channel = r.byte() % 16;
      e.data1 = r.byte() % 128;
      e.data2 = r.byte() % 128;
      e.seq = r.byte();
      e.ts_ns = time_from(r);
      const int k = 1 + r.byte() % 3;
      const std::string line = protocol::jmid::to_line(e);
      h.send_text(who, StreamType::kMidi,
                  midi_message_kind(MidiLineClass::kEvents, r.byte() % k, k), 0, line);
      return;
    }
    case 11:  // any text as MIDI lines (journal, feedback, garbage)
      h.send_text(who, StreamType::kMidi,
                  midi_message_kind(static_cast<MidiLineClass>(1 + r.byte() % 3), 0, 1), 0,
                  r.text());
      return;
    case 12: {  // an audio packet
      protocol::jdat::JdatHeader jh;
      jh.channels = static_cast<std::uint8_t>(1 + r.byte() % 4);
      const int frame_choices[] = {16, 32, 64, 128, 512};
      jh.frames = static_cast<std::uint16_t>(frame_choices[r.byte() % 5]);
      const std::uint32_t rates[] = {44100, 48000, 96000, 8000, 384000};
      jh.sample_rate = rates[r.byte() % 5];
      jh.first_frame = static_cast<std::uint64_t>(r.byte()) * jh.frames;
      if (r.byte() % 8 == 0) jh.first_frame = static_cast<std::uint64_t>(r.i64());
      std::vector<std::uint32_t> words(jh.word_count(), 0x3F000000u);
      std::vector<std::uint8_t> payload(protocol::jdat::binary_size(jh));
      if (!protocol::jdat::encode_binary(jh, words, payload)) return;
      if (payload.size() > 1400) payload.resize(1400);  // some come truncated
      h.send(who, StreamType::kAudio, 1, r.byte() % 3, protocol::FormatType::kBinary, payload);
      return;
    }
    case 13: {  // a frame with a fuzzed header, the rest as payload
      const auto type = static_cast<StreamType>(r.byte() % 8);
      const std::uint16_t kind = static_cast<std::uint16_t>(r.byte() << 8 | r.byte());
      const std::uint16_t index = r.byte() % 4;
      const auto seq = static_cast<std::uint32_t>(r.i64());
      h.send(who, type, kind, index, static_cast<protocol::FormatType>(r.byte() % 3), {r.p, r.n},
             seq);
      return;
    }
    default:  // let the peer's threads run a little (timeouts, playout, ticks)
      std::this_thread::sleep_for(std::chrono::microseconds(200 * (1 + r.byte() % 10)));
      return;
  }
}

void check_and_note(Harness& h) {
  const auto r = h.peer->report();
  // Bounded: every cap holds whatever came.
  if (r.links.size() > 256 || (r.audio && r.audio->receivers.size() > 32) ||
      (r.midi && r.midi->senders.size() > 64)) {
    std::fprintf(stderr, "session_fuzz: a cap did not hold (%zu peers, %zu receivers)\n",
                 r.links.size(), r.audio ? r.audio->receivers.size() : 0);
    std::abort();
  }
  if (r.sync && r.sync->clock.candidates > 1) g_reached.election = true;
  if (r.sync && r.sync->transport_commands > 0) g_reached.transport_log = true;
  if (r.audio)
    for (const auto& rc : r.audio->receivers)
      if (rc.blocks > 0) g_reached.jitter_buffer = true;
  if (r.midi)
    for (const auto& s : r.midi->senders)
      if (s.copies > 0) g_reached.playout = true;
}

Harness* g_open = nullptr;
Harness* g_keyed = nullptr;

void at_exit() {
  const Reached& g = g_reached;
  std::fprintf(stderr,
               "session_fuzz: reached election=%d transport_log=%d jitter_buffer=%d "
               "jmid_playout=%d\n",
               g.election, g.transport_log, g.jitter_buffer, g.playout);
  if (!(g.election && g.transport_log && g.jitter_buffer && g.playout)) {
    std::fprintf(stderr, "session_fuzz: FAILED: a stage was never reached\n");
    std::fflush(stderr);
    ::_exit(1);
  }
  std::fflush(stderr);
  ::_exit(0);  // the peers' threads are left running: skip their teardown
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("JAMNET_NO_REALTIME", "1", 0);
  g_open = new Harness(false);
  g_keyed = new Harness(true);
  std::atexit(at_exit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Harness& h = (data[0] & 1) ? *g_keyed : *g_open;
  std::size_t at = 1;
  int records = 0;
  while (at + 3 <= size && records < 256) {
    const int who = data[at] % kFakePeers;
    const std::uint8_t op = data[at + 1];
    const std::size_t len = std::min<std::size_t>(data[at + 2], size - at - 3);
    one_record(h, who, op, Reader{data + at + 3, len});
    at += 3 + len;
    ++records;
  }
  h.settle();
  check_and_note(h);
  return 0;
}
