// `jamnet demo`: three peers in one process on loopback, one link through an
// in-process netsim relay, ~10 s of traffic, live status, summary table.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "jamnet/engine/io/wav_file.hpp"
#include "jamnet/media/audio_quality.hpp"
#include "jamnet/media/test_signals.hpp"
#include "jamnet/net/netsim.hpp"
#include "jamnet/peer/session.hpp"
#include "peer_flags.hpp"

namespace jamnet::app {

namespace {

using protocol::jmid::Event;
using protocol::jmid::Kind;
constexpr int kRate = media::kTestSignalRate;

// A few bars to play: chords and a mod-wheel sweep on channel 1, a bass line on
// channel 2, hi-hats on channel 10. Times from the start, in ns.
std::vector<Event> demo_song(double seconds) {
  std::vector<Event> out;
  auto add = [&](double t, Kind kind, int ch, int d1, int d2) {
    Event e;
    e.kind = kind;
    e.channel = static_cast<std::uint8_t>(ch);
    e.data1 = static_cast<std::uint8_t>(d1);
    e.data2 = static_cast<std::uint8_t>(d2);
    e.ts_ns = static_cast<Nanos>(t * 1e9);
    out.push_back(e);
  };
  const int chords[4][3] = {{60, 64, 67}, {57, 60, 64}, {53, 57, 60}, {55, 59, 62}};
  const double beat = 0.5;  // 120 bpm
  for (int b = 0; b * beat + beat <= seconds; ++b) {
    const double t = b * beat;
    const auto& chord = chords[(b / 4) % 4];
    for (int n : chord) add(t, Kind::kNoteOn, 0, n, 80);
    add(t, Kind::kNoteOn, 1, chord[0] - 24, 100);
    add(t, Kind::kControlChange, 0, 1, (b * 16) % 128);
    add(t, Kind::kNoteOn, 9, 42, 70);
    add(t + beat / 2, Kind::kNoteOff, 9, 42, 0);
    add(t + beat / 2, Kind::kNoteOn, 9, 42, 50);
    add(t + beat * 0.9, Kind::kNoteOff, 9, 42, 0);
    for (int n : chord) add(t + beat * 0.95, Kind::kNoteOff, 0, n, 0);
    add(t + beat * 0.95, Kind::kNoteOff, 1, chord[0] - 24, 0);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Event& a, const Event& b) { return a.ts_ns < b.ts_ns; });
  return out;
}

struct DemoCmd {
  double duration_s = 10;
  double loss_pct = 5;
  double delay_ms = 2;
  double jitter_ms = 0.5;
  double duplicate_pct = 0;
  double corrupt_pct = 0;
  double rate_hz = 100;
  std::uint64_t seed = 1;
  std::string multicast;
  bool json = false;
  bool no_midi = false;
  bool no_audio = false;
  bool jellie = false;
  int frames = 64;
  std::string audio_out = "demo-audio";
};

// What one listener played of the keys' audio stream: recorded by the
// session's tap on its audio thread, from the moment keys starts playing.
struct Listener {
  Session* session = nullptr;
  std::string label;
  std::vector<float> played;  // preallocated; the tap fills it
  std::atomic<std::size_t> len{0};
  const std::atomic<bool>* go = nullptr;
  std::atomic<long> keys_slot{-1};  // the session's source slot keys plays on, once known
  std::atomic<Nanos> first_ns{0};   // cycle start of the first sample recorded
  // Counts once the stream has ended and its last block had time to play:
  // what follows is the buffer running dry, not concealment of the stream.
  std::optional<AudioReceiverStats> at_end;

  static void tap(void* user, std::size_t source, std::span<const float> x,
                  Nanos cycle_start_ns) noexcept {
    auto* l = static_cast<Listener*>(user);
    if (static_cast<long>(source) != l->keys_slot.load(std::memory_order_acquire)) return;
    if (!l->go->load(std::memory_order_acquire)) return;
    const std::size_t at = l->len.load(std::memory_order_relaxed);
    if (at == 0 && l->first_ns.load(std::memory_order_relaxed) == 0)
      l->first_ns.store(cycle_start_ns, std::memory_order_relaxed);
    const std::size_t n = std::min(x.size(), l->played.size() - at);
    std::copy_n(x.begin(), n, l->played.begin() + static_cast<std::ptrdiff_t>(at));
    l->len.store(at + n, std::memory_order_release);
  }
};

// keys' microphone: the chord progression, fed to its null backend's cycles.
struct KeysInput {
  const std::vector<float>* signal = nullptr;
  std::atomic<bool> go{false};
  std::atomic<std::size_t> pos{0};
  std::atomic<Nanos> started_ns{0};  // when its first sample went out

  static void fill(void* user, std::span<float* const> ch, std::uint32_t frames,
                   std::uint64_t) noexcept {
    auto* k = static_cast<KeysInput*>(user);
    float* out = ch[0];
    std::size_t n = 0;
    if (k->go.load(std::memory_order_acquire)) {
      const std::size_t at = k->pos.load(std::memory_order_relaxed);
      if (at == 0) k->started_ns.store(monotonic_ns(), std::memory_order_relaxed);
      n = std::min<std::size_t>(frames, k->signal->size() - at);
      std::copy_n(k->signal->begin() + static_cast<std::ptrdiff_t>(at), n, out);
      k->pos.store(at + n, std::memory_order_release);
    }
    std::fill(out + n, out + frames, 0.0f);
  }
};

// One listener's view of the keys' audio, once the stream has ended.
struct AudioRow {
  std::string label;
  double latency_ms = 0;  // keys' cycle that sent a sample to the listener's cycle that played it
  std::string wav;
  AudioReceiverStats stats;
  media::AlignedAudio aligned;
};

// Lines up what each listener played with what keys sent, writes the WAV files.
std::vector<AudioRow> finish_audio(const std::vector<float>& reference,
                                   std::deque<Listener>& listeners, const Uuid& from,
                                   Nanos sent_from_ns, const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (auto w = engine::io::write_wav(out_dir + "/keys_sent.wav", reference, 1, kRate); !w)
    std::fprintf(stderr, "jamnet demo: %s\n", w.error().message.c_str());
  std::vector<AudioRow> rows;
  for (auto& l : listeners) {
    AudioRow row;
    row.label = l.label;
    if (!l.at_end) l.at_end = l.session->peer().audio()->stats_from(from);
    if (l.at_end) row.stats = *l.at_end;
    l.played.resize(l.len.load());
    row.aligned = media::align_playout(reference, l.played, static_cast<std::int64_t>(kRate));
    row.latency_ms = static_cast<double>(l.first_ns.load() - sent_from_ns) / 1e6 +
                     static_cast<double>(row.aligned.lag_frames) * 1e3 / kRate;
    row.wav = out_dir + "/" + l.session->peer().config().name + "_from_keys.wav";
    if (auto w = engine::io::write_wav(row.wav, row.aligned.received, 1, kRate); !w)
      std::fprintf(stderr, "jamnet demo: %s\n", w.error().message.c_str());
    rows.push_back(std::move(row));
  }
  return rows;
}

double loss_pct(const AudioReceiverStats& st) {
  const double expected = static_cast<double>(st.jitter.played + st.jitter.missing_packets);
  return expected > 0 ? 100.0 * static_cast<double>(st.jitter.missing_packets) / expected : 0.0;
}

nlohmann::ordered_json audio_json(const std::vector<AudioRow>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    const auto& j = r.stats.jitter;
    auto finite = [](double v) {
      return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
    };
    out.push_back({{"link", r.label},
                   {"wav", r.wav},
                   {"blocks", r.stats.blocks},
                   {"missing", j.missing_packets},
                   {"loss_pct", loss_pct(r.stats)},
                   {"concealed_blocks", r.stats.concealed_blocks},
                   {"late", j.late},
                   {"underruns", j.underruns},
                   {"jellie_exact", r.stats.jellie_exact},
                   {"jellie_recovered", r.stats.jellie_recovered},
                   {"jellie_interpolated", r.stats.jellie_interpolated},
                   {"jellie_lost", r.stats.jellie_lost},
                   {"jitter_target_ms", static_cast<double>(j.target_ns) * 1e-6},
                   {"snr_db", finite(r.aligned.snr_db)},
                   {"segsnr_db", finite(r.aligned.segsnr_db)},
                   {"latency_ms", r.latency_ms}});
  }
  return out;
}

void print_audio_summary(const std::vector<AudioRow>& rows, int frames,
                         const std::string& out_dir) {
  std::printf("\naudio from keys (%d-frame JDAT packets at 48 kHz; WAV files in %s/):\n", frames,
              out_dir.c_str());
  std::printf("  %-21s %7s %7s %6s %9s %5s %9s %8s %7s %7s\n", "link", "blocks", "missing", "miss%",
              "concealed", "late", "jb target", "latency", "SNR dB", "segSNR");
  for (const auto& r : rows) {
    const auto& j = r.stats.jitter;
    std::printf("  %-21s %7llu %7llu %5.2f%% %9llu %5llu %7.2fms %6.2fms %7.1f %7.1f\n",
                r.label.c_str(), static_cast<unsigned long long>(r.stats.blocks),
                static_cast<unsigned long long>(j.missing_packets), loss_pct(r.stats),
                static_cast<unsigned long long>(r.stats.concealed_blocks),
                static_cast<unsigned long long>(j.late), static_cast<double>(j.target_ns) * 1e-6,
                r.latency_ms, r.aligned.snr_db, r.aligned.segsnr_db);
    const auto& s = r.stats;
    if (s.jellie_exact + s.jellie_interpolated + s.jellie_lost > 0)
      std::printf(
          "  %-21s JELLIE: %llu blocks exact (%llu of them rebuilt from 2 or 3 streams), "
          "%llu interpolated, %llu lost\n",
          "", static_cast<unsigned long long>(s.jellie_exact),
          static_cast<unsigned long long>(s.jellie_recovered),
          static_cast<unsigned long long>(s.jellie_interpolated),
          static_cast<unsigned long long>(s.jellie_lost));
  }
  std::printf(
      "missing: packets not there in time to play (lost, or late: arrived after their turn);\n"
      "concealed: packets' worth of audio PNBTR made up (missing or underrun); latency: sender\n"
      "to playout, network and jitter buffer; SNR: what was played against what was sent.\n");
}

int run_demo(const DemoCmd& c) {
  const Uuid session = Uuid::random();  // a private session: other demos on this host stay apart
  net::Endpoint group{kDefaultMulticastGroup,
                      static_cast<std::uint16_t>(40000 + std::random_device{}() % 20000)};
  if (!c.multicast.empty()) group = endpoint_arg(c.multicast);
  const Nanos t0 = monotonic_ns();
  auto since = [t0] { return static_cast<double>(monotonic_ns() - t0) * 1e-6; };

  // One 4-second turn of the chord progression, repeated: cheap to make, so
  // Ctrl-C right after start is still prompt.
  std::vector<float> reference;
  if (!c.no_audio) {
    const auto turn = media::chords(4.0);
    const auto want = static_cast<std::size_t>(std::max(1.0, c.duration_s - 1.5) * kRate);
    reference.reserve(want);
    while (reference.size() < want)
      reference.insert(reference.end(), turn.begin(),
                       turn.begin() + static_cast<std::ptrdiff_t>(
                                          std::min(turn.size(), want - reference.size())));
  }
  KeysInput keys_input;
  keys_input.signal = &reference;
  std::deque<Listener> listeners;  // not moved: the taps hold pointers

  // Each peer is a Session; with audio it runs the real engine on the null
  // backend (a real-time timer thread), exactly as a peer on JACK would.
  auto make = [&](const char* name, std::vector<net::Endpoint> connect, Listener* listener,
                  bool plays) {
    SessionOptions o;
    PeerConfig& cfg = o.peer;
    cfg.name = name;
    cfg.session = session;
    cfg.multicast = group;
    cfg.connect = std::move(connect);
    cfg.probe_rate_hz = c.rate_hz;
    cfg.probe_start_delay_ns = 300'000'000;
    if (!c.no_midi) cfg.midi = MidiConfig{};
    if (plays && !c.no_midi) {
      // keys plays a song to the others once both are there; the journal then
      // has a moment to repair whatever bursts lost before the summary.
      o.midi_file = demo_song(std::max(1.0, c.duration_s - 1.5));
      o.midi_file_wait_peers = 2;
    }
    if (!c.no_audio) {
      o.audio = AudioIo::kNull;
      o.sample_rate = kRate;
      o.block_frames = static_cast<std::uint32_t>(c.frames);
      o.jellie = c.jellie;
      // All three peers run on this machine's clock, so there is no drift to
      // absorb; without the resampler the playout is sample-exact and the
      // SNR below measures the network, JELLIE and PNBTR alone.
      o.max_drift_ppm = 0;
      o.send_audio = plays;  // the others listen (less load on a small machine)
      if (plays) {
        o.input = &KeysInput::fill;
        o.input_user = &keys_input;
      }
      if (listener != nullptr) {
        o.tap = &Listener::tap;
        o.tap_user = listener;
      }
    }
    auto started = Session::start(o);
    if (started && listener != nullptr) listener->session = started->get();
    return started;
  };
  auto listener = [&](const char* label) -> Listener* {
    if (c.no_audio) return nullptr;
    auto& l = listeners.emplace_back();
    l.label = label;
    l.go = &keys_input.go;
    l.played.assign(reference.size() + static_cast<std::size_t>(kRate), 0.0f);
    return &l;
  };

  std::printf("JAMNet demo: 3 peers on loopback, session %s, multicast %s\n",
              session.short_string().c_str(), group.to_string().c_str());
  auto drums = make("drums", {}, listener("keys->drums (netsim)"), false);
  if (!drums) {
    std::fprintf(stderr, "jamnet demo: %s\n", drums.error().message.c_str());
    return 1;
  }
  net::NetsimConfig nc;
  nc.listen = net::Endpoint::loopback(0);
  nc.target = (*drums)->peer().local();
  nc.seed = c.seed;
  nc.forward.loss = c.loss_pct / 100.0;
  nc.forward.delay = static_cast<Nanos>(c.delay_ms * 1e6);
  nc.forward.jitter = static_cast<Nanos>(c.jitter_ms * 1e6);
  nc.forward.duplicate = c.duplicate_pct / 100.0;
  nc.forward.corrupt = c.corrupt_pct / 100.0;
  nc.reverse = nc.forward;
  auto sim = net::Netsim::start(nc);
  if (!sim) {
    std::fprintf(stderr, "jamnet demo: netsim: %s\n", sim.error().message.c_str());
    return 1;
  }
  auto keys = make("keys", {(*sim)->listen_endpoint()}, nullptr, true);
  auto bass = make("bass", {}, listener("keys->bass"), false);
  if (!keys || !bass) {
    std::fprintf(stderr, "jamnet demo: %s\n", (!keys ? keys : bass).error().message.c_str());
    return 1;
  }
  std::printf("link keys <-> drums goes through netsim %s: %.1f%% loss, %.1f ms +- %.1f ms%s\n",
              (*sim)->listen_endpoint().to_string().c_str(), c.loss_pct, c.delay_ms, c.jitter_ms,
              c.corrupt_pct > 0 ? ", with corruption" : "");
  std::printf("each peer sends %.0f test frames/s to every peer it finds; Ctrl-C stops early\n\n",
              c.rate_hz);

  std::vector<Session*> sessions{keys->get(), bass->get(), drums->get()};
  const Uuid keys_id = (*keys)->id();
  const Nanos link_delay = static_cast<Nanos>((c.delay_ms + 2 * c.jitter_ms) * 1e6);
  Nanos audio_done_at = 0;
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  double next_line_ms = 0;
  while (sleep_unless_stopped(100) && since() < c.duration_s * 1000) {
    // keys starts playing once both others hear it.
    for (auto& l : listeners)
      for (const auto& src : l.session->peer().audio()->sources())
        if (src.name == "keys") l.keys_slot.store(static_cast<long>(src.index));
    const bool all_hear = std::all_of(listeners.begin(), listeners.end(),
                                      [](const Listener& l) { return l.keys_slot.load() >= 0; });
    if (!c.no_audio && !keys_input.go.load() && all_hear)
      keys_input.go.store(true, std::memory_order_release);
    if (!c.no_audio && audio_done_at == 0 && keys_input.pos.load() >= reference.size())
      audio_done_at = monotonic_ns();
    for (auto& l : listeners) {
      if (audio_done_at == 0 || l.at_end) continue;
      auto st = l.session->peer().audio()->stats_from(keys_id);
      if (st && stream_played_out(*st, monotonic_ns() - audio_done_at, link_delay)) l.at_end = st;
    }
    std::string line;
    for (Session* s : sessions) {
      for (const auto& e : s->take_events()) {
        if (e.kind > SessionEvent::Kind::kTimedOut) continue;  // peers only
        std::printf("%s[%7.1f ms] %s: %s %s\n", tty ? "\r\033[K" : "", since(),
                    s->peer().config().name.c_str(), e.name.c_str(),
                    std::string(to_string(e.kind)).c_str());
      }
    }
    if (since() < next_line_ms) continue;
    next_line_ms = since() + (tty ? 0 : 2000);
    char head[32];
    std::snprintf(head, sizeof head, "[%4.1f s] ", since() / 1000);
    line = head;
    for (Session* s : sessions) line += status_line(s->status().report) + "  ";
    std::printf(tty ? "\r\033[K%s" : "%s\n", line.c_str());
    std::fflush(stdout);
  }
  std::vector<PeerReport> reports;
  for (Session* s : sessions) reports.push_back(s->status().report);
  const auto sim_report = (*sim)->report();
  for (Session* s : sessions) s->stop();
  (*sim)->stop();

  if (!c.no_audio) {
    // Stopped early (Ctrl-C): judge and keep only what was sent.
    reference.resize(keys_input.pos.load());
    const std::size_t keep = reference.size() + static_cast<std::size_t>(kRate / 2);
    for (auto& l : listeners) l.len.store(std::min(l.len.load(), keep));
  }
  const auto audio_rows = c.no_audio ? std::vector<AudioRow>{}
                                     : finish_audio(reference, listeners, keys_id,
                                                    keys_input.started_ns.load(), c.audio_out);
  if (c.json) {
    nlohmann::ordered_json out = {{"peers", nlohmann::ordered_json::array()}};
    for (const auto& r : reports) out["peers"].push_back(r.to_json_value());
    out["netsim"] = sim_report.to_json_value();
    if (!c.no_audio) out["audio"] = audio_json(audio_rows);
    std::printf("%s\n",
                out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%s\n== summary after %.1f s ==", tty ? "" : "", since() / 1000);
  print_summary(stdout, reports);
  if (!c.no_midi) print_midi_summary(stdout, reports);
  if (!c.no_audio) print_audio_summary(audio_rows, c.frames, c.audio_out);
  const auto& f = sim_report.forward;
  const auto& r = sim_report.reverse;
  std::printf(
      "\nnetsim  keys->drums: %llu in, %llu dropped (%.2f%%), %llu corrupted, mean delay %.2f ms\n",
      static_cast<unsigned long long>(f.received), static_cast<unsigned long long>(f.dropped_loss),
      f.received ? 100.0 * static_cast<double>(f.dropped_loss) / static_cast<double>(f.received)
                 : 0.0,
      static_cast<unsigned long long>(f.corrupted), f.delayed_ms_mean);
  std::printf(
      "netsim  drums->keys: %llu in, %llu dropped (%.2f%%), %llu corrupted, mean delay %.2f ms\n",
      static_cast<unsigned long long>(r.received), static_cast<unsigned long long>(r.dropped_loss),
      r.received ? 100.0 * static_cast<double>(r.dropped_loss) / static_cast<double>(r.received)
                 : 0.0,
      static_cast<unsigned long long>(r.corrupted), r.delayed_ms_mean);
  return 0;
}

}  // namespace

void add_demo_command(CLI::App& root, Runner& run) {
  auto d = std::make_shared<DemoCmd>();
  auto* demo = root.add_subcommand(
      "demo",
      "Three peers on this machine find each other and exchange frames for ~10 s;\n"
      "keys plays MIDI and streams audio to the others; the keys<->drums link goes\n"
      "through netsim. Received audio is written to WAV files. Needs no audio\n"
      "hardware and no set-up.");
  demo->add_option("--duration", d->duration_s, "Seconds")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  demo->add_option("--loss", d->loss_pct, "Loss on the netsim link, percent")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  demo->add_option("--delay", d->delay_ms, "Delay on the netsim link, ms")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  demo->add_option("--jitter", d->jitter_ms, "Jitter (uniform +-) on the netsim link, ms")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  demo->add_option("--duplicate", d->duplicate_pct,
                   "Duplicated datagrams on the netsim link, percent")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  demo->add_option("--corrupt", d->corrupt_pct, "Corrupted datagrams on the netsim link, percent")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  demo->add_option("--rate", d->rate_hz, "Test frames per second from each peer to each other")
      ->check(CLI::Range(1.0, 10000.0))
      ->capture_default_str();
  demo->add_option("--seed", d->seed, "Netsim seed (same seed, same drops)")->capture_default_str();
  demo->add_option("--multicast", d->multicast,
                   "Discovery group (default: 239.255.74.77, random port)")
      ->check(EndpointValidator{});
  demo->add_flag("--json", d->json, "Print the final reports as one JSON object");
  demo->add_flag("--no-midi", d->no_midi,
                 "Leave out the MIDI part (keys playing a song to the others)");
  demo->add_flag("--no-audio", d->no_audio,
                 "Leave out the audio part (keys streaming a chord progression to the others)");
  demo->add_flag("--jellie", d->jellie,
                 "Send the audio as JELLIE (4 redundant streams) instead of plain JDAT");
  demo->add_option("--frames", d->frames, "Audio frames per packet (even for --jellie)")
      ->check(CLI::Range(16, 512))
      ->capture_default_str();
  demo->add_option("--audio-out", d->audio_out,
                   "Folder for the WAV files: what keys sent and what each peer played")
      ->capture_default_str();
  demo->callback([d, &run] { run = [d] { return run_demo(*d); }; });
}

}  // namespace jamnet::app
