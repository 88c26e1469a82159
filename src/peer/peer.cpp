#include "jamnet/peer/peer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "jamnet/core/round.hpp"
#include "jamnet/protocol/byte_order.hpp"

namespace jamnet {

using net::Endpoint;
using protocol::StreamType;

Uuid session_id_from(std::string_view name_or_uuid) {
  if (auto parsed = Uuid::parse(name_or_uuid)) return *parsed;
  return protocol::open_session_id(name_or_uuid);
}

Uuid session_id_from(std::string_view name_or_uuid, const protocol::SessionKey& key) {
  return protocol::keyed_session_id(key, name_or_uuid);
}

double LinkReport::probe_loss() const noexcept {
  const auto expected = probes_received + probes_lost;
  return expected == 0 ? 0.0 : static_cast<double>(probes_lost) / static_cast<double>(expected);
}

Peer::Peer(const PeerConfig& config) : config_(config), id_(config.id.value_or(Uuid::random())) {}

Result<std::unique_ptr<Peer>> Peer::start(const PeerConfig& config) {
  if (config.probe_payload_bytes < 8 || config.probe_payload_bytes > protocol::kDefaultMaxPayload) {
    return make_error(
        Errc::kInvalidArgument,
        "probe payload must be 8.." + std::to_string(protocol::kDefaultMaxPayload) + " bytes");
  }
  if (config.audio) {
    if (auto ok = AudioSession::check(*config.audio); !ok) return std::unexpected(ok.error());
  }
  std::unique_ptr<Peer> p(new Peer(config));
  net::TransportConfig tc;
  tc.bind = config.bind;
  tc.multicast = config.multicast;
  tc.multicast_iface = config.multicast_iface;
  tc.receive_thread = config.receive_thread;
  if (config.key) {
    // A fresh random incarnation per start: the nonces never repeat, even
    // when the clock steps back.
    std::uint64_t incarnation = 0;
    const auto r = protocol::SessionKey::random();
    std::memcpy(&incarnation, r.bytes.data(), sizeof incarnation);
    tc.keyed = net::KeyedSession{config.session, *config.key, p->id_, incarnation, 24};
  }
  auto transport = net::Transport::start(tc, p->registry_);
  if (!transport) return std::unexpected(transport.error());
  p->transport_ = std::move(*transport);

  net::DiscoveryConfig dc;
  dc.session = config.session;
  dc.peer_id = p->id_;
  dc.name = config.name;
  dc.unicast_targets = config.connect;
  dc.use_multicast = config.multicast.has_value();
  dc.announce_interval_ns = config.announce_interval_ns;
  dc.heartbeat_interval_ns = config.heartbeat_interval_ns;
  dc.peer_timeout_ns = config.peer_timeout_ns;
  dc.require_address_proof = config.require_address_proof;
  p->discovery_ = std::make_unique<net::Discovery>(dc, *p->transport_, p->registry_);

  p->probe_payload_.assign(config.probe_payload_bytes, 0);
  for (std::size_t i = 8; i < p->probe_payload_.size(); ++i)
    p->probe_payload_[i] = static_cast<std::uint8_t>(i);
  p->registry_.subscribe({config.session, StreamType::kControl, 0},
                         [raw = p.get()](const net::ReceivedFrame& rx) { raw->on_probe(rx); });
  if (config.midi) {
    p->midi_ = std::make_unique<MidiSession>(*config.midi, *p->transport_, p->registry_,
                                             *p->discovery_, config.session, p->id_);
  }
  if (config.audio) {
    // Packets leave room for the seal in a keyed session.
    AudioConfig ac = *config.audio;
    ac.max_payload = std::min(ac.max_payload, p->transport_->max_payload());
    p->audio_ = std::make_unique<AudioSession>(ac, *p->transport_, p->registry_, *p->discovery_,
                                               config.session);
  }
  if (config.sync) {
    if (!(config.sync->sync_hz >= 1 && config.sync->sync_hz <= 100))
      return make_error(Errc::kInvalidArgument, "sync rate must be 1..100 Hz");
    if (config.sync->transport_lead_ns < 0 || config.sync->transport_lead_ns > 10'000'000'000)
      return make_error(Errc::kInvalidArgument, "transport lead must be 0..10 s");
    p->sync_ = std::make_unique<SyncSession>(*config.sync, *p->transport_, p->registry_,
                                             *p->discovery_, config.session, p->id_);
  }
  p->running_ = true;
  p->control_ = std::thread([raw = p.get()] { raw->control_loop(); });
  return p;
}

Peer::~Peer() {
  stop();
}

void Peer::stop(bool say_goodbye) {
  if (!running_.exchange(false)) return;
  if (control_.joinable()) control_.join();
  // A clean stop leaves no note sounding at the others: note offs for what
  // we hold go out (burst like notes) before the bye.
  if (midi_ && say_goodbye) midi_->release_sent_notes();
  if (midi_) midi_->stop();
  if (audio_) audio_->stop();
  if (sync_) sync_->stop();
  if (say_goodbye) discovery_->say_goodbye();
  transport_->stop();
  registry_.stop();  // no control-plane frame is handled after this
}

void Peer::control_loop() {
  constexpr Nanos kTick = 2'000'000;  // 2 ms: discovery is cheap, probes need pacing
  constexpr Nanos kMaintain = 20'000'000;
  Nanos next = monotonic_ns();
  Nanos next_maintain = next;
  while (running_.load(std::memory_order_relaxed)) {
    const Nanos now = monotonic_ns();
    discovery_->tick(now);
    dispatch_events();
    if (midi_) midi_->tick(now);
    if (audio_ && now >= next_maintain) {
      audio_->maintain(now);
      next_maintain = now + kMaintain;
    }
    if (sync_) sync_->tick();
    if (config_.probe_rate_hz > 0) send_probes(now);
    next += kTick;
    if (next < now) next = now + kTick;  // we fell behind (the VM stalled): do not burst
    sleep_until_ns(next);
  }
}

void Peer::dispatch_events() {
  auto events = discovery_->take_events();
  if (events.empty()) return;
  for (const auto& e : events) {
    if (e.kind == net::PeerEventKind::kJoined) continue;
    // Left, timed out or restarted: what we hold for it goes (its notes are
    // released, its audio receiver freed); a restarted peer starts clean.
    if (midi_) midi_->peer_gone(e.id);
    if (audio_) audio_->forget(e.id);
    probes_out_.erase(e.id);
    std::lock_guard lock(probe_mu_);
    probes_sent_.erase(e.id);
    // A peer that left or timed out: what is kept per address goes too, so
    // a session where peers come and go for hours does not grow.
    for (const auto& ep : e.addresses) {
      transport_->forget(ep);
      registry_.forget_destination(ep);
      delivered_.erase(ep);
    }
  }
  std::lock_guard lock(events_mu_);
  for (auto& e : events) {
    if (events_.size() >= kMaxQueuedEvents) {
      ++events_dropped_;
      events_.erase(events_.begin());
    }
    events_.push_back(std::move(e));
  }
}

std::vector<net::PeerEvent> Peer::take_events() {
  std::lock_guard lock(events_mu_);
  return std::exchange(events_, {});
}

void Peer::send_probes(Nanos now) {
  const auto known = discovery_->routes();
  net::SendOptions o;
  o.session = config_.session;
  o.topic = {StreamType::kControl, 0};
  o.kind = static_cast<std::uint16_t>(ControlKind::kProbe);
  for (const auto& p : known) {
    auto& st = probes_out_[p.id];
    if (st.start_ns == 0) st.start_ns = p.first_seen_ns + config_.probe_start_delay_ns;
    if (now < st.start_ns) continue;
    auto due = static_cast<std::uint64_t>(std::floor(static_cast<double>(now - st.start_ns) * 1e-9 *
                                                     config_.probe_rate_hz)) +
               1;
    // After a stall (the VM or scheduler can stop us for milliseconds) send at
    // most a few at once: shift the schedule rather than burst or skip frames.
    constexpr std::uint64_t kMaxBurst = 8;
    if (due > st.sent + kMaxBurst) {
      st.start_ns += static_cast<Nanos>(static_cast<double>(due - st.sent - kMaxBurst) * 1e9 /
                                        config_.probe_rate_hz);
      due = st.sent + kMaxBurst;
    }
    if (config_.probe_count > 0) due = std::min(due, config_.probe_count);
    std::uint64_t sent_now = 0;
    for (; st.sent < due; ++st.sent) {
      protocol::store_be64(probe_payload_.data(), static_cast<std::uint64_t>(monotonic_ns()));
      if (transport_->send(o, probe_payload_, p.address)) ++sent_now;
    }
    if (sent_now > 0) {
      std::lock_guard lock(probe_mu_);
      probes_sent_[p.id] += sent_now;
    }
  }
}

void Peer::on_probe(const net::ReceivedFrame& rx) {
  if (rx.frame.header.message_kind != static_cast<std::uint16_t>(ControlKind::kProbe)) return;
  // Probes count only from peers (a proven address): a stranger's make no
  // state here.
  if (!discovery_->peer_at(rx.from)) {
    probes_unproven_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(probe_mu_);
  auto& d = delivered_[rx.from];
  // Independent of the transport's window: remembers every sequence number, to
  // prove no duplicate ever reaches the application. Bounded for long runs
  // (a test's probe runs send far fewer), and entries go with their peer.
  if (d.seqs.size() < kMaxProbeSeqs && !d.seqs.insert(rx.frame.header.sequence).second)
    ++d.duplicates;
}

PeerReport Peer::report() const {
  PeerReport r;
  r.id = id_;
  r.name = config_.name;
  r.incarnation = discovery_->config().incarnation;
  r.keyed = transport_->keyed();
  r.local = transport_->local();
  r.totals = transport_->totals();
  r.discovery = discovery_->stats();
  r.registry = registry_.stats();
  r.probes_unproven = probes_unproven_.load(std::memory_order_relaxed);
  if (midi_) r.midi = midi_->stats();
  if (audio_) r.audio = audio_->stats();
  if (sync_) r.sync = sync_->report();
  const auto streams = transport_->stream_stats();
  const auto sources = transport_->source_stats();
  std::lock_guard lock(probe_mu_);
  for (const auto& info : discovery_->peers()) {
    LinkReport link;
    link.info = info;
    if (auto it = probes_sent_.find(info.id); it != probes_sent_.end())
      link.probes_sent = it->second;
    for (const auto& s : streams) {
      if (s.topic.type != StreamType::kControl || s.topic.index != 0 ||
          s.session != config_.session)
        continue;
      if (discovery_->peer_at(s.from) != info.id) continue;
      link.probes_received += s.counts.received;
      link.probes_lost += s.counts.lost;
      link.probes_reordered += s.counts.reordered;
      link.duplicates_dropped += s.counts.duplicated;
    }
    for (const auto& s : sources) {
      if (discovery_->peer_at(s.from) == info.id) link.corrupt += s.corrupt;
    }
    for (const auto& [from, d] : delivered_) {
      if (discovery_->peer_at(from) == info.id) link.app_duplicates += d.duplicates;
    }
    r.links.push_back(std::move(link));
  }
  return r;
}

namespace {
// What the report's readers need of a measured figure; null when there is none.
double num6(double v) {
  return round_significant(v, 6);
}
}  // namespace

nlohmann::ordered_json PeerReport::to_json_value() const {
  using Json = nlohmann::ordered_json;
  Json errors = Json::object();
  for (std::size_t k = 0; k < protocol::kFrameErrorCount; ++k)
    errors[std::string(protocol::to_string(static_cast<protocol::FrameError>(k)))] =
        totals.errors.by_kind[k];
  Json peers = Json::array();
  for (const auto& l : links) {
    peers.push_back({{"id", l.info.id.to_string()},
                     {"name", l.info.name},
                     {"incarnation", l.info.incarnation},
                     {"address", l.info.address.to_string()},
                     {"path", std::string(net::to_string(l.info.source))},
                     {"restarts", l.info.restarts},
                     {"rtt_ms_last", num6(l.info.rtt_last_ms)},
                     {"rtt_ms_p50", num6(l.info.rtt_p50_ms)},
                     {"rtt_ms_p99", num6(l.info.rtt_p99_ms)},
                     {"pings_sent", l.info.pings_sent},
                     {"pongs_received", l.info.pongs_received},
                     {"heartbeat_loss", num6(l.info.heartbeat_loss())},
                     {"probes_sent", l.probes_sent},
                     {"probes_received", l.probes_received},
                     {"probes_lost", l.probes_lost},
                     {"probe_loss", num6(l.probe_loss())},
                     {"reordered", l.probes_reordered},
                     {"duplicates_dropped", l.duplicates_dropped},
                     {"app_duplicates", l.app_duplicates},
                     {"corrupt", l.corrupt}});
  }
  Json j = {{"id", id.to_string()},
            {"name", name},
            {"incarnation", incarnation},
            {"local", local.to_string()},
            {"frames_sent", totals.frames_sent},
            {"send_failures", totals.send_failures},
            {"datagrams_received", totals.datagrams_received},
            {"frames_delivered", totals.frames_delivered},
            {"decode_errors", std::move(errors)},
            // Open, or keyed with what the seal dropped (docs/protocol.md, Security).
            {"security",
             {{"keyed", keyed},
              {"opened", totals.keyed_opened},
              {"failed", totals.keyed_failed},
              {"replayed", totals.keyed_replayed},
              {"bad_epoch", totals.keyed_bad_epoch},
              {"stale", totals.keyed_stale},
              {"senders_evicted", totals.keyed_senders_evicted}}},
            // Caps on what outside input can make us hold: what they turned away.
            {"bounds",
             {{"flood_dropped", totals.flood_dropped},
              {"sources_evicted", totals.sources_evicted},
              {"streams_evicted", totals.streams_evicted},
              {"seq_counters", registry.seq_counters},
              {"seq_evicted", registry.seq_evicted},
              {"challenges_sent", discovery.challenges_sent},
              {"challenges_answered", discovery.challenges_answered},
              {"challenges_limited", discovery.challenges_limited},
              {"challenges_too_small", discovery.challenges_too_small},
              {"bad_cookies", discovery.bad_cookies},
              {"unproven_dropped", discovery.unproven_dropped + probes_unproven},
              {"bad_pongs", discovery.bad_pongs},
              {"peers_refused", discovery.peers_refused},
              {"aliases_evicted", discovery.aliases_evicted}}},
            {"peers", std::move(peers)}};
  if (midi) {
    Json from = Json::array();
    for (const auto& s : midi->senders) {
      from.push_back({{"id", s.id.to_string()},
                      {"copies", s.copies},
                      {"delivered", s.delivered},
                      {"duplicates", s.duplicates},
                      {"too_old", s.too_old},
                      {"repairs", s.repairs},
                      {"late", s.late},
                      {"stale", s.stale},
                      {"held_notes", s.held_notes},
                      {"copy_loss", num6(s.copy_loss)}});
    }
    j["midi"] = {{"events_sent", midi->events_sent},
                 {"packets_sent", midi->packets_sent},
                 {"bytes_sent", midi->bytes_sent},
                 {"journal_lines_sent", midi->journal_lines_sent},
                 {"parse_errors", midi->parse_errors},
                 {"k", midi->k},
                 {"release_events", midi->release_events},
                 {"senders_released", midi->senders_released},
                 {"notes_released_on_stop", midi->notes_released_on_stop},
                 // Dropped, each counted for its own reason: never silently.
                 {"journal_lines_oversize", midi->journal_lines_oversize},
                 {"playout_queue_full", midi->playout_queue_full},
                 {"playout_peers_full", midi->playout_peers_full},
                 {"after_release", midi->after_release},
                 {"bad_time", midi->bad_time},
                 {"send_queue_full", midi->send_queue_full},
                 {"feedback_dropped", midi->feedback_dropped},
                 {"rt_allocs", midi->rt_allocs},
                 {"from", std::move(from)}};
  }
  if (audio) {
    Json from = Json::array();
    for (const auto& a : audio->receivers) {
      const auto& jb = a.jitter;
      from.push_back({{"id", a.from.to_string()},
                      {"name", a.name},
                      {"channels", a.channels},
                      {"packet_frames", a.packet_frames},
                      {"sample_rate", a.sample_rate},
                      {"packets", a.packets},
                      {"blocks", a.blocks},
                      {"decode_errors", a.decode_errors},
                      {"format_mismatch", a.format_mismatch},
                      {"queue_full", a.queue_full},
                      {"missing", jb.missing_packets},
                      {"late", jb.late},
                      {"underruns", jb.underruns},
                      {"concealed_blocks", a.concealed_blocks},
                      {"jitter_ms", num6(jb.jitter_ns / 1e6)},
                      {"target_ms", num6(jb.target_ns / 1e6)},
                      {"depth_ms", num6(jb.depth_ns / 1e6)},
                      {"drift_ppm", num6(jb.drift_ppm)},
                      {"peak", num6(a.peak)}});
    }
    j["audio"] = {{"blocks_sent", audio->blocks_sent},
                  {"frames_sent", audio->frames_sent},
                  {"packets_sent", audio->packets_sent},
                  {"bytes_sent", audio->bytes_sent},
                  {"packet_frames", audio->packet_frames},
                  {"encode_errors", audio->encode_errors},
                  {"send_errors", audio->send_errors},
                  {"bad_blocks", audio->bad_blocks},
                  {"last_error", audio->last_error},
                  {"receivers_created", audio->receivers_created},
                  {"receivers_freed", audio->receivers_freed},
                  {"sources_refused", audio->sources_refused},
                  {"from", std::move(from)}};
  }
  if (sync) j["sync"] = sync->to_json_value();
  return j;
}

std::string PeerReport::to_json() const {
  // Names come from the network: bytes that are not UTF-8 print as U+FFFD.
  return to_json_value().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace jamnet
