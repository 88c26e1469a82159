#include "jamnet/peer/sync/transport_log.hpp"

#include <algorithm>
#include <string>

namespace jamnet::sync {

namespace ctl = protocol::control;
using protocol::StreamType;

namespace {
__extension__ using i128 = __int128;
constexpr std::size_t kMaxEvents = 64;
constexpr Nanos kResendGap = 5'000'000;  // transport copies 5 ms apart
constexpr int kCopies = 3;
constexpr Nanos kStateInterval = 1'000'000'000;
constexpr Nanos kEventLookahead = 3'000'000;  // compute a start sample this close to its time
}  // namespace

TransportLog::TransportLog(const SyncConfig& config, const Uuid& session, const Uuid& self,
                           ClockElection& clock, SyncWire& wire)
    : config_(config),
      session_(session),
      self_(self),
      clock_(clock),
      wire_(wire),
      timeline_(TransportConfig{config.initial_bpm, {}, 10'000'000'000}) {
  // From peers only (a proven address): commands, snapshots and hellos;
  // requests also from a controller on this machine.
  router_.on("transport", [this](const ctl::ControlMessage& m) {
    if (!from_peer()) return;
    const auto rec = from_message(std::get<ctl::TransportMsg>(m));
    // A command for a time no clock shows, or further ahead than anyone
    // schedules, would sit in the log (and be re-sent) for ever.
    const Nanos now = clock_.arbiter().session_now();
    if (!plausible_ns(rec.at_ns) || rec.at_ns > sat_add(now, kMaxScheduleAheadNs)) {
      ++too_far_;
      return;
    }
    if (!timeline_.apply(rec)) return;
    ++commands_;
    record_if_late_locked(rec);
  });
  router_.on("transport_state", [this](const ctl::ControlMessage& m) {
    if (!from_peer()) return;
    if (timeline_.load_snapshot(std::get<ctl::TransportStateMsg>(m))) ++snapshots_adopted_;
  });
  router_.on("hello", [this](const ctl::ControlMessage& m) {
    // A late joiner: answer with our state and the commands still to come.
    if (current_from_ == nullptr || !from_peer()) return;
    (void)m;
    const Nanos now = clock_.arbiter().session_now();
    wire_.send_to_endpoint(*current_from_, timeline_.snapshot(now), StreamType::kControl);
    for (const auto& c : timeline_.pending_after(now))
      wire_.send_to_endpoint(*current_from_, to_message(c, timeline_.state_at(now), {}),
                             StreamType::kControl);
  });
  router_.on("request", [this](const ctl::ControlMessage& m) {
    if (current_from_ == nullptr) return;
    if (!current_local_ && !from_peer()) return;
    on_request(std::get<ctl::RequestMsg>(m), *current_from_);
  });
  // Replies and errors from others need no action here; they are counted.
  router_.on("reply", [](const ctl::ControlMessage&) {});
  router_.on("error", [](const ctl::ControlMessage&) {});
  router_.on_reject([this](const ctl::ParseError& e) { wire_.log_reject(e, current_from_); });
}

void TransportLog::set_mix_handler(MixHandler handler) {
  std::lock_guard lock(mu_);
  mix_handler_ = std::move(handler);
}

void TransportLog::dispatch(const SyncWire::Inbound& in) {
  std::lock_guard lock(mu_);
  current_from_ = &in.from;
  current_sender_ = in.sender;
  current_local_ = in.local;
  if (auto err = router_.dispatch(in.text)) {
    // Tell the sender why (a controller is waiting for an answer): a peer
    // or a controller on this machine, never an address nobody proved
    // (an error reply is larger than the garbage that caused it).
    if (in.sender || in.local) {
      ctl::ErrorMsg e;
      e.code = std::string(ctl::to_string(err->reason));
      e.detail = err->detail.substr(0, 512);
      wire_.send_to_endpoint(in.from, e, StreamType::kControl);
    }
  }
  current_from_ = nullptr;
  current_sender_.reset();
  current_local_ = false;
}

bool TransportLog::from_peer() {
  if (current_sender_) return true;
  wire_.count_unproven();
  return false;
}

void TransportLog::tick(const std::vector<Uuid>& joined) {
  const Nanos mono = monotonic_ns();
  std::lock_guard lock(mu_);
  const Nanos now = clock_.arbiter().session_now();
  // Redundant copies of our commands.
  for (auto it = resends_.begin(); it != resends_.end();) {
    if (mono >= it->due_mono) {
      wire_.send_to(std::nullopt, it->msg, StreamType::kControl);
      it = resends_.erase(it);
    } else {
      ++it;
    }
  }
  // The state, once a second to everyone and at once to a newcomer.
  auto send_state = [&](const std::optional<Uuid>& to) {
    wire_.send_to(to, timeline_.snapshot(now), StreamType::kControl);
    for (const auto& c : timeline_.pending_after(now))
      wire_.send_to(to, to_message(c, timeline_.state_at(now), {}), StreamType::kControl);
  };
  for (const auto& id : joined) {
    ctl::HelloMsg h;
    h.from = self_.to_string();
    h.session = session_.to_string();
    h.capabilities = {"sync", "transport"};
    wire_.send_to(id, h, StreamType::kControl);
    send_state(id);
  }
  if (mono >= next_state_broadcast_) {
    next_state_broadcast_ = mono + kStateInterval;
    send_state(std::nullopt);
  }
  record_events_locked(now + kEventLookahead);
  timeline_.compact(now);
}

void TransportLog::record_events_locked(Nanos upto) {
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

void TransportLog::record_if_late_locked(const TransportCommandRec& rec) {
  // A command that arrives after its time still lands in its place; a start
  // it asked for is recorded as late.
  if (rec.at_ns >= events_checked_to_) return;
  for (const auto& e : timeline_.events_between(rec.at_ns, rec.at_ns + 1)) {
    if (e.command.origin == rec.origin && e.command.seq == rec.seq) note_event_locked(e, true);
  }
}

void TransportLog::note_event_locked(const TransportEvent& e, bool late) {
  for (const auto& r : events_) {
    if (r.seq == e.command.seq && r.origin == e.command.origin && r.at_session_ns == e.at_ns)
      return;
  }
  events_.push_back(event_report(e, late));
  if (events_.size() > kMaxEvents) events_.pop_front();
}

TransportEventReport TransportLog::event_report(const TransportEvent& e, bool late) const {
  TransportEventReport r;
  r.command = std::string(ctl::to_string(e.command.command));
  r.origin = e.command.origin;
  r.seq = e.command.seq;
  r.at_session_ns = e.at_ns;
  r.late = late;
  const auto& sc = clock_.arbiter().session();
  const auto& local = clock_.local_clock();
  const Nanos local_at = sc.local_at(e.at_ns);
  if (const auto* dev = audio_clock_.load(std::memory_order_acquire)) {
    // A real device (JACK): its frame counter, related to CLOCK_MONOTONIC by
    // the audio thread every period.
    const Nanos dev_at = dev->from_monotonic(local.to_monotonic(local_at));
    r.sample = dev->sample_at_or_after(dev_at);
    r.sample_mono_ns = dev->to_monotonic(dev->time_of_sample(r.sample));
    r.sample_local_ns = local.from_monotonic(r.sample_mono_ns);
  } else {
    // No sound card: the local clock counted in samples.
    const auto rate = static_cast<i128>(config_.audio_rate);
    const i128 num = static_cast<i128>(local_at) * rate;
    i128 sample = num / 1'000'000'000;
    if (sample * 1'000'000'000 < num) ++sample;  // at or after
    r.sample = static_cast<std::int64_t>(sample);
    r.sample_local_ns = static_cast<Nanos>((sample * 1'000'000'000 + rate / 2) / rate);
    r.sample_mono_ns = local.to_monotonic(r.sample_local_ns);
  }
  r.sample_session_ns = sc.session_at(r.sample_local_ns);
  return r;
}

Result<Nanos> TransportLog::command(TransportCommandRec c, std::optional<Nanos> lead) {
  std::lock_guard lock(mu_);
  return command_locked(std::move(c), lead);
}

Result<Nanos> TransportLog::command_locked(TransportCommandRec c, std::optional<Nanos> lead) {
  const Nanos now = clock_.arbiter().session_now();
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
  const auto st = clock_.arbiter().status();
  auto msg = to_message(c, state, st.master ? st.master->to_string() : std::string{});
  const Nanos mono = monotonic_ns();
  wire_.send_to(std::nullopt, msg, StreamType::kControl);
  for (int i = 1; i < kCopies; ++i) resends_.push_back({mono + i * kResendGap, msg});
  return c.at_ns;
}

void TransportLog::on_request(const ctl::RequestMsg& r, const net::Endpoint& from) {
  // Called with mu_ held (from the control router). A controller resends a
  // request until it hears back: answer a repeat with the first answer.
  for (const auto& [id, cached] : replies_) {
    if (id == r.id) {
      wire_.send_to_endpoint(from, cached, StreamType::kControl);
      return;
    }
  }
  ctl::ReplyMsg reply;
  reply.id = r.id;
  const Nanos now = clock_.arbiter().session_now();
  const auto state = timeline_.state_at(now);
  TransportCommandRec c;
  std::optional<std::string> error;
  if (r.action == "play") {
    c.command = TransportCommand::kPlay;
  } else if (r.action == "stop") {
    c.command = TransportCommand::kStop;
  } else if (r.action == "pause") {
    c.command = TransportCommand::kPause;
  } else if (r.action == "record") {
    c.command = TransportCommand::kRecord;
  } else if (r.action == "tempo") {
    c.command = TransportCommand::kTempo;
    if (!r.bpm)
      error = "tempo needs bpm";
    else
      c.bpm = *r.bpm;
  } else if (r.action == "seek") {
    c.command = TransportCommand::kSeek;
    if (r.bbt) {
      auto bbt = parse_bbt(*r.bbt, state.time_signature);
      if (!bbt)
        error = "seek: " + bbt.error().message;
      else
        c.position_beats = bbt_to_beats(*bbt, state.time_signature);
    } else if (r.position_ms) {
      c.position_beats = ms_to_beats(*r.position_ms, state.bpm);
    } else {
      error = "seek needs bbt or position_ms";
    }
  } else if (r.action == "mix") {
    // Not a transport command: answered here, not cached (a repeat sets the same mix).
    Result<void> done = make_error(Errc::kUnsupported, "this peer has no audio mix to set");
    if (mix_handler_) done = mix_handler_(r);
    reply.ok = done.has_value();
    reply.detail = done ? "mix of " + r.source.value_or("?") + " set" : done.error().message;
    wire_.send_to_endpoint(from, reply, StreamType::kControl);
    return;
  } else if (r.action == "status") {
    SyncReport report;
    clock_.fill_report(report);
    fill_report_locked(report);
    report.inbox_dropped = wire_.inbox_dropped();
    reply.ok = true;
    reply.status_json = report.to_json();
    reply.detail = "status";
    wire_.send_to_endpoint(from, reply, StreamType::kControl);
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
  wire_.send_to_endpoint(from, reply, StreamType::kControl);
}

TransportState TransportLog::state() const {
  std::lock_guard lock(mu_);
  return timeline_.state_at(clock_.arbiter().session_now());
}

void TransportLog::fill_report(SyncReport& r) const {
  std::lock_guard lock(mu_);
  fill_report_locked(r);
}

void TransportLog::fill_report_locked(SyncReport& r) const {
  r.transport = timeline_.state_at(r.session_ns);
  r.events.assign(events_.begin(), events_.end());
  for (std::size_t k = 0; k < ctl::kRejectKinds; ++k) r.rejected[k] += router_.counts().rejected[k];
  r.transport_commands = commands_;
  r.transport_ignored = timeline_.ignored() + too_far_;
  r.snapshots_adopted = snapshots_adopted_;
}

}  // namespace jamnet::sync
