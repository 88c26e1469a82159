#include "jamnet/peer/midi/midi_playout.hpp"

#include <algorithm>
#include <utility>

#include "jamnet/core/log.hpp"
#include "jamnet/core/rt_scope.hpp"
#include "jamnet/platform/realtime.hpp"
#include "precise_wait.hpp"

namespace jamnet::midi {

using protocol::jmid::Event;
using protocol::jmid::JournalLine;

namespace {
constexpr std::size_t kRepairEvents = 512;  // one journal line repairs at most ~380 items
// How long the thread sleeps with nothing queued (a stop or a hand-off wakes it sooner).
constexpr Nanos kIdleWaitNs = 20'000'000;
// How long a control thread retries a peer's release while the hand-off queue is full.
constexpr Nanos kGoneRetryNs = 100'000'000;
}  // namespace

MidiPlayout::Source::Source(const MidiConfig& c)
    : dedupe(media::jmid::BurstDeduper::Config{c.dedupe_expiry_ns, 4096,
                                               std::max(1, c.accept_copies)}),
      clock(c.latency_ns) {}

Nanos MidiPlayout::Source::play_time(std::int64_t ts) {
  // The offset estimate only ever drops (a faster packet shows up); an item
  // queued after another must still not play before it, or a journal could
  // overtake the events it summarises and a note could overtake its
  // predecessor on the same channel.
  last_play_ns = std::max(last_play_ns, clock.play_at(ts));
  return last_play_ns;
}

MidiPlayout::MidiPlayout(const MidiConfig& config, Clock clock) : config_(config), clock_(clock) {
  queue_.reserve(kMaxQueued + kMaxPeers);
  due_.reserve(kBurstItems);
  out_.reserve(kBurstDeliveries);
  fixes_.reserve(kRepairEvents);
  snapshot_.peers.reserve(kMaxPeers);
  sources_.reserve(kMaxPeers);
}

void MidiPlayout::start() {
  requests_.set_serving(true);
  thread_.start([this] { run(); });
}

void MidiPlayout::stop() {
  thread_.stop(wake_);
  requests_.set_serving(false);  // the state is the callers' again
}

void MidiPlayout::set_handler(MidiHandler handler) {
  handler_.publish(std::make_unique<const MidiHandler>(std::move(handler)));
  // A call of the old handler that began before the swap ends first, so
  // what it captured may go once this returns.
  if (!handler_.wait_for_readers(1'000'000'000))
    log::warn("midi: the playout handler did not return within 1 s of being replaced");
  handler_.reclaim();
}

bool MidiPlayout::hand_over(const Handoff& h) {
  if (!inbox_.try_push(h)) {
    queue_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  wake_.post();
  return true;
}

bool MidiPlayout::push_received(const Uuid& from, Nanos rx_ns, std::uint8_t k,
                                const std::variant<Event, JournalLine>& line) {
  Handoff h;
  h.kind = Handoff::Kind::kReceived;
  h.k = k == 0 ? 1 : k;
  h.due.from = from;
  h.due.received_ns = rx_ns;
  if (const auto* e = std::get_if<Event>(&line)) {
    h.due.item = *e;
  } else {
    h.due.item = std::get<JournalLine>(line);
  }
  return hand_over(h);
}

bool MidiPlayout::push(Nanos at, Due d) {
  Handoff h;
  h.at = at;
  h.due = std::move(d);
  return hand_over(h);
}

void MidiPlayout::peer_gone(const Uuid& id) {
  Handoff h;
  h.kind = Handoff::Kind::kGone;
  h.due.from = id;
  h.due.item = Release{};
  // A release must not be lost to a full queue: retry for a while (this is
  // the control thread), then count it.
  const Nanos give_up = monotonic_ns() + kGoneRetryNs;
  while (!inbox_.try_push(h)) {
    if (monotonic_ns() > give_up) {
      queue_full_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    sleep_until_ns(monotonic_ns() + 1'000'000);
  }
  wake_.post();
}

void MidiPlayout::run() {
  realtime_ = platform::make_current_thread_realtime();
  while (thread_.running()) {
    wake_.drain();  // posts so far are answered by what follows
    std::optional<Nanos> when;
    {
      const rt::Scope scope(rt::Work::kMidiPlayout);
      take_handoffs();
      requests_.serve([this] { publish_snapshot(); });
      when = queue_.next_due();
    }
    const Nanos now = clock_();
    if (!when) {
      wake_.wait_until(now + (requests_.pending() ? 1'000'000 : kIdleWaitNs));
      continue;
    }
    const Nanos next = *when - config_.handler_lead_ns;
    if (next - now > kCoarseWaitNs) {
      // Coarse wait; a hand-off (an earlier item, a reader) wakes us sooner.
      wake_.wait_until(next - kCoarseMarginNs);
      continue;
    }
    sleep_precisely_until(next);
    const rt::Scope scope(rt::Work::kMidiPlayout);
    play_due(clock_());
  }
}

void MidiPlayout::take_handoffs() {
  while (inbox_.try_pop(taken_)) accept(taken_);
}

void MidiPlayout::accept(Handoff& h) {
  if (h.kind == Handoff::Kind::kGone && !sources_.contains(h.due.from)) return;  // nothing held
  if (h.kind == Handoff::Kind::kReceived && !sources_.contains(h.due.from) &&
      released_lately(h.due.from, h.due.received_ns)) {
    ++after_release_;  // a late copy of a peer just released: its note would never end
    return;
  }
  Source* s = source_for(h.due.from);
  if (s == nullptr) {
    peers_full_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  switch (h.kind) {
    case Handoff::Kind::kScheduled:
      s->last_play_ns = std::max(s->last_play_ns, h.at);
      enqueue(h.at, std::move(h.due));
      return;
    case Handoff::Kind::kGone:
      // After whatever of it is queued still: a note on that is on its way
      // must not sound after the release.
      h.due.received_ns = clock_();
      enqueue(std::max(h.due.received_ns, s->last_play_ns), std::move(h.due));
      return;
    case Handoff::Kind::kReceived:
      break;
  }
  if (const auto* e = std::get_if<Event>(&h.due.item)) {
    ++s->stats.copies;
    const auto verdict = s->dedupe.on_copy(e->seq, h.k, h.due.received_ns);
    if (verdict != media::jmid::BurstDeduper::Verdict::kDeliver) return;
    if (!s->clock.observe(e->ts_ns, h.due.received_ns)) {
      ++bad_time_;  // a time no sender's clock shows: never scheduled
      return;
    }
    enqueue(s->play_time(e->ts_ns), std::move(h.due));
  } else if (const auto* j = std::get_if<JournalLine>(&h.due.item)) {
    if (!s->clock.observe(j->ts_ns, h.due.received_ns)) {
      ++bad_time_;
      return;
    }
    enqueue(s->play_time(j->ts_ns), std::move(h.due));
  }
}

void MidiPlayout::enqueue(Nanos at, Due&& d) {
  // A release always gets in (room for one per peer is reserved): dropping
  // it would leave the leaver's notes sounding.
  const bool release = std::holds_alternative<Release>(d.item);
  if (queue_.size() >= kMaxQueued + (release ? kMaxPeers : 0)) {
    queue_full_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push(at, std::move(d));
}

std::size_t MidiPlayout::play_due(Nanos now) {
  take_handoffs();
  const std::size_t reserved = due_.capacity();
  queue_.pop_due(now + config_.handler_lead_ns, due_);
  if (due_.capacity() != reserved) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
  for (auto& [at, d] : due_) {
    Source* s = find_source(d.from);
    if (s == nullptr) {  // queued after its peer's release (which forgot it): not played
      ++after_release_;
      continue;
    }
    if (const auto* e = std::get_if<Event>(&d.item)) {
      play_event(*s, d, *e, at, now);
    } else if (const auto* j = std::get_if<JournalLine>(&d.item)) {
      play_repair(*s, d, *j, at, now);
    } else {
      release(*s, d, at, now);
    }
  }
  due_.clear();
  {
    const auto handler = handler_.read();  // pinned: freed by a later set_handler, not here
    if (*handler) {
      for (auto& d : out_) {
        d.played_ns = clock_();
        (*handler)(d);
      }
    }
  }
  const std::size_t played = out_.size();
  out_.clear();
  return played;
}

void MidiPlayout::deliver(const MidiDelivery& d) {
  if (out_.size() == out_.capacity()) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
  out_.push_back(d);
}

void MidiPlayout::play_event(Source& s, const Due& d, const Event& e, Nanos at, Nanos now) {
  // Per channel, events play in order. One that shows up after a newer
  // event of its channel has played (a packet held up for tens of ms) is too
  // late to matter musically and would play out of order: drop it; the
  // journal restores whatever state it carried. Likewise when a journal
  // already covered it: playing it now would undo the repair.
  auto& newest = s.newest_played[protocol::jmid::is_channel_message(e.kind) ? e.channel : 16];
  if (e.seq < newest || !s.state.apply(e)) {
    ++s.stats.stale;
    return;
  }
  newest = e.seq;
  ++s.stats.delivered;
  if (now - config_.handler_lead_ns - at > 1'000'000) ++s.stats.late;
  deliver({e, d.from, d.received_ns, at, now, false});
}

void MidiPlayout::play_repair(Source& s, const Due& d, const JournalLine& j, Nanos at, Nanos now) {
  const std::size_t reserved = fixes_.capacity();
  s.state.repair(j, fixes_);
  if (fixes_.capacity() != reserved) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
  for (const auto& fix : fixes_) {
    ++s.stats.repairs;
    deliver({fix, d.from, d.received_ns, at, now, true});
  }
  fixes_.clear();
}

// Note offs for what `s` holds, pedal ups where it held the pedal and
// nobody else does; then `s` is forgotten.
void MidiPlayout::release(Source& s, const Due& d, Nanos at, Nanos now) {
  std::array<bool, 16> pedal{};
  for (int ch = 0; ch < 16; ++ch)
    pedal[static_cast<std::size_t>(ch)] = s.state.channel(ch).cc[64] >= 64;
  const std::size_t reserved = fixes_.capacity();
  s.state.release_all(fixes_);
  if (fixes_.capacity() != reserved) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
  for (const auto& off : fixes_) {
    deliver({off, d.from, d.received_ns, at, now, false, true});
    ++release_events_;
  }
  fixes_.clear();
  for (int ch = 0; ch < 16; ++ch) {
    if (!pedal[static_cast<std::size_t>(ch)]) continue;
    bool held_by_other = false;
    for (const auto& [id, other] : sources_)
      if (other.get() != &s && other->state.channel(ch).cc[64] >= 64) held_by_other = true;
    if (held_by_other) continue;
    Event up;
    up.kind = protocol::jmid::Kind::kControlChange;
    up.channel = static_cast<std::uint8_t>(ch);
    up.data1 = 64;
    up.data2 = 0;
    deliver({up, d.from, d.received_ns, at, now, false, true});
    ++release_events_;
  }
  ++senders_released_;
  released_[released_next_] = {d.from, now};
  released_next_ = (released_next_ + 1) % released_.size();
  sources_.erase(d.from);  // bounded: a peer that went away keeps no state here (frees)
}

bool MidiPlayout::released_lately(const Uuid& id, Nanos now) const {
  for (const auto& r : released_)
    if (r.at != 0 && r.id == id && now - r.at < kReleasedHoldNs) return true;
  return false;
}

MidiPlayout::Source* MidiPlayout::find_source(const Uuid& id) {
  const auto it = sources_.find(id);
  return it == sources_.end() ? nullptr : it->second.get();
}

MidiPlayout::Source* MidiPlayout::source_for(const Uuid& id) {
  auto it = sources_.find(id);
  if (it != sources_.end()) return it->second.get();
  if (sources_.size() >= kMaxPeers) return nullptr;
  // A new peer: its state is made here, once (allocates).
  it = sources_.emplace(id, std::make_unique<Source>(config_)).first;
  it->second->stats.id = id;
  return it->second.get();
}

// Into storage reserved up front: no allocation on the playout thread.
void MidiPlayout::publish_snapshot() const {
  snapshot_.peers.clear();
  for (const auto& [id, s] : sources_) {
    PeerSnapshot& p = snapshot_.peers.emplace_back();
    p.stats = s->stats;
    const auto& d = s->dedupe.stats();
    p.stats.duplicates = d.duplicates;
    p.stats.too_old = d.too_old;
    p.stats.copy_loss = s->dedupe.copy_loss_estimate();
    p.stats.held_notes = s->state.held_notes();
    for (int ch = 0; ch < 16; ++ch) p.channels[static_cast<std::size_t>(ch)] = s->state.channel(ch);
  }
  snapshot_.release_events = release_events_;
  snapshot_.senders_released = senders_released_;
  snapshot_.after_release = after_release_;
  snapshot_.bad_time = bad_time_;
}

template <class Read>
void MidiPlayout::read_snapshot(Read&& read) const {
  auto* self = const_cast<MidiPlayout*>(this);  // the state is ours when no thread serves
  requests_.read_fresh([this] { const_cast<Wakeup&>(wake_).post(); },
                       [self] {
                         self->take_handoffs();
                         self->publish_snapshot();
                       },
                       [&] { read(std::as_const(snapshot_)); });
}

protocol::jmid::ChannelState MidiPlayout::state_from(const Uuid& peer, int channel) const {
  protocol::jmid::ChannelState out;
  if (channel < 0 || channel > 15) return out;
  read_snapshot([&](const Snapshot& snap) {
    for (const auto& p : snap.peers)
      if (p.stats.id == peer) out = p.channels[static_cast<std::size_t>(channel)];
  });
  return out;
}

void MidiPlayout::add_stats(MidiStats& st) const {
  read_snapshot([&](const Snapshot& snap) {
    st.release_events = snap.release_events;
    st.senders_released = snap.senders_released;
    st.after_release = snap.after_release;
    st.bad_time = snap.bad_time;
    for (const auto& p : snap.peers) {
      auto it = std::find_if(st.senders.begin(), st.senders.end(),
                             [&](const MidiSenderStats& x) { return x.id == p.stats.id; });
      if (it == st.senders.end()) {
        st.senders.push_back(p.stats);
      } else {
        *it = p.stats;
      }
    }
  });
  // After the snapshot: what it took from the hand-off queue is counted too.
  st.playout_queue_full = queue_full_.load(std::memory_order_relaxed);
  st.playout_peers_full = peers_full_.load(std::memory_order_relaxed);
  st.rt_allocs += rt_allocs_.load(std::memory_order_relaxed);
  st.realtime = st.realtime && realtime_.load();
}

}  // namespace jamnet::midi
