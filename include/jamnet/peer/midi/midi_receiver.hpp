// MIDI receive side: a MIDI frame's lines (events and journal) are parsed,
// each sender's burst copies deduplicated, its clock observed, and every
// item queued for playout at its play time. Also the loss report each
// sender gets back from us (feedback lines), sent from the control thread.
//
// Threads: on_frame runs on the transport's receive thread; peer_gone,
// forget and report_loss on the control thread (forget: after a release
// played, on the playout thread).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/media/jmid/playout.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/midi/midi_playout.hpp"
#include "jamnet/peer/midi/midi_types.hpp"

namespace jamnet::midi {

class MidiReceiver {
 public:
  MidiReceiver(const MidiConfig& config, net::Transport& transport, net::Discovery& discovery,
               const Uuid& session, MidiPlayout& playout);

  void on_frame(const net::ReceivedFrame& rx);  // an event or journal frame
  // `id` left, timed out or restarted: its release is queued after
  // everything of it already queued.
  void peer_gone(const Uuid& id);
  void forget(const Uuid& id);  // its release has played
  // Control thread, every few ms: each sender's packet loss since the last
  // report, once per feedback interval.
  void report_loss(Nanos now);
  // Per peer: copies, duplicates, too old, copy loss (appended); parse errors.
  void add_stats(MidiStats& st) const;

 private:
  struct Source {
    media::jmid::BurstDeduper dedupe;
    media::jmid::PlayoutClock clock;
    std::uint64_t copies = 0;
    std::uint64_t fb_received = 0, fb_lost = 0;  // transport counts at the last feedback
    Nanos last_play_ns = 0;
    explicit Source(const MidiConfig& c);
    Nanos play_time(std::int64_t sender_ts_ns);  // never earlier than the previous item's
  };
  Source& source_for(const Uuid& id);
  void send_loss_reports();

  MidiConfig config_;
  net::Transport& transport_;
  net::Discovery& discovery_;
  Uuid session_;
  MidiPlayout& playout_;
  Nanos next_report_ = 0;  // control thread only

  mutable std::mutex mu_;
  std::unordered_map<Uuid, std::unique_ptr<Source>, UuidHash> sources_;
  std::uint64_t parse_errors_ = 0;
};

}  // namespace jamnet::midi
