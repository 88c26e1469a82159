#include "jamnet/peer/session.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <utility>

#include "jamnet/core/log.hpp"
#include "jamnet/engine/engine.hpp"
#include "jamnet/engine/io/file_backend.hpp"
#include "jamnet/engine/io/host_backend.hpp"
#include "jamnet/engine/io/jack_audio.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "jamnet/engine/io/null_backend.hpp"
#include "jamnet/sync/clock_source.hpp"
#include "jamnet/sync/transport.hpp"

namespace jamnet {

std::string_view to_string(AudioIo io) noexcept {
  switch (io) {
    case AudioIo::kNone:
      return "none";
    case AudioIo::kNull:
      return "null";
    case AudioIo::kJack:
      return "jack";
    case AudioIo::kFile:
      return "file";
    case AudioIo::kHost:
      return "host";
  }
  return "?";
}

std::string_view to_string(SessionEvent::Kind k) noexcept {
  using K = SessionEvent::Kind;
  switch (k) {
    case K::kJoined:
      return "joined";
    case K::kRestarted:
      return "restarted";
    case K::kLeft:
      return "left";
    case K::kTimedOut:
      return "timed out";
    case K::kTransport:
      return "transport";
    case K::kClock:
      return "clock";
    case K::kPortAdded:
      return "port added";
    case K::kPortRemoved:
      return "port removed";
    case K::kAudioError:
      return "audio error";
    case K::kSecurity:
      return "security";
  }
  return "?";
}

Session::Session(SessionOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<Session>> Session::start(SessionOptions options) {
  if (options.channels < 1 || options.channels > 64)
    return make_error(Errc::kInvalidArgument, "channels must be 1..64");
  if (options.audio == AudioIo::kHost &&
      (options.max_block_frames < 1 || options.max_block_frames > 65536))
    return make_error(Errc::kInvalidArgument, "the largest host block must be 1..65536 frames");
  std::unique_ptr<Session> s(new Session(std::move(options)));
  if (auto ok = s->open(); !ok) {
    s->stop(false);
    return std::unexpected(ok.error());
  }
  return s;
}

Result<void> Session::open() {
  SessionOptions& o = options_;
  PeerConfig cfg = o.peer;
  std::unique_ptr<engine::io::AudioBackend> backend;
  engine::io::BackendConfig bc;
  bc.client_name = cfg.name.empty() ? "jamnet" : cfg.name;
  bc.server_name = o.jack_server;
  bc.inputs.clear();
  for (int ch = 1; ch <= o.channels; ++ch) bc.inputs.push_back("send_" + std::to_string(ch));
  bc.outputs.clear();
  bc.sample_rate = o.sample_rate;
  bc.frames = o.block_frames;
  bc.realtime = o.realtime;
  bc.input_path = o.input_path;
  bc.output_path = o.output_path;
  bc.max_frames = o.max_frames;
  const bool mix_outputs = o.audio != AudioIo::kJack;
  if (mix_outputs)
    for (int ch = 1; ch <= o.channels; ++ch) bc.outputs.push_back("out_" + std::to_string(ch));

  switch (o.audio) {
    case AudioIo::kNone:
      break;
    case AudioIo::kJack: {
      bc.midi = cfg.midi.has_value() && o.jack_midi;
      auto b = engine::io::JackAudioBackend::open(bc);
      if (!b) return make_error(b.error().code, "JACK: " + b.error().message);
      jack_audio_ = b->get();
      backend = std::move(*b);
      break;
    }
    case AudioIo::kNull: {
      auto b = engine::io::open_null_backend(bc);
      if (!b) return std::unexpected(b.error());
      backend = std::move(*b);
      break;
    }
    case AudioIo::kFile: {
      auto b = engine::io::open_file_backend(bc);
      if (!b) return std::unexpected(b.error());
      backend = std::move(*b);
      break;
    }
    case AudioIo::kHost: {
      bc.frames = o.max_block_frames;
      auto b = engine::io::HostBackend::open(bc);
      if (!b) return std::unexpected(b.error());
      host_ = b->get();
      backend = std::move(*b);
      break;
    }
  }
  rate_ = backend ? backend->sample_rate() : o.sample_rate;
  if (backend) {
    AudioConfig ac;
    ac.channels = o.channels;
    // Packets: the period, or whole parts of it. A host's blocks vary: its
    // usual block sets the packet size.
    ac.period_frames =
        static_cast<int>(o.audio == AudioIo::kHost ? o.block_frames : backend->buffer_size());
    ac.sample_rate = static_cast<int>(rate_);
    ac.jellie = o.jellie;
    ac.jitter.max_correction_ppm = o.max_drift_ppm;
    ac.source_linger_ns = o.port_linger_ns;
    if (o.audio == AudioIo::kHost || o.audio == AudioIo::kFile) {
      // Pulls come when the host calls, in blocks of any size, not on a
      // regular grid: the buffer must cover the largest block twice over.
      ac.jitter.aligned_pulls = false;
      // Block sizes that vary from 1 to 8192 frames make packets arrive in
      // bursts of any length: the buffer covers the worst lateness it has
      // seen (over its window), not the 95th percentile.
      ac.jitter.quantile = 1.0;
      ac.jitter.window_ns = std::max<Nanos>(ac.jitter.window_ns, 4'000'000'000);
      const Nanos block_ns =
          static_cast<Nanos>(o.max_block_frames) * 1'000'000'000 / static_cast<Nanos>(rate_);
      ac.jitter.max_target_ns = std::max(ac.jitter.max_target_ns, 2 * block_ns + 20'000'000);
      // From the first packet: a block of the largest size may come whole,
      // a block late (the latency a host that uses such blocks has anyway).
      ac.jitter.min_target_ns = std::max(ac.jitter.min_target_ns, block_ns + 5'000'000);
      ac.max_pull_frames = static_cast<int>(std::max<std::uint32_t>(o.max_block_frames, 1024));
      // Room for the whole target in the smallest packets the block allows.
      const std::uint32_t packet = std::clamp<std::uint32_t>(o.block_frames, 16, 512);
      ac.jitter.capacity_packets = std::max(ac.jitter.capacity_packets,
                                            static_cast<int>(3 * o.max_block_frames / packet) + 64);
    }
    cfg.audio = ac;
  } else {
    cfg.audio.reset();
  }
  if (o.jack_midi && cfg.midi && !jack_audio_) {
    engine::io::JackMidi::Config jc;
    jc.client_name = bc.client_name;
    jc.server_name = o.jack_server;
    auto m = engine::io::JackMidi::open(jc);
    if (!m) return make_error(m.error().code, "JACK MIDI: " + m.error().message);
    jack_midi_ = std::move(*m);
  }
  if (cfg.midi && host_ != nullptr) {
    // The block picks each event's frame from its time: hand events over as
    // soon as they are known, and let process() place them.
    cfg.midi->handler_lead_ns = cfg.midi->latency_ns;
    host_midi_in_ = std::make_unique<SpscQueue<protocol::jmid::Event>>(4096);
    host_midi_out_ = std::make_unique<SpscQueue<TimedEvent>>(4096);
  }
  if (cfg.midi && (jack_midi_ || jack_audio_)) {
    // JACK places each event at its exact frame: hand it over two periods early.
    const auto frames = jack_midi_ ? jack_midi_->buffer_size() : jack_audio_->buffer_size();
    const auto rate = jack_midi_ ? jack_midi_->sample_rate() : jack_audio_->sample_rate();
    cfg.midi->handler_lead_ns = std::min<Nanos>(
        cfg.midi->latency_ns / 2, 2 * static_cast<Nanos>(frames) * 1'000'000'000 / rate);
  }
  auto p = Peer::start(cfg);
  if (!p) return std::unexpected(p.error());
  peer_ = std::move(*p);
  if (MidiSession* m = peer_->midi()) {
    m->set_handler([this](const MidiDelivery& d) {
      if (jack_midi_) jack_midi_->push_output(d.event, d.scheduled_ns);
      if (jack_audio_) jack_audio_->push_midi_output(d.event, d.scheduled_ns);
      if (host_midi_out_ && !host_midi_out_->try_push(TimedEvent{d.event, d.scheduled_ns}))
        block_midi_dropped_.fetch_add(1, std::memory_order_relaxed);
      const auto app = midi_handler_.read();
      if (*app) (*app)(d);
    });
  }
  if (backend) {
    AudioBridgeConfig bcfg;
    bcfg.mix_outputs = mix_outputs;
    bcfg.send = o.send_audio;
    bcfg.tap = o.tap;
    bcfg.tap_user = o.tap_user;
    bcfg.input = o.input;
    bcfg.input_user = o.input_user;
    if (peer_->sync()) {
      device_clock_ = std::make_unique<sync::AudioDeviceClock>(rate_);
      bcfg.device_clock = device_clock_.get();
      peer_->sync()->set_audio_clock(device_clock_.get());
    }
    auto b = AudioBridge::create(*peer_->audio(), *backend, bcfg);
    if (!b) return std::unexpected(b.error());
    bridge_ = std::move(*b);
    backend_ = backend.get();
    engine_ = std::make_unique<engine::Engine>(std::move(backend));
    bridge_->start();
    if (auto r = engine_->start(bridge_.get()); !r) return std::unexpected(r.error());
    if (peer_->sync()) {
      peer_->sync()->set_mix_handler(
          [this](const protocol::control::RequestMsg& r) -> Result<void> {
            if (!r.source) return make_error(Errc::kInvalidArgument, "mix: name a source");
            MixSetting m;
            // What the request leaves out keeps its current value.
            for (const auto& [name, s] : bridge_->stats().mix)
              if (name == *r.source) m = s;
            if (r.gain_db) m.gain_db = *r.gain_db;
            if (r.mute) m.mute = *r.mute;
            if (r.pan) m.pan = *r.pan;
            return set_mix(*r.source, m);
          });
    }
  }
  running_.store(true);
  control_ = std::thread([this] { control_loop(); });
  if (peer_->midi() && (jack_midi_ || jack_audio_ || host_midi_in_ || !o.midi_file.empty()))
    midi_source_ = std::thread([this] { midi_source_loop(); });
  return {};
}

Session::~Session() {
  stop();
}

void Session::stop(bool say_goodbye) {
  if (stopped_.exchange(true)) return;
  running_.store(false);
  if (control_.joinable()) control_.join();
  if (midi_source_.joinable()) midi_source_.join();
  if (peer_ && peer_->sync()) peer_->sync()->set_mix_handler(nullptr);
  if (engine_) engine_->stop();
  if (bridge_) bridge_->stop();
  if (peer_ && peer_->sync()) peer_->sync()->set_audio_clock(nullptr);
  if (peer_) peer_->stop(say_goodbye);
  jack_midi_.reset();
}

bool Session::finished() const {
  return backend_ != nullptr && (backend_->finished() || backend_->failure().has_value());
}

std::optional<Error> Session::failure() const {
  return backend_ ? backend_->failure() : std::nullopt;
}

bool Session::process(const float* const* inputs, float* const* outputs, std::uint32_t frames,
                      Nanos host_time, BlockMidi* midi) noexcept {
  if (midi != nullptr) midi->out_count = 0;
  if (host_ == nullptr) {
    if (outputs != nullptr && frames <= 65536)
      for (int ch = 0; ch < options_.channels; ++ch)
        if (outputs[ch] != nullptr) std::fill(outputs[ch], outputs[ch] + frames, 0.0f);
    return false;
  }
  if (host_time == 0) host_time = monotonic_ns();
  const bool ok = host_->process(inputs, outputs, frames, host_time);
  if (midi == nullptr || !ok || !host_midi_in_) return ok;
  const double ns_per_frame = 1e9 / static_cast<double>(rate_);
  for (const auto& m : midi->in) {
    protocol::jmid::Event e = m.event;
    e.ts_ns = host_time + static_cast<Nanos>(static_cast<double>(m.frame) * ns_per_frame);
    if (!host_midi_in_->try_push(e)) block_midi_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  const Nanos end = host_time + static_cast<Nanos>(static_cast<double>(frames) * ns_per_frame);
  while (midi->out_count < midi->out.size()) {
    if (!host_midi_next_) {
      TimedEvent t;
      if (!host_midi_out_->try_pop(t)) break;
      host_midi_next_ = t;
    }
    if (host_midi_next_->at_ns >= end) break;  // a later block's
    BlockMidiEvent& o = midi->out[midi->out_count++];
    o.event = host_midi_next_->event;
    if (host_midi_next_->at_ns < host_time) {
      o.frame = 0;
      block_midi_late_.fetch_add(1, std::memory_order_relaxed);
    } else {
      o.frame = static_cast<std::uint32_t>(static_cast<double>(host_midi_next_->at_ns - host_time) /
                                           ns_per_frame);
    }
    host_midi_next_.reset();
  }
  return ok;
}

const Uuid& Session::id() const noexcept {
  return peer_->id();
}

Result<void> Session::set_mix(const std::string& source, const MixSetting& mix) {
  if (!bridge_) return make_error(Errc::kUnsupported, "mix: this session has no audio");
  std::string name = source;
  // An id (or its short form) names the peer heard under it now; "ID/N"
  // its stream N.
  const auto slash = source.find('/');
  const std::string who = source.substr(0, slash);
  const std::string stream = slash == std::string::npos ? std::string() : source.substr(slash);
  for (const auto& p : peer_->peers())
    if (p.id.to_string() == who || p.id.short_string() == who) name = p.name + stream;
  std::lock_guard lock(mu_);
  return bridge_->set_mix(name, mix);
}

Result<SendStream*> Session::add_send_stream(int channels) {
  if (!bridge_) return make_error(Errc::kUnsupported, "a send stream needs an audio backend");
  AudioStreamConfig c;
  c.channels = channels;
  c.period_frames = static_cast<int>(options_.block_frames);
  std::lock_guard lock(mu_);
  return bridge_->add_stream(c);
}

Result<void> Session::send_midi(std::span<const protocol::jmid::Event> events) {
  if (!peer_->midi()) return make_error(Errc::kUnsupported, "MIDI is off in this session");
  peer_->midi()->send(events);
  return {};
}

void Session::set_midi_handler(MidiHandler handler) {
  midi_handler_.publish(std::make_unique<const MidiHandler>(std::move(handler)));
  // A call of the old handler that began before the swap ends first.
  if (!midi_handler_.wait_for_readers(1'000'000'000))
    log::warn("session: the MIDI handler did not return within 1 s of being replaced");
  midi_handler_.reclaim();
}

void Session::push_event(SessionEvent e) {
  if (e.at_ns == 0) e.at_ns = monotonic_ns();
  std::lock_guard lock(mu_);
  if (events_.size() >= kMaxEvents) {
    events_.pop_front();
    ++events_dropped_;
  }
  events_.push_back(std::move(e));
}

std::vector<SessionEvent> Session::take_events() {
  std::lock_guard lock(mu_);
  std::vector<SessionEvent> out(std::make_move_iterator(events_.begin()),
                                std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

engine::TelemetrySnapshot Session::telemetry() const {
  if (!engine_) return {};
  return engine_->telemetry();
}

std::string Session::audio_client_name() const {
  return backend_ ? backend_->client_name() : std::string{};
}

void Session::control_loop() {
  constexpr Nanos kTick = 20'000'000;
  std::optional<sync::PlayState> last_play;
  double last_bpm = 0;
  bool last_locked = false;
  std::optional<Uuid> last_master;
  Nanos next_clock = 0, next_security = 0;
  while (running_.load()) {
    const Nanos now = monotonic_ns();
    for (auto& e : peer_->take_events()) {
      SessionEvent se;
      switch (e.kind) {
        case net::PeerEventKind::kJoined:
          se.kind = SessionEvent::Kind::kJoined;
          break;
        case net::PeerEventKind::kRestarted:
          se.kind = SessionEvent::Kind::kRestarted;
          break;
        case net::PeerEventKind::kLeft:
          se.kind = SessionEvent::Kind::kLeft;
          break;
        case net::PeerEventKind::kTimedOut:
          se.kind = SessionEvent::Kind::kTimedOut;
          break;
      }
      se.peer = e.id;
      se.name = std::move(e.name);
      se.at_ns = e.at_ns;
      push_event(std::move(se));
    }
    if (bridge_) {
      AudioBridgeUpdate u;
      {
        std::lock_guard lock(mu_);
        u = bridge_->update();
      }
      for (auto& p : u.added)
        push_event({SessionEvent::Kind::kPortAdded, {}, {}, audio_client_name() + ":" + p, 0});
      for (auto& p : u.removed)
        push_event({SessionEvent::Kind::kPortRemoved, {}, {}, audio_client_name() + ":" + p, 0});
      const auto err = peer_->audio()->stats().last_error;
      if (!err.empty() && err != shown_audio_error_) {
        shown_audio_error_ = err;
        push_event({SessionEvent::Kind::kAudioError, {}, {}, err, 0});
      }
    }
    if (now >= next_security) {
      next_security = now + 500'000'000;
      explain_security_drops();
    }
    if (SyncSession* s = peer_->sync(); s != nullptr && now >= next_clock) {
      next_clock = now + 100'000'000;
      const auto t = s->transport_state();
      if (!last_play || *last_play != t.play || last_bpm != t.bpm) {
        push_event({SessionEvent::Kind::kTransport,
                    {},
                    {},
                    std::string(sync::to_string(t.play)) + " at " + std::to_string(t.bpm) + " bpm",
                    0});
        last_play = t.play;
        last_bpm = t.bpm;
      }
      const auto c = s->report().clock;
      if (c.locked != last_locked || c.master != last_master) {
        push_event({SessionEvent::Kind::kClock,
                    {},
                    {},
                    std::string(c.locked ? "locked" : "not locked") + ", master " +
                        (c.master ? c.master->short_string() : std::string("none")),
                    0});
        last_locked = c.locked;
        last_master = c.master;
      }
    }
    sleep_until_ns(now + kTick);
  }
}

// Keyed session: each kind of frame the seal dropped, explained once.
void Session::explain_security_drops() {
  if (!peer_->transport().keyed()) return;
  const auto t = peer_->transport().totals();
  const struct {
    std::uint64_t count;
    const char* what;
  } kinds[] = {
      {t.keyed_failed,
       "frames that do not authenticate arrive and are dropped: someone sends to this session "
       "with another key or passphrase, or frames were damaged on the way"},
      {t.keyed_stale,
       "frames of a sender run not heard before, stamped more than 120 s from this computer's "
       "clock, arrive and are dropped: an old recording replayed, forged frames, or a clock "
       "(that computer's or this one's) that is wrong"},
      {t.keyed_replayed,
       "frames already received arrive again and are dropped: the network duplicated them, or "
       "someone replays them"},
      {t.keyed_bad_epoch,
       "frames sealed with an outdated epoch key arrive and are dropped (replayed, or very "
       "late)"},
  };
  for (std::size_t i = 0; i < std::size(kinds); ++i) {
    const std::uint64_t bit = std::uint64_t{1} << i;
    if (kinds[i].count == 0 || (security_shown_ & bit) != 0) continue;
    security_shown_ |= bit;
    push_event({SessionEvent::Kind::kSecurity, {}, {}, kinds[i].what, 0});
  }
}

void Session::midi_source_loop() {
  MidiSession* midi = peer_->midi();
  const auto& file = options_.midi_file;
  Nanos file_start = 0;
  std::size_t next = 0;
  protocol::jmid::Event e;
  std::array<protocol::jmid::Event, 256> host_hold{};  // kHost events not yet due, in time order
  std::size_t host_pending = 0;
  while (running_.load()) {
    bool idle = true;
    // A host hands over a block's MIDI ahead of its time: each event leaves
    // at its time, so receivers, which learn our clock from when events
    // arrive against their stamps, see no event from the future.
    while (host_pending < host_hold.size() && host_midi_in_ && host_midi_in_->try_pop(e))
      host_hold[host_pending++] = e;
    const Nanos now = monotonic_ns();
    std::size_t due = 0;
    while (due < host_pending && host_hold[due].ts_ns <= now) ++due;
    if (due > 0) {
      midi->send({host_hold.data(), due});
      std::move(host_hold.begin() + static_cast<std::ptrdiff_t>(due),
                host_hold.begin() + static_cast<std::ptrdiff_t>(host_pending), host_hold.begin());
      host_pending -= due;
      idle = false;
    }
    while ((jack_midi_ && jack_midi_->pop_input(e)) ||
           (jack_audio_ && jack_audio_->pop_midi_input(e))) {
      // e.ts_ns is the event's frame time on CLOCK_MONOTONIC: more exact than now.
      midi->send({&e, 1});
      idle = false;
    }
    if (!file.empty() && (next < file.size() || options_.midi_loop)) {
      // Start once someone is there to hear it.
      if (file_start == 0 &&
          peer_->peers().size() >= std::max<std::size_t>(1, options_.midi_file_wait_peers))
        file_start = monotonic_ns() + 200'000'000;
      if (next == file.size()) {
        next = 0;
        file_start = monotonic_ns() + 500'000'000;
      }
      while (file_start != 0 && next < file.size() &&
             monotonic_ns() >= file_start + file[next].ts_ns) {
        // Events of one instant (a chord) share a packet.
        std::array<protocol::jmid::Event, 64> chord;
        std::size_t n = 0;
        const Nanos t = file[next].ts_ns;
        while (next < file.size() && file[next].ts_ns == t && n < chord.size()) {
          chord[n] = file[next++];
          chord[n++].ts_ns = 0;  // stamped with session time by send()
        }
        midi->send({chord.data(), n});
        idle = false;
      }
    }
    if (idle) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

SessionStatus Session::status() const {
  SessionStatus s;
  s.report = peer_->report();
  s.audio_backend = backend_ ? backend_->kind() : std::string{};
  if (host_) s.refused_blocks = host_->refused_blocks();
  s.block_midi_late = block_midi_late_.load(std::memory_order_relaxed);
  s.block_midi_dropped = block_midi_dropped_.load(std::memory_order_relaxed);
  if (bridge_) {
    std::lock_guard lock(mu_);
    s.bridge = bridge_->stats();
  }
  if (s.report.sync) {
    s.clock_locked = s.report.sync->clock.locked;
    s.clock_master = s.report.sync->clock.master;
    s.transport = s.report.sync->transport;
  }
  if (AudioSession* a = peer_->audio()) {
    const auto peers = peer_->peers();
    for (const auto& src : a->sources()) {
      SourceStatus ss;
      ss.index = src.index;
      ss.name = src.name;
      ss.stream = src.stream;
      ss.peer = src.peer;
      if (s.bridge)
        for (const auto& [name, m] : s.bridge->mix)
          if (name == src.name) ss.mix = m;
      if (src.peer) {
        for (const auto& p : peers)
          if (p.id == *src.peer) ss.path = std::string(net::to_string(p.source));
        if (auto r = a->stats_from(*src.peer, src.stream)) {
          ss.channels = r->channels;
          ss.sample_rate = r->sample_rate;
          ss.packet_frames = r->packet_frames;
          ss.level_dbfs = r->peak > 1e-6f ? 20.0 * std::log10(r->peak) : -120.0;
          ss.buffer_ms = static_cast<double>(r->jitter.depth_ns) / 1e6;
          ss.target_ms = static_cast<double>(r->jitter.target_ns) / 1e6;
          ss.missing = r->jitter.missing_packets;
          ss.concealed = r->concealed_blocks;
        }
      }
      s.sources.push_back(std::move(ss));
    }
  }
  return s;
}

std::string SessionStatus::to_json() const {
  nlohmann::json j = report.to_json_value();
  nlohmann::json sj;
  sj["audio_backend"] = audio_backend;
  sj["clock_locked"] = clock_locked;
  sj["clock_master"] = clock_master ? clock_master->to_string() : std::string();
  if (transport) {
    sj["transport"] = {{"state", std::string(sync::to_string(transport->play))},
                       {"bpm", transport->bpm},
                       {"position_beats", transport->position_beats}};
  }
  sj["refused_blocks"] = refused_blocks;
  sj["block_midi_late"] = block_midi_late;
  sj["block_midi_dropped"] = block_midi_dropped;
  if (bridge) {
    auto& streams = sj["send_streams"] = nlohmann::json::array();
    for (const auto& st : bridge->streams)
      streams.push_back({{"index", st.index},
                         {"channels", st.channels},
                         {"frames_written", st.frames_written},
                         {"frames_dropped", st.frames_dropped}});
  }
  auto& src = sj["sources"] = nlohmann::json::array();
  for (const auto& s : sources) {
    src.push_back({{"index", s.index},
                   {"name", s.name},
                   {"stream", s.stream},
                   {"peer", s.peer ? s.peer->to_string() : std::string()},
                   {"path", s.path},
                   {"channels", s.channels},
                   {"sample_rate", s.sample_rate},
                   {"packet_frames", s.packet_frames},
                   {"level_dbfs", s.level_dbfs},
                   {"buffer_ms", s.buffer_ms},
                   {"target_ms", s.target_ms},
                   {"missing", s.missing},
                   {"concealed", s.concealed},
                   {"gain_db", s.mix.gain_db},
                   {"mute", s.mix.mute},
                   {"pan", s.mix.pan}});
  }
  if (bridge) {
    sj["bridge"] = {{"cycles", bridge->cycles},
                    {"captured", bridge->captured},
                    {"sent", bridge->sent},
                    {"send_queue_full", bridge->send_queue_full},
                    {"too_large", bridge->too_large},
                    {"port_errors", bridge->port_errors},
                    {"last_error", bridge->last_error},
                    {"ports", bridge->remote_ports}};
  }
  j["session"] = std::move(sj);
  // Names come from the network: bytes that are not UTF-8 print as U+FFFD.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace jamnet
