#include "jamnet/peer/sync_session.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "jamnet/core/round.hpp"

namespace jamnet {

namespace ctl = protocol::control;
using protocol::StreamType;

namespace {
__extension__ using i128 = __int128;
constexpr std::size_t kMaxEvents = 64;
constexpr Nanos kResendGap = 5'000'000;  // transport copies 5 ms apart
constexpr int kCopies = 3;
constexpr Nanos kStateInterval = 1'000'000'000;
constexpr Nanos kEventLookahead = 3'000'000;   // compute a start sample this close to its time
constexpr Nanos kRoutesInterval = 20'000'000;  // discovery's routes, read every 20 ms
constexpr std::size_t kMaxInbox = 4096;        // frames waiting for the control thread

}  // namespace

SyncSession::SyncSession(const SyncConfig& config, net::Transport& transport,
                         net::SessionRegistry& registry, net::Discovery& discovery,
                         const Uuid& session, const Uuid& self)
    : config_(config),
      transport_(transport),
      registry_(registry),
      discovery_(discovery),
      session_(session),
      self_(self),
      timeline_(sync::TransportConfig{config.initial_bpm, {}, 10'000'000'000}) {
  if (config_.test_offset_ns || config_.test_skew_ppm != 0)
    clock_ = std::make_unique<sync::TestClock>(config_.test_offset_ns.value_or(0),
                                               config_.test_skew_ppm);
  else
    clock_ = std::make_unique<sync::MonotonicClock>();
  sync::ArbiterConfig ac;
  ac.self = self_;
  ac.priority = config_.priority;
  ac.force_master = config_.force_master;
  ac.sync_hz = config_.sync_hz;
  arbiter_ = std::make_unique<sync::ClockDriftArbiter>(
      ac, *clock_, [this](const std::optional<Uuid>& to, const ctl::ControlMessage& m) {
        send_to(to, m, StreamType::kSync);
      });

  sync_router_.on("sync_ping", [this](const ctl::ControlMessage& m) {
    arbiter_->on_ping(std::get<ctl::SyncPingMsg>(m), current_rx_local_);
  });
  sync_router_.on("sync_pong", [this](const ctl::ControlMessage& m) {
    arbiter_->on_pong(std::get<ctl::SyncPongMsg>(m), current_rx_local_);
  });
  sync_router_.on("sync_status", [this](const ctl::ControlMessage& m) {
    arbiter_->on_status(std::get<ctl::SyncStatusMsg>(m));
  });
  control_router_.on("transport", [this](const ctl::ControlMessage& m) {
    const auto rec = sync::from_message(std::get<ctl::TransportMsg>(m));
    if (!timeline_.apply(rec)) return;
    ++commands_;
    record_if_late_locked(rec);
  });
  control_router_.on("transport_state", [this](const ctl::ControlMessage& m) {
    if (timeline_.load_snapshot(std::get<ctl::TransportStateMsg>(m))) ++snapshots_adopted_;
  });
  control_router_.on("hello", [this](const ctl::ControlMessage& m) {
    // A late joiner: answer with our state and the commands still to come.
    if (current_from_ == nullptr) return;
    (void)m;
    const Nanos now = arbiter_->session_now();
    send_to_endpoint(*current_from_, timeline_.snapshot(now), StreamType::kControl);
    for (const auto& c : timeline_.pending_after(now))
      send_to_endpoint(*current_from_, sync::to_message(c, timeline_.state_at(now), {}),
                       StreamType::kControl);
  });
  control_router_.on("request", [this](const ctl::ControlMessage& m) {
    if (current_from_ != nullptr) on_request(std::get<ctl::RequestMsg>(m), *current_from_);
  });
  // Replies and errors from others need no action here; they are counted.
  control_router_.on("reply", [](const ctl::ControlMessage&) {});
  control_router_.on("error", [](const ctl::ControlMessage&) {});

  // Rejected messages are counted by the routers, and logged here: at most
  // one line a second, so a flood of bad packets cannot flood the log.
  auto log_reject = [this](const ctl::ParseError& e) {
    const Nanos now = monotonic_ns();
    if (now - last_reject_log_ < 1'000'000'000) return;
    last_reject_log_ = now;
    std::fprintf(stderr, "jamnet: control message from %s rejected: %s: %s\n",
                 current_from_ ? current_from_->to_string().c_str() : "?",
                 std::string(ctl::to_string(e.reason)).c_str(), e.detail.substr(0, 200).c_str());
  };
  sync_router_.on_reject(log_reject);
  control_router_.on_reject(log_reject);

  sync_sub_ = registry_.subscribe(
      {session_, StreamType::kSync, 0},
      [this](const net::ReceivedFrame& rx) { queue_frame(rx, StreamType::kSync); });
  control_sub_ = registry_.subscribe(
      {session_, StreamType::kControl, 1},
      [this](const net::ReceivedFrame& rx) { queue_frame(rx, StreamType::kControl); });
}

SyncSession::~SyncSession() {
  stop();
}

void SyncSession::stop() {
  if (stopped_) return;
  stopped_ = true;
  registry_.unsubscribe(sync_sub_);
  registry_.unsubscribe(control_sub_);
}

Nanos SyncSession::local_rx(const net::ReceivedFrame& rx) const {
  Nanos mono = rx.rx_ns;
  if (rx.kernel_rx_realtime_ns != 0) {
    // The kernel stamps CLOCK_REALTIME; move it onto CLOCK_MONOTONIC with the
    // two clocks' current difference (they only differ by slewing, ppm).
    const Nanos k = rx.kernel_rx_realtime_ns - (realtime_ns() - monotonic_ns());
    if (k <= rx.rx_ns && rx.rx_ns - k < 100'000'000) mono = k;
  }
  return clock_->from_monotonic(mono);
}

void SyncSession::queue_frame(const net::ReceivedFrame& rx, StreamType type) {
  if (rx.frame.header.message_kind != kJsonControlKind) return;
  Inbound in{
      type,
      std::string(reinterpret_cast<const char*>(rx.frame.payload.data()), rx.frame.payload.size()),
      rx.from, type == StreamType::kSync ? local_rx(rx) : 0};
  std::lock_guard lock(inbox_mu_);
  if (inbox_.size() >= kMaxInbox) {
    inbox_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  inbox_.push_back(std::move(in));
}

void SyncSession::dispatch_inbound(const Inbound& in) {
  std::lock_guard lock(mu_);
  current_from_ = &in.from;
  if (in.type == StreamType::kSync) {
    current_rx_local_ = in.rx_local;
    sync_router_.dispatch(in.text);
  } else if (auto err = control_router_.dispatch(in.text)) {
    // Tell the sender why (a controller is waiting for an answer).
    ctl::ErrorMsg e;
    e.code = std::string(ctl::to_string(err->reason));
    e.detail = err->detail.substr(0, 512);
    send_to_endpoint(in.from, e, StreamType::kControl);
  }
  current_from_ = nullptr;
}

void SyncSession::send_to(const std::optional<Uuid>& to, const ctl::ControlMessage& m,
                          StreamType type) {
  std::vector<net::Endpoint> targets;
  {
    std::lock_guard lock(routes_mu_);
    if (to) {
      if (auto it = routes_.find(*to); it != routes_.end()) targets.push_back(it->second);
    } else {
      for (const auto& [id, ep] : routes_) targets.push_back(ep);
    }
  }
  for (const auto& ep : targets) send_to_endpoint(ep, m, type);
}

void SyncSession::send_to_endpoint(const net::Endpoint& ep, const ctl::ControlMessage& m,
                                   StreamType type) {
  const std::string text = ctl::serialize(m);
  net::SendOptions o;
  o.session = session_;
  o.topic = {type, static_cast<std::uint16_t>(type == StreamType::kControl ? 1 : 0)};
  o.kind = kJsonControlKind;
  o.format = protocol::FormatType::kStandardJson;
  (void)transport_.send(o, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, ep);
}

void SyncSession::tick() {
  // What arrived since the last tick, in arrival order.
  {
    std::lock_guard lock(inbox_mu_);
    draining_.swap(inbox_);
  }
  for (const auto& in : draining_) dispatch_inbound(in);
  draining_.clear();

  // Routes and departures from discovery (they change on a scale of seconds).
  std::vector<Uuid> left, joined;
  if (const Nanos m = monotonic_ns(); m >= next_routes_) {
    next_routes_ = m + kRoutesInterval;
    const auto routes = discovery_.routes();
    std::lock_guard lock(routes_mu_);
    std::unordered_map<Uuid, net::Endpoint, UuidHash> fresh;
    for (const auto& r : routes) fresh[r.id] = r.address;
    for (const auto& [id, ep] : routes_)
      if (!fresh.contains(id)) left.push_back(id);
    for (const auto& [id, ep] : fresh)
      if (!routes_.contains(id)) joined.push_back(id);
    routes_ = std::move(fresh);
  }
  for (const auto& id : left) arbiter_->peer_left(id);
  arbiter_->tick();

  const Nanos mono = monotonic_ns();
  std::lock_guard lock(mu_);
  const Nanos now = arbiter_->session_now();
  // Redundant copies of our commands.
  for (auto it = resends_.begin(); it != resends_.end();) {
    if (mono >= it->due_mono) {
      send_to(std::nullopt, it->msg, StreamType::kControl);
      it = resends_.erase(it);
    } else {
      ++it;
    }
  }
  // The state, once a second to everyone and at once to a newcomer.
  auto send_state = [&](const std::optional<Uuid>& to) {
    send_to(to, timeline_.snapshot(now), StreamType::kControl);
    for (const auto& c : timeline_.pending_after(now))
      send_to(to, sync::to_message(c, timeline_.state_at(now), {}), StreamType::kControl);
  };
  for (const auto& id : joined) {
    ctl::HelloMsg h;
    h.from = self_.to_string();
    h.session = session_.to_string();
    h.capabilities = {"sync", "transport"};
    send_to(id, h, StreamType::kControl);
    send_state(id);
  }
  if (mono >= next_state_broadcast_) {
    next_state_broadcast_ = mono + kStateInterval;
    send_state(std::nullopt);
  }
  record_events_locked(now + kEventLookahead);
  timeline_.compact(now);
}

void SyncSession::record_events_locked(Nanos upto) {
  if (events_checked_to_ == INT64_MIN) {
    events_checked_to_ = upto;
    return;
  }
  // The session clock stepped back (a peer that just joined a session whose
  // timeline is behind its own): scan again from there. Events already
  // recorded are not recorded twice.
  if (upto < events_checked_to_ - kEventLookahead) events_checked_to_ = upto - kEventLookahead;
  if (upto <= events_checked_to_) return;
  for (const auto& e : timeline_.events_between(events_checked_to_, upto))
    note_event_locked(e, false);
  events_checked_to_ = upto;
}

void SyncSession::record_if_late_locked(const sync::TransportCommandRec& rec) {
  // A command that arrives after its time still lands in its place; a start
  // it asked for is recorded as late.
  if (rec.at_ns >= events_checked_to_) return;
  for (const auto& e : timeline_.events_between(rec.at_ns, rec.at_ns + 1)) {
    if (e.command.origin == rec.origin && e.command.seq == rec.seq) note_event_locked(e, true);
  }
}

void SyncSession::note_event_locked(const sync::TransportEvent& e, bool late) {
  for (const auto& r : events_) {
    if (r.seq == e.command.seq && r.origin == e.command.origin && r.at_session_ns == e.at_ns)
      return;
  }
  events_.push_back(event_report(e, late));
  if (events_.size() > kMaxEvents) events_.pop_front();
}

TransportEventReport SyncSession::event_report(const sync::TransportEvent& e, bool late) const {
  TransportEventReport r;
  r.command = std::string(ctl::to_string(e.command.command));
  r.origin = e.command.origin;
  r.seq = e.command.seq;
  r.at_session_ns = e.at_ns;
  r.late = late;
  const auto& sc = arbiter_->session();
  const Nanos local_at = sc.local_at(e.at_ns);
  if (const auto* dev = audio_clock_.load(std::memory_order_acquire)) {
    // A real device (JACK): its frame counter, related to CLOCK_MONOTONIC by
    // the audio thread every period.
    const Nanos dev_at = dev->from_monotonic(clock_->to_monotonic(local_at));
    r.sample = dev->sample_at_or_after(dev_at);
    r.sample_mono_ns = dev->to_monotonic(dev->time_of_sample(r.sample));
    r.sample_local_ns = clock_->from_monotonic(r.sample_mono_ns);
  } else {
    // No sound card: the local clock counted in samples.
    const auto rate = static_cast<i128>(config_.audio_rate);
    const i128 num = static_cast<i128>(local_at) * rate;
    i128 sample = num / 1'000'000'000;
    if (sample * 1'000'000'000 < num) ++sample;  // at or after
    r.sample = static_cast<std::int64_t>(sample);
    r.sample_local_ns = static_cast<Nanos>((sample * 1'000'000'000 + rate / 2) / rate);
    r.sample_mono_ns = clock_->to_monotonic(r.sample_local_ns);
  }
  r.sample_session_ns = sc.session_at(r.sample_local_ns);
  return r;
}

Result<Nanos> SyncSession::command(sync::TransportCommandRec c, std::optional<Nanos> lead) {
  std::lock_guard lock(mu_);
  return command_locked(std::move(c), lead);
}

Result<Nanos> SyncSession::command_locked(sync::TransportCommandRec c, std::optional<Nanos> lead) {
  const Nanos now = arbiter_->session_now();
  c.at_ns = now + lead.value_or(config_.transport_lead_ns);
  c.origin = self_.to_string();
  c.seq = ++seq_;
  const auto state = timeline_.state_at(now);
  if (!timeline_.apply(c)) {
    --seq_;
    return make_error(Errc::kInvalidArgument, "transport command refused (out of range)");
  }
  ++commands_;
  record_if_late_locked(c);  // a lead of 0 acts at once
  const auto st = arbiter_->status();
  auto msg = sync::to_message(c, state, st.master ? st.master->to_string() : std::string{});
  const Nanos mono = monotonic_ns();
  send_to(std::nullopt, msg, StreamType::kControl);
  for (int i = 1; i < kCopies; ++i) resends_.push_back({mono + i * kResendGap, msg});
  return c.at_ns;
}

void SyncSession::on_request(const ctl::RequestMsg& r, const net::Endpoint& from) {
  // Called with mu_ held (from the control router). A controller resends a
  // request until it hears back: answer a repeat with the first answer.
  for (const auto& [id, cached] : replies_) {
    if (id == r.id) {
      send_to_endpoint(from, cached, StreamType::kControl);
      return;
    }
  }
  ctl::ReplyMsg reply;
  reply.id = r.id;
  const Nanos now = arbiter_->session_now();
  const auto state = timeline_.state_at(now);
  sync::TransportCommandRec c;
  std::optional<std::string> error;
  if (r.action == "play") {
    c.command = sync::TransportCommand::kPlay;
  } else if (r.action == "stop") {
    c.command = sync::TransportCommand::kStop;
  } else if (r.action == "pause") {
    c.command = sync::TransportCommand::kPause;
  } else if (r.action == "record") {
    c.command = sync::TransportCommand::kRecord;
  } else if (r.action == "tempo") {
    c.command = sync::TransportCommand::kTempo;
    if (!r.bpm)
      error = "tempo needs bpm";
    else
      c.bpm = *r.bpm;
  } else if (r.action == "seek") {
    c.command = sync::TransportCommand::kSeek;
    if (r.bbt) {
      auto bbt = sync::parse_bbt(*r.bbt, state.time_signature);
      if (!bbt)
        error = "seek: " + bbt.error().message;
      else
        c.position_beats = sync::bbt_to_beats(*bbt, state.time_signature);
    } else if (r.position_ms) {
      c.position_beats = sync::ms_to_beats(*r.position_ms, state.bpm);
    } else {
      error = "seek needs bbt or position_ms";
    }
  } else if (r.action == "mix") {
    // Not a transport command: answered here, not cached (a repeat sets the same mix).
    Result<void> done = make_error(Errc::kUnsupported, "this peer has no audio mix to set");
    if (mix_handler_) done = mix_handler_(r);
    reply.ok = done.has_value();
    reply.detail = done ? "mix of " + r.source.value_or("?") + " set" : done.error().message;
    send_to_endpoint(from, reply, StreamType::kControl);
    return;
  } else if (r.action == "status") {
    reply.ok = true;
    reply.status_json = report_locked(arbiter_->status()).to_json();
    reply.detail = "status";
    send_to_endpoint(from, reply, StreamType::kControl);
    return;  // not cached: a repeat gets a fresh status
  } else {
    error = "unknown action '" + r.action + "'";
  }
  if (!error) {
    auto at = command_locked(c, r.lead_ns);
    if (at) {
      reply.ok = true;
      reply.at_session_ns = *at;
      reply.detail = r.action + " at session time " + std::to_string(*at) + " ns";
    } else {
      error = at.error().message;
    }
  }
  if (error) reply.detail = *error;
  replies_.emplace_back(r.id, reply);
  if (replies_.size() > 32) replies_.pop_front();
  send_to_endpoint(from, reply, StreamType::kControl);
}

sync::TransportState SyncSession::transport_state() const {
  std::lock_guard lock(mu_);
  return timeline_.state_at(arbiter_->session_now());
}

SyncReport SyncSession::report() const {
  auto clock = arbiter_->status();
  std::lock_guard lock(mu_);
  return report_locked(clock);
}

SyncReport SyncSession::report_locked(const sync::ArbiterStatus& clock) const {
  SyncReport r;
  r.clock = clock;
  {
    r.mono_ns = monotonic_ns();
    r.local_ns = clock_->from_monotonic(r.mono_ns);
    r.session_ns = arbiter_->session().session_at(r.local_ns);
    r.transport = timeline_.state_at(r.session_ns);
    r.events.assign(events_.begin(), events_.end());
    for (std::size_t k = 0; k < ctl::kRejectKinds; ++k)
      r.rejected[k] = sync_router_.counts().rejected[k] + control_router_.counts().rejected[k];
    r.transport_commands = commands_;
    r.transport_ignored = timeline_.ignored();
    r.snapshots_adopted = snapshots_adopted_;
    r.inbox_dropped = inbox_dropped_.load(std::memory_order_relaxed);
  }
  return r;
}

nlohmann::ordered_json SyncReport::to_json_value() const {
  using Json = nlohmann::ordered_json;
  const auto num = [](double v) { return round_significant(v, 9); };
  Json ev = Json::array();
  for (const auto& e : events) {
    ev.push_back({{"command", e.command},
                  {"origin", e.origin},
                  {"seq", e.seq},
                  {"at_session_ns", e.at_session_ns},
                  {"sample", e.sample},
                  {"sample_local_ns", e.sample_local_ns},
                  {"sample_mono_ns", e.sample_mono_ns},
                  {"sample_session_ns", e.sample_session_ns},
                  {"late", e.late}});
  }
  Json rej = Json::object();
  for (std::size_t k = 0; k < rejected.size(); ++k)
    rej[std::string(ctl::to_string(static_cast<ctl::Reject>(k)))] = rejected[k];
  return {{"master", clock.master ? clock.master->to_string() : std::string{}},
          {"is_master", clock.is_master},
          {"locked", clock.locked},
          {"offset_us", num(clock.offset_ns * 1e-3)},
          {"drift_ppm", num(clock.drift_ppm)},
          {"quality", num(clock.quality)},
          {"error_us", num(clock.last_error_ns * 1e-3)},
          {"rtt_min_us", num(clock.rtt_min_ns * 1e-3)},
          {"pings", clock.pings_sent},
          {"pongs", clock.pongs_received},
          {"pongs_used", clock.pongs_used},
          {"steps", clock.steps},
          {"steps_locked", clock.steps_while_locked},
          {"master_changes", clock.master_changes},
          {"locked_after_ms", num(clock.locked_after_ns < 0 ? -1.0 : clock.locked_after_ns * 1e-6)},
          {"candidates", clock.candidates},
          {"mono_ns", mono_ns},
          {"local_ns", local_ns},
          {"session_ns", session_ns},
          {"transport",
           {{"state", std::string(sync::to_string(transport.play))},
            {"bbt", sync::format_bbt(transport.bbt())},
            {"beats", num(transport.position_beats)},
            {"bpm", num(transport.bpm)},
            {"time_signature",
             Json::array({transport.time_signature.num, transport.time_signature.den})},
            {"commands", transport_commands},
            {"ignored", transport_ignored},
            {"snapshots_adopted", snapshots_adopted},
            {"events", std::move(ev)}}},
          {"rejected", std::move(rej)},
          {"inbox_dropped", inbox_dropped}};
}

std::string SyncReport::to_json() const {
  // Commands and origins come from the network: bytes that are not UTF-8
  // print as U+FFFD.
  return to_json_value().dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace jamnet
