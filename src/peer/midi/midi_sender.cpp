#include "jamnet/peer/midi/midi_sender.hpp"

#include <algorithm>

#include "jamnet/core/rt_scope.hpp"
#include "jamnet/platform/realtime.hpp"
#include "jamnet/protocol/toast_frame.hpp"
#include "precise_wait.hpp"

namespace jamnet::midi {

using protocol::jmid::Event;
using protocol::jmid::JournalLine;

namespace {

// How long a receiver's loss report counts when choosing k, in feedback intervals.
constexpr int kFeedbackValidIntervals = 8;
// How long send() waits for room while the send thread's hand-off queue is full.
constexpr Nanos kHandoffRetryNs = 20'000'000;

bool later(const auto& a, const auto& b) {
  return a.at != b.at ? a.at > b.at : a.order > b.order;
}

}  // namespace

MidiSender::MidiSender(const MidiConfig& config, net::Transport& transport,
                       net::Discovery& discovery, const Uuid& session, const Uuid& self)
    : config_(config),
      transport_(transport),
      discovery_(discovery),
      session_(session),
      burst_(config.burst, UuidHash{}(self) ^ static_cast<std::uint64_t>(monotonic_ns())) {
  outgoing_.reserve(kBurstCopies);
  due_.reserve(kBurstCopies);
  journal_payload_.reserve(protocol::kDefaultMaxPayload);
  k_ = burst_.k();
}

void MidiSender::send(std::span<const Event> events) {
  if (events.empty()) return;
  std::lock_guard lock(send_mu_);
  send_locked(events);
}

void MidiSender::send_locked(std::span<const Event> events) {
  apply_feedback_locked();
  {
    Outgoing spent;  // what the send thread is done with is freed here, off its thread
    while (spent_.try_pop(spent)) spent.payload.reset();
  }
  const Nanos now = transport_.session_now();
  std::string payload;
  payload.reserve(events.size() * 48);
  for (Event e : events) {
    if (e.ts_ns == 0) e.ts_ns = now;
    e.seq = burst_.next_seq();
    journal_state_.last_seq = e.seq;
    sent_state_.apply(e);
    if (protocol::jmid::is_channel_message(e.kind)) journal_state_.used.set(e.channel);
    if (!payload.empty()) payload.push_back('\n');
    payload += protocol::jmid::to_line(e);
  }
  for (int ch = 0; ch < 16; ++ch)
    journal_state_.channels[static_cast<std::size_t>(ch)] = sent_state_.channel(ch);
  journal_.write(journal_state_);
  events_sent_.fetch_add(events.size(), std::memory_order_relaxed);
  // One packet holds what fits in a datagram (less the seal in a keyed
  // session); a long chord or SysEx run splits.
  const std::size_t max_payload = transport_.max_payload();
  std::size_t start = 0;
  while (start < payload.size()) {
    std::size_t end = payload.size();
    if (end - start > max_payload) {
      end = payload.rfind('\n', start + max_payload);
      if (end == std::string::npos || end <= start) end = start + max_payload;
    }
    enqueue_locked(std::make_shared<const std::string>(payload.substr(start, end - start)), now);
    start = end + (end < payload.size() && payload[end] == '\n' ? 1 : 0);
  }
}

void MidiSender::enqueue_locked(std::shared_ptr<const std::string> payload, Nanos now) {
  std::array<media::jmid::ScheduledCopy, media::jmid::kMaxBurst> copies{};
  const std::size_t n = burst_.schedule(now, copies);
  for (std::size_t i = 0; i < n; ++i) {
    const Outgoing o{copies[i].send_at_ns, order_++, payload,
                     midi_message_kind(MidiLineClass::kEvents, copies[i].copy, copies[i].k)};
    copies_queued_.fetch_add(1, std::memory_order_relaxed);
    // This is an app thread: a full queue (thousands of copies in flight)
    // waits a little for the send thread, then drops and counts.
    const Nanos give_up = monotonic_ns() + kHandoffRetryNs;
    bool queued = false;
    while (!(queued = handoffs_.try_push(o)) && monotonic_ns() < give_up) {
      wake_.post();
      sleep_until_ns(monotonic_ns() + 200'000);
    }
    if (!queued) {
      handoffs_full_.fetch_add(1, std::memory_order_relaxed);
      copies_done_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  wake_.post();
}

void MidiSender::on_feedback(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;  // not (yet) a known peer of this session
  const std::string_view text(reinterpret_cast<const char*>(rx.frame.payload.data()),
                              rx.frame.payload.size());
  auto line = protocol::jmid::parse_any(text);
  if (!line || !std::holds_alternative<protocol::jmid::Feedback>(*line)) return;
  if (!reports_.try_push({*from, std::get<protocol::jmid::Feedback>(*line).loss, rx.rx_ns}))
    reports_dropped_.fetch_add(1, std::memory_order_relaxed);
}

void MidiSender::tick() {
  std::lock_guard lock(send_mu_);
  apply_feedback_locked();
}

void MidiSender::apply_feedback_locked() {
  Report r;
  bool any = false;
  while (reports_.try_pop(r)) {
    // Bounded: reports from more receivers than kReporters wait for old ones to expire.
    if (feedback_.size() < kReporters || feedback_.contains(r.from))
      feedback_[r.from] = {r.loss, r.rx_ns};
    any = true;
  }
  if (!any) return;
  double worst = 0;  // the burst size must serve the worst receiver heard from lately
  const Nanos newest = r.rx_ns;
  for (auto it = feedback_.begin(); it != feedback_.end();) {
    if (newest - it->second.second > kFeedbackValidIntervals * config_.feedback_interval_ns) {
      it = feedback_.erase(it);
    } else {
      worst = std::max(worst, it->second.first);
      ++it;
    }
  }
  burst_.on_feedback(worst);
  k_ = burst_.k();
}

void MidiSender::run() {
  // Copies must leave on time and the thread spins briefly before each one:
  // real-time priority keeps busy normal threads from delaying it.
  realtime_ = platform::make_current_thread_realtime();
  Nanos next_journal = monotonic_ns() + config_.journal_interval_ns;
  while (thread_.running()) {
    wake_.drain();  // posts so far are answered by what follows
    {
      const rt::Scope scope(rt::Work::kMidiSend);
      take_handoffs();
    }
    Nanos wake = next_journal;
    if (!outgoing_.empty()) wake = std::min(wake, outgoing_.front().at);
    if (wake - monotonic_ns() > kCoarseWaitNs) {
      // Coarse wait; new copies wake us early.
      wake_.wait_until(wake - kCoarseMarginNs);
      continue;
    }
    sleep_precisely_until(wake);
    const rt::Scope scope(rt::Work::kMidiSend);
    const Nanos now = monotonic_ns();
    take_due(now);
    for (const auto& o : due_) {
      transmit({reinterpret_cast<const std::uint8_t*>(o.payload->data()), o.payload->size()},
               o.kind);
      copies_done_.fetch_add(1, std::memory_order_relaxed);
    }
    if (now >= next_journal) {
      send_journal(now);
      next_journal = now + config_.journal_interval_ns;
    }
  }
}

// Send thread: copies handed over go into the heap of what waits for its instant.
void MidiSender::take_handoffs() {
  while (handoffs_.try_pop(taken_)) {
    if (outgoing_.size() == outgoing_.capacity())
      rt_allocs_.fetch_add(1, std::memory_order_relaxed);
    outgoing_.push_back(std::move(taken_));
    std::push_heap(outgoing_.begin(), outgoing_.end(),
                   [](const Outgoing& a, const Outgoing& b) { return later(a, b); });
  }
}

// Send thread: the copies due by `now` into due_.
void MidiSender::take_due(Nanos now) {
  // Last wake's payloads go back to the next send() to free.
  for (auto& o : due_) {
    // Moved, not copied: a copy races send() dropping its one and would free here.
    if (!spent_.try_push(std::move(o))) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
  }
  due_.clear();
  take_handoffs();
  while (!outgoing_.empty() && outgoing_.front().at <= now) {
    std::pop_heap(outgoing_.begin(), outgoing_.end(),
                  [](const Outgoing& a, const Outgoing& b) { return later(a, b); });
    if (due_.size() == due_.capacity()) rt_allocs_.fetch_add(1, std::memory_order_relaxed);
    due_.push_back(std::move(outgoing_.back()));
    outgoing_.pop_back();
  }
}

void MidiSender::transmit(std::span<const std::uint8_t> bytes, std::uint16_t kind) {
  net::SendOptions opts;
  opts.session = session_;
  opts.topic = kMidiTopic;
  opts.kind = kind;
  opts.format = protocol::FormatType::kCompactJsonl;
  const auto table = discovery_.route_table();  // pinned while we send; no lock
  for (const auto& route : table->routes) {
    if (transport_.send_rt(opts, bytes, route.address)) {  // failures: counted by the transport
      packets_sent_.fetch_add(1, std::memory_order_relaxed);
      bytes_sent_.fetch_add(protocol::encoded_size(bytes.size()), std::memory_order_relaxed);
    }
  }
}

void MidiSender::send_journal(Nanos now) {
  // Pack whole lines into datagrams. A line longer than a datagram (a channel
  // with ~100 notes held and every controller set) cannot go and is counted.
  journal_payload_.clear();
  const auto flush = [&] {
    if (journal_payload_.empty()) return;
    transmit(
        {reinterpret_cast<const std::uint8_t*>(journal_payload_.data()), journal_payload_.size()},
        midi_message_kind(MidiLineClass::kJournal, 0, 1));
    journal_payload_.clear();
  };
  const JournalState& js = journal_.read();
  for (int ch = 0; ch < 16; ++ch) {
    // Channels ever used are journalled even when back to default, so a
    // receiver that missed the last note off still learns the note is off.
    if (!js.used.test(static_cast<std::size_t>(ch))) continue;
    JournalLine j;
    j.channel = static_cast<std::uint8_t>(ch);
    j.upto_seq = js.last_seq;
    j.ts_ns = now;
    j.state = js.channels[static_cast<std::size_t>(ch)];
    const std::size_t n = protocol::jmid::format_journal(j, journal_line_);
    const std::size_t max_payload = transport_.max_payload();
    if (n > max_payload) {
      journal_oversize_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (journal_payload_.size() + 1 + n > max_payload) flush();
    if (!journal_payload_.empty()) journal_payload_.push_back('\n');
    journal_payload_.append(journal_line_.data(), n);
    journal_sent_.fetch_add(1, std::memory_order_relaxed);
  }
  flush();
}

void MidiSender::release_sent_notes(Nanos timeout_ns) {
  std::vector<Event> offs;
  {
    std::lock_guard lock(send_mu_);
    for (int ch = 0; ch < 16; ++ch) {
      const auto& st = sent_state_.channel(ch);
      for (std::size_t n = 0; n < 128; ++n) {
        if (!st.notes_on[n]) continue;
        Event e;
        e.kind = protocol::jmid::Kind::kNoteOff;
        e.channel = static_cast<std::uint8_t>(ch);
        e.data1 = static_cast<std::uint8_t>(n);
        offs.push_back(e);
      }
      if (st.cc[64] >= 64) {
        Event e;
        e.kind = protocol::jmid::Kind::kControlChange;
        e.channel = static_cast<std::uint8_t>(ch);
        e.data1 = 64;
        e.data2 = 0;
        offs.push_back(e);
      }
    }
    if (offs.empty()) return;
    notes_released_on_stop_.fetch_add(offs.size(), std::memory_order_relaxed);
    send_locked(offs);  // burst like any note
  }
  const Nanos deadline = monotonic_ns() + timeout_ns;
  while (monotonic_ns() < deadline && copies_done_.load() < copies_queued_.load())
    sleep_until_ns(monotonic_ns() + 200'000);
  // The last copies leave within a few microseconds of their time; let the
  // socket take them before the caller says bye.
  sleep_until_ns(monotonic_ns() + 1'000'000);
}

protocol::jmid::ChannelState MidiSender::sent_state(int channel) const {
  std::lock_guard lock(send_mu_);
  return sent_state_.channel(channel);
}

void MidiSender::add_stats(MidiStats& st) const {
  st.events_sent = events_sent_.load();
  st.packets_sent = packets_sent_.load();
  st.bytes_sent = bytes_sent_.load();
  st.journal_lines_sent = journal_sent_.load();
  st.journal_lines_oversize = journal_oversize_.load();
  st.notes_released_on_stop = notes_released_on_stop_.load();
  st.send_queue_full = handoffs_full_.load();
  st.feedback_dropped = reports_dropped_.load();
  st.rt_allocs += rt_allocs_.load(std::memory_order_relaxed);
  st.k = k_.load();
  st.realtime = realtime_.load();
}

}  // namespace jamnet::midi
