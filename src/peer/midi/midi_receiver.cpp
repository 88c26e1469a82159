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

MidiReceiver::MidiReceiver(const MidiConfig& config, net::Transport& transport,
                           net::Discovery& discovery, const Uuid& session, MidiPlayout& playout)
    : config_(config),
      transport_(transport),
      discovery_(discovery),
      session_(session),
      playout_(playout),
      next_report_(monotonic_ns() + config.feedback_interval_ns) {}

void MidiReceiver::on_frame(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;  // not (yet) a known peer of this session
  const auto k = static_cast<std::uint8_t>((rx.frame.header.message_kind >> 8) & 0xF);
  const std::string_view text(reinterpret_cast<const char*>(rx.frame.payload.data()),
                              rx.frame.payload.size());
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line_text = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line_text.empty()) continue;
    auto line = protocol::jmid::parse_any(line_text);
    if (!line) {
      parse_errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // Full hand-off queue: dropped and counted by the playout.
    if (const auto* e = std::get_if<Event>(&*line)) {
      (void)playout_.push_received(*from, rx.rx_ns, k, *e);
    } else if (const auto* j = std::get_if<JournalLine>(&*line)) {
      (void)playout_.push_received(*from, rx.rx_ns, k, *j);
    }
  }
}

void MidiReceiver::report_loss(Nanos now) {
  if (now < next_report_) return;
  next_report_ = now + config_.feedback_interval_ns;
  send_loss_reports();
}

void MidiReceiver::send_loss_reports() {
  // Tell each sender the packet loss we see on its MIDI stream since last time.
  struct Counts {
    std::uint64_t received = 0, lost = 0;
  };
  std::unordered_map<Uuid, Counts, UuidHash> per_peer;
  for (const auto& st : transport_.stream_stats()) {
    if (st.topic != kMidiTopic || st.session != session_) continue;
    const auto id = discovery_.peer_at(st.from);
    if (!id) continue;
    per_peer[*id].received += st.counts.received;
    per_peer[*id].lost += st.counts.lost;
  }
  // Bounded: a peer whose stream is gone from the transport keeps no baseline.
  std::erase_if(baselines_, [&](const auto& kv) { return !per_peer.contains(kv.first); });
  for (const auto& [id, c] : per_peer) {
    Baseline& b = baselines_[id];
    const std::uint64_t d_rx = c.received - std::min(c.received, b.received);
    const std::uint64_t d_lost = c.lost - std::min(c.lost, b.lost);
    // Too few frames to say anything yet: keep counting from the same
    // baseline, so a slow stream reports over a longer window instead of never.
    if (d_rx + d_lost < kMinFeedbackFrames) continue;
    b.received = c.received;
    b.lost = c.lost;
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
  st.parse_errors = parse_errors_.load(std::memory_order_relaxed);
}

}  // namespace jamnet::midi
