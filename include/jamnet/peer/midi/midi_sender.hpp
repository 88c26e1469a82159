// MIDI send side: events become JMID payload lines, each burst k times at
// the instants BurstSender schedules; the recovery journal of what we sent
// goes out every journal interval; receivers' loss reports set k. A send
// thread (SCHED_FIFO where allowed) releases each copy at its instant.
//
// Threads and hand-offs (no lock is shared with a real-time thread):
//   send() callers (app threads, serialised among themselves by send_mu_)
//     own the burst scheduler, the sequence numbers and the state of what
//     was sent; each copy goes to the send thread through a lock-free queue
//     and a semaphore post; the journal's channel states through a triple
//     buffer.
//   The send thread releases copies at their instants to discovery's
//     routes (a Published table, read without a lock) and formats the
//     journal into reused buffers. Payloads it is done with go back through
//     a second queue, freed by the next send() off its thread.
//   The receive thread hands receivers' loss reports over through a third
//     queue; the control thread's tick() (or the next send()) applies them.
// One wake of the send thread allocates nothing in steady state; what cannot
// be avoided is counted (rt_allocs).
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/mpsc_queue.hpp"
#include "jamnet/core/triple_buffer.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/core/wakeup.hpp"
#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/media/jmid/state_tracker.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/midi/midi_thread.hpp"
#include "jamnet/peer/midi/midi_types.hpp"
#include "jamnet/protocol/jmid_journal.hpp"

namespace jamnet::midi {

// One burst copy on its way to the send thread, and a receiver's loss
// report on its way from the receive thread.
struct OutgoingCopy {
  Nanos at = 0;
  std::uint64_t order = 0;
  std::shared_ptr<const std::string> payload;
  std::uint16_t kind = 0;
};
struct LossReport {
  Uuid from;
  double loss = 0;
  Nanos rx_ns = 0;
};

class MidiSender {
 public:
  static constexpr std::size_t kBurstCopies = 256;  // copies waiting for their instant, unreserved
  static constexpr std::size_t kHandoffs = 1024;    // copies handed over, not yet taken
  static constexpr std::size_t kFeedbackReports = 64;  // loss reports not yet applied
  static constexpr std::size_t kReporters = 64;        // receivers whose loss reports count

  MidiSender(const MidiConfig& config, net::Transport& transport, net::Discovery& discovery,
             const Uuid& session, const Uuid& self);
  ~MidiSender() { stop(); }
  MidiSender(const MidiSender&) = delete;
  MidiSender& operator=(const MidiSender&) = delete;

  // Starts the send thread (SCHED_FIFO where allowed); stop() is idempotent.
  void start() {
    thread_.start([this] { run(); });
  }
  void stop() { thread_.stop(wake_); }

  // Stamps ts (session time now, unless ts_ns is already set) and seq, and
  // bursts the events to every peer. Events sent in one call share a packet.
  void send(std::span<const protocol::jmid::Event> events);
  // Note offs (and pedal ups) for what we hold, burst like notes; waits (at
  // most timeout_ns) until every copy has left.
  void release_sent_notes(Nanos timeout_ns);
  // Receive thread: a receiver's loss report on our stream (lock-free hand-off).
  void on_feedback(const net::ReceivedFrame& rx);
  // Control thread, every few ms: loss reports received since, applied to k.
  void tick();

  protocol::jmid::ChannelState sent_state(int channel) const;
  void add_stats(MidiStats& st) const;

 private:
  using Outgoing = OutgoingCopy;
  using Report = LossReport;
  // What the journal says, as the send() callers last left it.
  struct JournalState {
    std::array<protocol::jmid::ChannelState, 16> channels;
    std::bitset<16> used;
    std::uint64_t last_seq = 0;
  };

  void run();
  void send_locked(std::span<const protocol::jmid::Event> events);
  void enqueue_locked(std::shared_ptr<const std::string> payload, Nanos now);
  void apply_feedback_locked();
  void take_handoffs();
  void take_due(Nanos now);
  void transmit(std::span<const std::uint8_t> bytes, std::uint16_t kind);
  void send_journal(Nanos now);

  MidiConfig config_;
  net::Transport& transport_;
  net::Discovery& discovery_;
  Uuid session_;
  std::atomic<bool> realtime_{false};
  MidiThread thread_;
  Wakeup wake_;

  // send() callers' (and the control thread's), under send_mu_.
  mutable std::mutex send_mu_;
  media::jmid::BurstSender burst_;
  media::jmid::StateTracker sent_state_;
  JournalState journal_state_;
  std::uint64_t order_ = 0;
  std::unordered_map<Uuid, std::pair<double, Nanos>, UuidHash> feedback_;  // peer -> (loss, when)

  // Hand-offs between the threads.
  MpscQueue<Outgoing> handoffs_{kHandoffs};      // send() -> send thread
  MpscQueue<Outgoing> spent_{kHandoffs};         // send thread -> send(): payloads to free
  MpscQueue<Report> reports_{kFeedbackReports};  // receive thread -> tick()/send()
  TripleBuffer<JournalState> journal_;           // send() -> send thread

  // The send thread's own.
  std::vector<Outgoing> outgoing_;  // min-heap on (at, order)
  std::vector<Outgoing> due_;
  Outgoing taken_;
  std::array<char, protocol::jmid::kMaxJournalLineBytes> journal_line_{};
  std::string journal_payload_;

  std::atomic<std::uint64_t> events_sent_{0}, packets_sent_{0}, bytes_sent_{0}, journal_sent_{0},
      journal_oversize_{0}, notes_released_on_stop_{0}, rt_allocs_{0}, copies_queued_{0},
      copies_done_{0}, handoffs_full_{0}, reports_dropped_{0};
  std::atomic<int> k_{0};
};

}  // namespace jamnet::midi
