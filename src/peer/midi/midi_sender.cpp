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

bool outgoing_later(Nanos a_at, std::uint64_t a_order, Nanos b_at, std::uint64_t b_order) {
  return a_at != b_at ? a_at > b_at : a_order > b_order;
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
  spent_.reserve(kBurstCopies);
  due_.reserve(kBurstCopies);
  routes_.reserve(kMaxRoutes);
  send_routes_.reserve(kMaxRoutes);
  journal_payload_.reserve(protocol::kDefaultMaxPayload);
}

void MidiSender::refresh_routes() {
  const auto routes = discovery_.routes();
  std::lock_guard lock(mu_);
  const bool same =
      std::equal(routes.begin(), routes.end(), routes_.begin(), routes_.end(),
                 [](const auto& r, const net::Endpoint& ep) { return r.address == ep; });
  if (same) return;
  routes_.clear();
  for (const auto& r : routes) routes_.push_back(r.address);
  ++routes_version_;
}

void MidiSender::send(std::span<const Event> events) {
  if (events.empty()) return;
  refresh_routes();  // a peer discovered since the last control tick hears this too
  const Nanos now = transport_.session_now();
  std::string payload;
  payload.reserve(events.size() * 48);
  {
    std::lock_guard lock(mu_);
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
    enqueue(std::make_shared<const std::string>(payload.substr(start, end - start)), now);
    start = end + (end < payload.size() && payload[end] == '\n' ? 1 : 0);
  }
}

void MidiSender::enqueue(std::shared_ptr<const std::string> payload, Nanos now) {
  std::array<media::jmid::ScheduledCopy, media::jmid::kMaxBurst> copies{};
  {
    std::lock_guard lock(mu_);
    spent_.clear();  // what the send thread is done with is freed here, off its thread
    const std::size_t n = burst_.schedule(now, copies);
    for (std::size_t i = 0; i < n; ++i) {
      outgoing_.push_back({copies[i].send_at_ns, order_++, payload,
                           midi_message_kind(MidiLineClass::kEvents, copies[i].copy, copies[i].k)});
      std::push_heap(outgoing_.begin(), outgoing_.end(), [](const Outgoing& a, const Outgoing& b) {
        return outgoing_later(a.at, a.order, b.at, b.order);
      });
    }
  }
  cv_.notify_one();
}

void MidiSender::on_feedback(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;  // not (yet) a known peer of this session
  const std::string_view text(reinterpret_cast<const char*>(rx.frame.payload.data()),
                              rx.frame.payload.size());
  auto line = protocol::jmid::parse_any(text);
  if (!line || !std::holds_alternative<protocol::jmid::Feedback>(*line)) return;
  const double loss = std::get<protocol::jmid::Feedback>(*line).loss;
  std::lock_guard lock(mu_);
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
}

void MidiSender::run() {
  // Copies must leave on time and the thread spins briefly before each one:
  // real-time priority keeps busy normal threads from delaying it.
  realtime_ = platform::make_current_thread_realtime();
  Nanos next_journal = monotonic_ns() + config_.journal_interval_ns;
  while (thread_.running()) {
    Nanos wake = next_journal;
    {
      std::unique_lock lock(mu_);
      if (!outgoing_.empty()) wake = std::min(wake, outgoing_.front().at);
      if (wake - monotonic_ns() > kCoarseWaitNs) {
        // Coarse wait; new work (notify) wakes us early.
        cv_.wait_until(lock, steady_at(wake - kCoarseMarginNs));
        continue;
      }
    }
    sleep_precisely_until(wake);
    const rt::Scope scope(rt::Work::kMidiSend);
    const Nanos now = monotonic_ns();
    take_due(now);
    for (const auto& o : due_) {
      transmit({reinterpret_cast<const std::uint8_t*>(o.payload->data()), o.payload->size()},
               o.kind);
    }
    if (now >= next_journal) {
      send_journal(now);
      next_journal = now + config_.journal_interval_ns;
    }
  }
}

// Send thread: the copies due by `now` into due_, and the routes if they changed.
void MidiSender::take_due(Nanos now) {
  std::lock_guard lock(mu_);
  // Last wake's payloads go to the next send() to free.
  for (auto& o : due_) {
    if (spent_.size() == spent_.capacity()) {
      rt_allocs_.fetch_add(1, std::memory_order_relaxed);  // may free here
      continue;
    }
    spent_.push_back(std::move(o.payload));
  }
  due_.clear();
  if (send_routes_version_ != routes_version_) {
    if (routes_.size() > send_routes_.capacity())
      rt_allocs_.fetch_add(1, std::memory_order_relaxed);
    send_routes_.assign(routes_.begin(), routes_.end());
    send_routes_version_ = routes_version_;
  }
  auto later = [](const Outgoing& a, const Outgoing& b) {
    return outgoing_later(a.at, a.order, b.at, b.order);
  };
  while (!outgoing_.empty() && outgoing_.front().at <= now) {
    std::pop_heap(outgoing_.begin(), outgoing_.end(), later);
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
  for (const auto& to : send_routes_) {
    if (transport_.send(opts, bytes, to)) {
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
  std::size_t lines = 0;
  {
    std::lock_guard lock(mu_);
    for (int ch = 0; ch < 16; ++ch) {
      // Channels ever used are journalled even when back to default, so a
      // receiver that missed the last note off still learns the note is off.
      if (!used_channels_.test(static_cast<std::size_t>(ch))) continue;
      JournalLine& j = journal_lines_[lines++];
      j.channel = static_cast<std::uint8_t>(ch);
      j.upto_seq = last_seq_;
      j.ts_ns = now;
      j.state = sent_state_.channel(ch);
    }
  }
  for (std::size_t i = 0; i < lines; ++i) {
    const std::size_t n = protocol::jmid::format_journal(journal_lines_[i], journal_line_);
    if (n > protocol::kDefaultMaxPayload) {
      journal_oversize_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (journal_payload_.size() + 1 + n > protocol::kDefaultMaxPayload) flush();
    if (!journal_payload_.empty()) journal_payload_.push_back('\n');
    journal_payload_.append(journal_line_.data(), n);
    journal_sent_.fetch_add(1, std::memory_order_relaxed);
  }
  flush();
}

void MidiSender::release_sent_notes(Nanos timeout_ns) {
  std::vector<Event> offs;
  {
    std::lock_guard lock(mu_);
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
      std::lock_guard lock(mu_);
      if (outgoing_.empty()) break;
    }
    sleep_until_ns(monotonic_ns() + 200'000);
  }
  // The last copies leave within a few microseconds of their time; let the
  // socket take them before the caller says bye.
  sleep_until_ns(monotonic_ns() + 1'000'000);
}

protocol::jmid::ChannelState MidiSender::sent_state(int channel) const {
  std::lock_guard lock(mu_);
  return sent_state_.channel(channel);
}

void MidiSender::add_stats(MidiStats& st) const {
  st.events_sent = events_sent_.load();
  st.packets_sent = packets_sent_.load();
  st.bytes_sent = bytes_sent_.load();
  st.journal_lines_sent = journal_sent_.load();
  st.journal_lines_oversize = journal_oversize_.load();
  st.notes_released_on_stop = notes_released_on_stop_.load();
  st.rt_allocs += rt_allocs_.load(std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  st.k = burst_.k();
  st.realtime = realtime_.load();
}

}  // namespace jamnet::midi
