// MIDI receive side: a MIDI frame's lines (events and journal) are parsed on
// the transport's receive thread and handed to the playout, which owns all
// per-peer state (dedupe, clock, queue). Also the loss report each sender
// gets back from us (feedback lines), from the control thread.
//
// Threads: on_frame on the receive thread (no lock, no per-peer state);
// report_loss and add_stats on the control and app threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <unordered_map>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
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
  // Control thread, every few ms: each sender's packet loss since the last
  // report, once per feedback interval.
  void report_loss(Nanos now);
  // Parse errors and lines the playout had no room for.
  void add_stats(MidiStats& st) const;

 private:
  void send_loss_reports();

  MidiConfig config_;
  net::Transport& transport_;
  net::Discovery& discovery_;
  Uuid session_;
  MidiPlayout& playout_;
  std::atomic<std::uint64_t> parse_errors_{0};

  // Control thread only: per peer, the transport's counts at its last report.
  struct Baseline {
    std::uint64_t received = 0, lost = 0;
  };
  std::unordered_map<Uuid, Baseline, UuidHash> baselines_;
  Nanos next_report_ = 0;
};

}  // namespace jamnet::midi
