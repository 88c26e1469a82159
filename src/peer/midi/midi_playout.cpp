#include "jamnet/peer/midi/midi_playout.hpp"

#include <algorithm>
#include <utility>

#include "jamnet/core/rt_scope.hpp"
#include "jamnet/platform/realtime.hpp"
#include "precise_wait.hpp"

namespace jamnet::midi {

using protocol::jmid::Event;
using protocol::jmid::JournalLine;

namespace {
constexpr std::size_t kReleasesPerWake = 16;  // peers released in one wake without growing
constexpr std::size_t kRepairEvents = 512;    // one journal line repairs at most ~380 items
}  // namespace

MidiPlayout::MidiPlayout(const MidiConfig& config, ForgetFn forget, Clock clock)
    : config_(config), forget_(std::move(forget)), clock_(clock) {
  queue_.reserve(kMaxQueued);
  due_.reserve(kBurstItems);
  out_.reserve(kBurstDeliveries);
  fixes_.reserve(kRepairEvents);
  gone_.reserve(kReleasesPerWake);
}

void MidiPlayout::set_handler(MidiHandler handler) {
  auto fresh = std::make_shared<const MidiHandler>(std::move(handler));
  std::lock_guard lock(mu_);
  retired_handler_ = std::exchange(handler_, std::move(fresh));
}

bool MidiPlayout::push(Nanos at, Due d) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      ++queue_full_;
      return false;
    }
    queue_.push(at, std::move(d));
  }
  cv_.notify_one();
  return true;
}

void MidiPlayout::run() {
  platform::make_current_thread_realtime();
  while (thread_.running()) {
    Nanos next = 0;
    {
      std::unique_lock lock(mu_);
      const auto when = queue_.next_due();
      if (!when) {
        cv_.wait_for(lock, std::chrono::milliseconds(20));
        continue;
      }
      next = *when - config_.handler_lead_ns;
      if (next - clock_() > kCoarseWaitNs) {
        // Coarse wait; an earlier item (notify) wakes us sooner.
        cv_.wait_until(lock, steady_at(next - kCoarseMarginNs));
        continue;
      }
    }
    sleep_precisely_until(next);
    const rt::Scope scope(rt::Work::kMidiPlayout);
    play_due(clock_());
  }
}

std::size_t MidiPlayout::play_due(Nanos now) {
  std::shared_ptr<const MidiHandler> handler;  // a pointer copy: no allocation
  {
    std::lock_guard lock(mu_);
    const std::size_t reserved = due_.capacity();
    queue_.pop_due(now + config_.handler_lead_ns, due_);
    if (due_.capacity() != reserved) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
    handler = handler_;
    for (auto& [at, d] : due_) {
      Source& s = source_for(d.from);
      if (const auto* e = std::get_if<Event>(&d.item)) {
        play_event(s, d, *e, at, now);
      } else if (const auto* j = std::get_if<JournalLine>(&d.item)) {
        play_repair(s, d, *j, at, now);
      } else {
        release(s, d, at, now);
      }
    }
    due_.clear();
  }
  if (handler && *handler) {
    for (auto& d : out_) {
      d.played_ns = clock_();
      (*handler)(d);
    }
  }
  const std::size_t played = out_.size();
  out_.clear();
  for (const Uuid& id : gone_) forget_(id);
  gone_.clear();
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

// mu_ held: note offs for what `s` holds, pedal ups where it held the pedal
// and nobody else does; then `s` is forgotten (here, and by the receiver
// once the lock is dropped).
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
  sources_.erase(d.from);  // bounded: a peer that went away keeps no state here
  if (gone_.size() == gone_.capacity()) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
  gone_.push_back(d.from);
}

MidiPlayout::Source& MidiPlayout::source_for(const Uuid& id) {
  auto it = sources_.find(id);
  if (it == sources_.end()) {
    it = sources_.emplace(id, std::make_unique<Source>()).first;
    it->second->stats.id = id;
  }
  return *it->second;
}

protocol::jmid::ChannelState MidiPlayout::state_from(const Uuid& peer, int channel) const {
  std::lock_guard lock(mu_);
  auto it = sources_.find(peer);
  return it == sources_.end() ? protocol::jmid::ChannelState{} : it->second->state.channel(channel);
}

void MidiPlayout::add_stats(MidiStats& st) const {
  std::lock_guard lock(mu_);
  st.release_events = release_events_;
  st.senders_released = senders_released_;
  st.playout_queue_full = queue_full_;
  st.rt_allocs += rt_allocs_.load(std::memory_order_relaxed);
  for (const auto& [id, s] : sources_) {
    auto it = std::find_if(st.senders.begin(), st.senders.end(),
                           [&](const MidiSenderStats& x) { return x.id == id; });
    if (it == st.senders.end()) it = st.senders.insert(st.senders.end(), MidiSenderStats{.id = id});
    it->delivered = s->stats.delivered;
    it->repairs = s->stats.repairs;
    it->late = s->stats.late;
    it->stale = s->stats.stale;
    it->held_notes = s->state.held_notes();
  }
}

}  // namespace jamnet::midi
