#include "jamnet/peer/midi/midi_receiver.hpp"

#include <algorithm>
#include <string_view>

#include "jamnet/protocol/jmid_journal.hpp"

namespace jamnet::midi {

using protocol::jmid::Event;
using protocol::jmid::JournalLine;

namespace {
// Frames a loss report must cover (about one lost frame's worth of resolution at 5%).
constexpr std::uint64_t kMinFeedbackFrames = 20;
}  // namespace

MidiReceiver::Source::Source(const MidiConfig& c)
    : dedupe(media::jmid::BurstDeduper::Config{c.dedupe_expiry_ns, 4096,
                                               std::max(1, c.accept_copies)}),
      clock(c.latency_ns) {}

Nanos MidiReceiver::Source::play_time(std::int64_t ts) {
  // The offset estimate only ever drops (a faster packet shows up); an item
  // queued after another must still not play before it, or a journal could
  // overtake the events it summarises and a note could overtake its
  // predecessor on the same channel.
  last_play_ns = std::max(last_play_ns, clock.play_at(ts));
  return last_play_ns;
}

MidiReceiver::MidiReceiver(const MidiConfig& config, net::Transport& transport,
                           net::Discovery& discovery, const Uuid& session, MidiPlayout& playout)
    : config_(config),
      transport_(transport),
      discovery_(discovery),
      session_(session),
      playout_(playout),
      next_report_(monotonic_ns() + config.feedback_interval_ns) {}

MidiReceiver::Source& MidiReceiver::source_for(const Uuid& id) {
  auto it = sources_.find(id);
  if (it == sources_.end()) it = sources_.emplace(id, std::make_unique<Source>(config_)).first;
  return *it->second;
}

void MidiReceiver::on_frame(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;  // not (yet) a known peer of this session
  const auto k = static_cast<std::uint8_t>((rx.frame.header.message_kind >> 8) & 0xF);
  const std::string_view text(reinterpret_cast<const char*>(rx.frame.payload.data()),
                              rx.frame.payload.size());
  std::lock_guard lock(mu_);
  Source& s = source_for(*from);
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
      ++s.copies;
      const auto verdict = s.dedupe.on_copy(e->seq, k == 0 ? 1 : k, rx.rx_ns);
      if (verdict != media::jmid::BurstDeduper::Verdict::kDeliver) continue;
      s.clock.observe(e->ts_ns, rx.rx_ns);
      playout_.push(s.play_time(e->ts_ns), Due{*from, rx.rx_ns, *e});
    } else if (auto* j = std::get_if<JournalLine>(&*line)) {
      s.clock.observe(j->ts_ns, rx.rx_ns);
      playout_.push(s.play_time(j->ts_ns), Due{*from, rx.rx_ns, *j});
    }
  }
}

void MidiReceiver::peer_gone(const Uuid& id) {
  std::lock_guard lock(mu_);
  auto it = sources_.find(id);
  if (it == sources_.end()) return;
  // After whatever of it is queued still: a note on that is on its way must
  // not sound after the release.
  const Nanos now = monotonic_ns();
  playout_.push(std::max(now, it->second->last_play_ns), Due{id, now, Release{}});
}

void MidiReceiver::forget(const Uuid& id) {
  std::lock_guard lock(mu_);
  sources_.erase(id);  // bounded: a peer that went away keeps no state here
}

void MidiReceiver::report_loss(Nanos now) {
  if (now < next_report_) return;
  next_report_ = now + config_.feedback_interval_ns;
  send_loss_reports();
}

void MidiReceiver::send_loss_reports() {
  // Tell each sender the packet loss we see on its MIDI stream since last time.
  const auto streams = transport_.stream_stats();
  std::lock_guard lock(mu_);
  for (auto& [id, s] : sources_) {
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
    opts.kind = midi_message_kind(MidiLineClass::kFeedback, 0, 1);
    opts.format = protocol::FormatType::kCompactJsonl;
    if (auto route = discovery_.peer(id)) {
      (void)transport_.send(opts, {reinterpret_cast<const std::uint8_t*>(line.data()), line.size()},
                            route->address);
    }
  }
}

void MidiReceiver::add_stats(MidiStats& st) const {
  std::lock_guard lock(mu_);
  st.parse_errors = parse_errors_;
  for (const auto& [id, s] : sources_) {
    MidiSenderStats& x = st.senders.emplace_back();
    x.id = id;
    x.copies = s->copies;
    const auto& d = s->dedupe.stats();
    x.duplicates = d.duplicates;
    x.too_old = d.too_old;
    x.copy_loss = s->dedupe.copy_loss_estimate();
  }
}

}  // namespace jamnet::midi
