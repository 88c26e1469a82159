#include "jamnet/peer/midi_session.hpp"

#include <algorithm>
#include <chrono>

#include "jamnet/platform/realtime.hpp"
#include "jamnet/protocol/jmid_journal.hpp"

namespace jamnet {

using protocol::StreamType;
using protocol::jmid::Event;
using protocol::jmid::JournalLine;

namespace {

constexpr protocol::Topic kMidiTopic{StreamType::kMidi, 0};
// Frames a loss report must cover (about one lost frame's worth of resolution
// at 5%); and how long a receiver's report counts when choosing k.
constexpr std::uint64_t kMinFeedbackFrames = 20;
constexpr int kFeedbackValidIntervals = 8;

std::uint16_t message_kind(MidiLineClass cls, int copy, int k) {
  return static_cast<std::uint16_t>(static_cast<std::uint16_t>(cls) | (copy & 0xF) << 4 |
                                    (k & 0xF) << 8);
}

bool heap_later(Nanos a_at, std::uint64_t a_order, Nanos b_at, std::uint64_t b_order) {
  return a_at != b_at ? a_at > b_at : a_order > b_order;
}

std::chrono::steady_clock::time_point steady_at(Nanos monotonic) {
  // steady_clock is CLOCK_MONOTONIC on Linux.
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(monotonic));
}

// Sleeps until `at` on CLOCK_MONOTONIC; the last stretch spins so a burst
// copy or a note leaves within a few microseconds of its time.
void sleep_precisely_until(Nanos at) {
  constexpr Nanos kSpin = 150'000;
  const Nanos coarse = at - kSpin;
  if (monotonic_ns() < coarse) {
    sleep_until_ns(coarse);
  }
  while (monotonic_ns() < at) {
  }
}

}  // namespace

MidiSession::Sender::Sender(const MidiConfig& c)
    : dedupe(media::jmid::BurstDeduper::Config{c.dedupe_expiry_ns, 4096,
                                               std::max(1, c.accept_copies)}),
      clock(c.latency_ns) {}

Nanos MidiSession::Sender::play_time(std::int64_t ts) {
  // The offset estimate only ever drops (a faster packet shows up); an item
  // queued after another must still not play before it, or a journal could
  // overtake the events it summarises and a note could overtake its
  // predecessor on the same channel.
  last_play_ns = std::max(last_play_ns, clock.play_at(ts));
  return last_play_ns;
}

MidiSession::MidiSession(const MidiConfig& config, net::Transport& transport,
                         net::SessionRegistry& registry, net::Discovery& discovery,
                         const Uuid& session, const Uuid& self)
    : config_(config),
      transport_(transport),
      registry_(registry),
      discovery_(discovery),
      session_(session),
      self_(self),
      burst_(config.burst, UuidHash{}(self) ^ static_cast<std::uint64_t>(monotonic_ns())) {
  last_seq_ = 0;
  sub_ = registry_.subscribe(
      {session_, StreamType::kMidi, 0}, [this](const net::ReceivedFrame& rx) { on_frame(rx); },
      net::Delivery::kReceiveThread);
  send_thread_ = std::thread([this] { send_loop(); });
  playout_thread_ = std::thread([this] { playout_loop(); });
}

MidiSession::~MidiSession() {
  stop();
}

void MidiSession::stop() {
  if (!running_.exchange(false)) return;
  registry_.unsubscribe(sub_);
  send_cv_.notify_all();
  rx_cv_.notify_all();
  if (send_thread_.joinable()) send_thread_.join();
  if (playout_thread_.joinable()) playout_thread_.join();
}

void MidiSession::set_handler(MidiHandler handler) {
  std::lock_guard lock(rx_mu_);
  handler_ = std::move(handler);
}

// ---- sending ---------------------------------------------------------------

void MidiSession::send(std::span<const Event> events) {
  if (events.empty()) return;
  const Nanos now = transport_.session_now();
  std::string payload;
  payload.reserve(events.size() * 48);
  {
    std::lock_guard lock(send_mu_);
    for (Event e : events) {
      if (e.ts_ns == 0) e.ts_ns = now;
      e.seq = burst_.next_seq();
      last_seq_ = e.seq;
      sent_state_.apply(e);
      if (protocol::jmid::is_channel_message(e.kind)) used_channels_.set(e.channel);
      if (!payload.empty()) payload.push_back('\n');
      payload += protocol::jmid::to_line(e);
    }
  }
  events_sent_.fetch_add(events.size(), std::memory_order_relaxed);
  // One packet holds what fits in a datagram; a long chord or SysEx run splits.
  std::size_t start = 0;
  while (start < payload.size()) {
    std::size_t end = payload.size();
    if (end - start > protocol::kDefaultMaxPayload) {
      end = payload.rfind('\n', start + protocol::kDefaultMaxPayload);
      if (end == std::string::npos || end <= start) end = start + protocol::kDefaultMaxPayload;
    }
    enqueue(std::make_shared<const std::string>(payload.substr(start, end - start)),
            MidiLineClass::kEvents, now, true);
    start = end + (end < payload.size() && payload[end] == '\n' ? 1 : 0);
  }
}

void MidiSession::enqueue(std::shared_ptr<const std::string> payload, MidiLineClass cls, Nanos now,
                          bool burst) {
  std::array<media::jmid::ScheduledCopy, media::jmid::kMaxBurst> copies{};
  std::size_t n = 1;
  {
    std::lock_guard lock(send_mu_);
    if (burst) {
      n = burst_.schedule(now, copies);
    } else {
      copies[0] = {now, 0, 1};
    }
    for (std::size_t i = 0; i < n; ++i) {
      outgoing_.push_back({copies[i].send_at_ns, order_++, payload,
                           message_kind(cls, copies[i].copy, copies[i].k)});
      std::push_heap(outgoing_.begin(), outgoing_.end(), [](const Outgoing& a, const Outgoing& b) {
        return heap_later(a.at, a.order, b.at, b.order);
      });
    }
  }
  send_cv_.notify_one();
}

void MidiSession::transmit(const Outgoing& o) {
  net::SendOptions opts;
  opts.session = session_;
  opts.topic = kMidiTopic;
  opts.kind = o.kind;
  opts.format = protocol::FormatType::kCompactJsonl;
  const std::span<const std::uint8_t> bytes(
      reinterpret_cast<const std::uint8_t*>(o.payload->data()), o.payload->size());
  for (const auto& route : discovery_.routes()) {
    if (transport_.send(opts, bytes, route.address)) {
      packets_sent_.fetch_add(1, std::memory_order_relaxed);
      bytes_sent_.fetch_add(protocol::encoded_size(bytes.size()), std::memory_order_relaxed);
    }
  }
}

void MidiSession::send_journal(Nanos now) {
  std::vector<std::string> lines;
  {
    std::lock_guard lock(send_mu_);
    for (int ch = 0; ch < 16; ++ch) {
      // Channels ever used are journalled even when back to default, so a
      // receiver that missed the last note off still learns the note is off.
      if (!used_channels_.test(static_cast<std::size_t>(ch))) continue;
      JournalLine j;
      j.channel = static_cast<std::uint8_t>(ch);
      j.upto_seq = last_seq_;
      j.ts_ns = now;
      j.state = sent_state_.channel(ch);
      lines.push_back(protocol::jmid::to_line(j));
    }
  }
  // Pack whole lines into datagrams. A line longer than a datagram (a channel
  // with ~100 notes held and every controller set) cannot go and is counted.
  std::string payload;
  auto flush = [&] {
    if (payload.empty()) return;
    transmit({now, 0, std::make_shared<const std::string>(std::move(payload)),
              message_kind(MidiLineClass::kJournal, 0, 1)});
    payload.clear();
  };
  for (const auto& line : lines) {
    if (line.size() > protocol::kDefaultMaxPayload) {
      journal_oversize_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (payload.size() + 1 + line.size() > protocol::kDefaultMaxPayload) flush();
    if (!payload.empty()) payload.push_back('\n');
    payload += line;
    journal_sent_.fetch_add(1, std::memory_order_relaxed);
  }
  flush();
}

void MidiSession::send_feedback(Nanos now) {
  // Tell each sender the packet loss we see on its MIDI stream since last time.
  const auto streams = transport_.stream_stats();
  std::lock_guard lock(rx_mu_);
  for (auto& [id, s] : senders_) {
    std::uint64_t received = 0, lost = 0;
    for (const auto& st : streams) {
      if (st.topic == kMidiTopic && st.session == session_ && discovery_.peer_at(st.from) == id) {
        received += st.counts.received;
        lost += st.counts.lost;
      }
    }
    const std::uint64_t d_rx = received - std::min(received, s->fb_received);
    const std::uint64_t d_lost = lost - std::min(lost, s->fb_lost);
    // Too few frames to say anything yet: keep counting from the same
    // baseline, so a slow stream reports over a longer window instead of never.
    if (d_rx + d_lost < kMinFeedbackFrames) continue;
    s->fb_received = received;
    s->fb_lost = lost;
    protocol::jmid::Feedback fb{static_cast<double>(d_lost) / static_cast<double>(d_rx + d_lost),
                                d_rx, d_lost};
    const auto line = protocol::jmid::to_line(fb);
    net::SendOptions opts;
    opts.session = session_;
    opts.topic = kMidiTopic;
    opts.kind = message_kind(MidiLineClass::kFeedback, 0, 1);
    opts.format = protocol::FormatType::kCompactJsonl;
    if (auto route = discovery_.peer(id)) {
      (void)transport_.send(opts, {reinterpret_cast<const std::uint8_t*>(line.data()), line.size()},
                            route->address);
    }
  }
  (void)now;
}

void MidiSession::send_loop() {
  // Copies must leave on time and the thread spins briefly before each one:
  // real-time priority keeps busy normal threads from delaying it.
  realtime_ = platform::make_current_thread_realtime();
  Nanos next_journal = monotonic_ns() + config_.journal_interval_ns;
  Nanos next_feedback = monotonic_ns() + config_.feedback_interval_ns;
  std::vector<Outgoing> due;
  while (running_.load()) {
    Nanos wake = std::min(next_journal, next_feedback);
    {
      std::unique_lock lock(send_mu_);
      if (!outgoing_.empty()) wake = std::min(wake, outgoing_.front().at);
      const Nanos now = monotonic_ns();
      if (wake - now > 300'000) {
        // Coarse wait; new work (notify) wakes us early.
        send_cv_.wait_until(lock, steady_at(wake - 200'000));
        continue;
      }
    }
    sleep_precisely_until(wake);
    const Nanos now = monotonic_ns();
    {
      std::lock_guard lock(send_mu_);
      auto later = [](const Outgoing& a, const Outgoing& b) {
        return heap_later(a.at, a.order, b.at, b.order);
      };
      while (!outgoing_.empty() && outgoing_.front().at <= now) {
        std::pop_heap(outgoing_.begin(), outgoing_.end(), later);
        due.push_back(std::move(outgoing_.back()));
        outgoing_.pop_back();
      }
    }
    for (const auto& o : due) transmit(o);
    due.clear();
    if (now >= next_journal) {
      send_journal(now);
      next_journal = now + config_.journal_interval_ns;
    }
    if (now >= next_feedback) {
      send_feedback(now);
      next_feedback = now + config_.feedback_interval_ns;
    }
  }
}

void MidiSession::release_sent_notes(Nanos timeout_ns) {
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
  }
  if (offs.empty()) return;
  notes_released_on_stop_.fetch_add(offs.size(), std::memory_order_relaxed);
  send(offs);  // burst like any note
  const Nanos deadline = monotonic_ns() + timeout_ns;
  while (monotonic_ns() < deadline) {
    {
      std::lock_guard lock(send_mu_);
      if (outgoing_.empty()) break;
    }
    sleep_until_ns(monotonic_ns() + 200'000);
  }
  // The last copies leave within a few microseconds of their time; let the
  // socket take them before the caller says bye.
  sleep_until_ns(monotonic_ns() + 1'000'000);
}

void MidiSession::peer_gone(const Uuid& id) {
  {
    std::lock_guard lock(rx_mu_);
    auto it = senders_.find(id);
    if (it == senders_.end()) return;
    // After whatever of it is queued still: a note on that is on its way
    // must not sound after the release.
    const Nanos at = std::max(monotonic_ns(), it->second->last_play_ns);
    queue_.push(at, Due{id, monotonic_ns(), Release{}});
  }
  rx_cv_.notify_one();
}

// ---- receiving ---------------------------------------------------------------

// Playout thread, rx_mu_ held: note offs for what `s` holds, pedal ups
// where it held the pedal and nobody else does; then `s` is forgotten.
void MidiSession::release(Sender& s, const Due& d, Nanos at, Nanos now,
                          std::vector<MidiDelivery>& out) {
  std::array<bool, 16> pedal{};
  for (int ch = 0; ch < 16; ++ch)
    pedal[static_cast<std::size_t>(ch)] = s.state.channel(ch).cc[64] >= 64;
  for (const auto& off : s.state.release_all()) {
    out.push_back({off, d.from, d.received_ns, at, now, false, true});
    ++release_events_;
  }
  for (int ch = 0; ch < 16; ++ch) {
    if (!pedal[static_cast<std::size_t>(ch)]) continue;
    bool held_by_other = false;
    for (const auto& [id, other] : senders_)
      if (other.get() != &s && other->state.channel(ch).cc[64] >= 64) held_by_other = true;
    if (held_by_other) continue;
    Event up;
    up.kind = protocol::jmid::Kind::kControlChange;
    up.channel = static_cast<std::uint8_t>(ch);
    up.data1 = 64;
    up.data2 = 0;
    out.push_back({up, d.from, d.received_ns, at, now, false, true});
    ++release_events_;
  }
  ++senders_released_;
  senders_.erase(d.from);  // bounded: a peer that went away keeps no state here
}

MidiSession::Sender& MidiSession::sender_for(const Uuid& id) {
  auto it = senders_.find(id);
  if (it == senders_.end()) {
    it = senders_.emplace(id, std::make_unique<Sender>(config_)).first;
    it->second->id = id;
    it->second->stats.id = id;
  }
  return *it->second;
}

void MidiSession::on_frame(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;  // not (yet) a known peer of this session
  const auto kind = rx.frame.header.message_kind;
  const auto cls = static_cast<MidiLineClass>(kind & 0xF);
  const auto k = static_cast<std::uint8_t>((kind >> 8) & 0xF);
  const std::string_view text(reinterpret_cast<const char*>(rx.frame.payload.data()),
                              rx.frame.payload.size());

  if (cls == MidiLineClass::kFeedback) {
    auto line = protocol::jmid::parse_any(text);
    if (!line || !std::holds_alternative<protocol::jmid::Feedback>(*line)) return;
    const double loss = std::get<protocol::jmid::Feedback>(*line).loss;
    std::lock_guard lock(send_mu_);
    feedback_[*from] = {loss, rx.rx_ns};
    double worst = 0;  // the burst size must serve the worst receiver heard from lately
    for (auto it = feedback_.begin(); it != feedback_.end();) {
      if (rx.rx_ns - it->second.second > kFeedbackValidIntervals * config_.feedback_interval_ns) {
        it = feedback_.erase(it);
      } else {
        worst = std::max(worst, it->second.first);
        ++it;
      }
    }
    burst_.on_feedback(worst);
    return;
  }

  bool notify = false;
  {
    std::lock_guard lock(rx_mu_);
    Sender& s = sender_for(*from);
    s.last_from = rx.from;
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t nl = text.find('\n', pos);
      if (nl == std::string_view::npos) nl = text.size();
      const std::string_view line_text = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (line_text.empty()) continue;
      auto line = protocol::jmid::parse_any(line_text);
      if (!line) {
        ++parse_errors_;
        continue;
      }
      if (auto* e = std::get_if<Event>(&*line)) {
        ++s.stats.copies;
        const auto verdict = s.dedupe.on_copy(e->seq, k == 0 ? 1 : k, rx.rx_ns);
        if (verdict != media::jmid::BurstDeduper::Verdict::kDeliver) continue;
        s.clock.observe(e->ts_ns, rx.rx_ns);
        queue_.push(s.play_time(e->ts_ns), Due{*from, rx.rx_ns, *e});
        notify = true;
      } else if (auto* j = std::get_if<JournalLine>(&*line)) {
        s.clock.observe(j->ts_ns, rx.rx_ns);
        queue_.push(s.play_time(j->ts_ns), Due{*from, rx.rx_ns, *j});
        notify = true;
      }
    }
  }
  if (notify) rx_cv_.notify_one();
}

void MidiSession::playout_loop() {
  platform::make_current_thread_realtime();
  std::vector<std::pair<Nanos, Due>> due;
  while (running_.load()) {
    Nanos next = 0;
    {
      std::unique_lock lock(rx_mu_);
      const auto when = queue_.next_due();
      if (!when) {
        rx_cv_.wait_for(lock, std::chrono::milliseconds(20));
        continue;
      }
      next = *when - config_.handler_lead_ns;
      if (next - monotonic_ns() > 300'000) {
        rx_cv_.wait_until(lock, steady_at(next - 200'000));
        continue;
      }
    }
    sleep_precisely_until(next);
    const Nanos now = monotonic_ns();
    MidiHandler handler;
    std::vector<MidiDelivery> out;
    {
      std::lock_guard lock(rx_mu_);
      queue_.pop_due(now + config_.handler_lead_ns, due);
      handler = handler_;
      for (auto& [at, d] : due) {
        Sender& s = sender_for(d.from);
        if (auto* e = std::get_if<Event>(&d.item)) {
          // Per channel, events play in order. One that shows up after a newer
          // event of its channel has played (a packet held up for tens of ms)
          // is too late to matter musically and would play out of order: drop
          // it; the journal restores whatever state it carried. Likewise when a
          // journal already covered it: playing it now would undo the repair.
          auto& newest =
              s.newest_played[protocol::jmid::is_channel_message(e->kind) ? e->channel : 16];
          if (e->seq < newest || !s.state.apply(*e)) {
            ++s.stats.stale;
            continue;
          }
          newest = e->seq;
          ++s.stats.delivered;
          if (now - config_.handler_lead_ns - at > 1'000'000) ++s.stats.late;
          out.push_back({*e, d.from, d.received_ns, at, now, false});
        } else if (auto* j = std::get_if<JournalLine>(&d.item)) {
          for (const auto& fix : s.state.repair(*j)) {
            ++s.stats.repairs;
            out.push_back({fix, d.from, d.received_ns, at, now, true});
          }
        } else {
          release(s, d, at, now, out);
        }
      }
      due.clear();
    }
    if (handler) {
      for (auto& d : out) {
        d.played_ns = monotonic_ns();
        handler(d);
      }
    }
  }
}

protocol::jmid::ChannelState MidiSession::state_from(const Uuid& peer, int channel) const {
  std::lock_guard lock(rx_mu_);
  auto it = senders_.find(peer);
  return it == senders_.end() ? protocol::jmid::ChannelState{} : it->second->state.channel(channel);
}

protocol::jmid::ChannelState MidiSession::sent_state(int channel) const {
  std::lock_guard lock(send_mu_);
  return sent_state_.channel(channel);
}

MidiStats MidiSession::stats() const {
  MidiStats st;
  st.events_sent = events_sent_.load();
  st.packets_sent = packets_sent_.load();
  st.bytes_sent = bytes_sent_.load();
  st.journal_lines_sent = journal_sent_.load();
  st.journal_lines_oversize = journal_oversize_.load();
  {
    std::lock_guard lock(send_mu_);
    st.k = burst_.k();
    st.realtime = realtime_.load();
  }
  std::lock_guard lock(rx_mu_);
  st.parse_errors = parse_errors_;
  st.release_events = release_events_;
  st.senders_released = senders_released_;
  st.notes_released_on_stop = notes_released_on_stop_.load();
  for (const auto& [id, s] : senders_) {
    MidiSenderStats x = s->stats;
    const auto& d = s->dedupe.stats();
    x.duplicates = d.duplicates;
    x.too_old = d.too_old;
    x.copy_loss = s->dedupe.copy_loss_estimate();
    x.held_notes = s->state.held_notes();
    st.senders.push_back(x);
  }
  return st;
}

}  // namespace jamnet
