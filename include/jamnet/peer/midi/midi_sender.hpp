// MIDI send side: events become JMID payload lines, each burst k times at
// the instants BurstSender schedules; the recovery journal of what we sent
// goes out every journal interval; receivers' loss reports set k. A send
// thread (SCHED_FIFO where allowed) releases each copy at its instant.
//
// Real time: one wake of the send thread allocates nothing in steady state.
// Routes come from discovery through the control thread (refresh_routes)
// into a buffer reserved up front; journal lines are formatted into reused
// buffers; payloads the thread is done with are handed back to the next
// send() call to free. What cannot be avoided is counted (rt_allocs).
#pragma once

#include <array>
#include <atomic>
#include <bitset>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/media/jmid/state_tracker.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/peer/midi/midi_thread.hpp"
#include "jamnet/peer/midi/midi_types.hpp"
#include "jamnet/protocol/jmid_journal.hpp"

namespace jamnet::midi {

class MidiSender {
 public:
  static constexpr std::size_t kMaxRoutes = 64;     // destinations a wake sends to unreserved
  static constexpr std::size_t kBurstCopies = 256;  // copies one wake releases unreserved

  MidiSender(const MidiConfig& config, net::Transport& transport, net::Discovery& discovery,
             const Uuid& session, const Uuid& self);
  ~MidiSender() { stop(); }
  MidiSender(const MidiSender&) = delete;
  MidiSender& operator=(const MidiSender&) = delete;

  // Starts the send thread (SCHED_FIFO where allowed); stop() is idempotent.
  void start() {
    thread_.start([this] { run(); });
  }
  void stop() { thread_.stop(cv_); }

  // Stamps ts (session time now, unless ts_ns is already set) and seq, and
  // bursts the events to every peer. Events sent in one call share a packet.
  void send(std::span<const protocol::jmid::Event> events);
  // Note offs (and pedal ups) for what we hold, burst like notes; waits (at
  // most timeout_ns) until every copy has left.
  void release_sent_notes(Nanos timeout_ns);
  // A receiver's loss report on our stream: the burst size follows the worst.
  void on_feedback(const net::ReceivedFrame& rx);
  // Discovery's routes, for the send thread (control thread, and each send()).
  void refresh_routes();

  protocol::jmid::ChannelState sent_state(int channel) const;
  void add_stats(MidiStats& st) const;

 private:
  struct Outgoing {
    Nanos at;
    std::uint64_t order;
    std::shared_ptr<const std::string> payload;
    std::uint16_t kind;
  };
  void run();
  void enqueue(std::shared_ptr<const std::string> payload, Nanos now);
  void take_due(Nanos now);
  void transmit(std::span<const std::uint8_t> bytes, std::uint16_t kind);
  void send_journal(Nanos now);

  MidiConfig config_;
  net::Transport& transport_;
  net::Discovery& discovery_;
  Uuid session_;
  std::atomic<bool> realtime_{false};
  MidiThread thread_;

  mutable std::mutex mu_;  // everything below up to the thread's own buffers
  std::condition_variable cv_;
  media::jmid::BurstSender burst_;
  media::jmid::StateTracker sent_state_;
  std::bitset<16> used_channels_;
  std::uint64_t last_seq_ = 0;
  std::vector<Outgoing> outgoing_;  // min-heap on (at, order)
  std::uint64_t order_ = 0;
  std::unordered_map<Uuid, std::pair<double, Nanos>, UuidHash> feedback_;  // peer -> (loss, when)
  std::vector<net::Endpoint> routes_;  // written by refresh_routes
  std::uint64_t routes_version_ = 0;
  // Payloads the send thread has sent, freed by the next send() (off the
  // real-time thread).
  std::vector<std::shared_ptr<const std::string>> spent_;

  // The send thread's own buffers.
  std::vector<Outgoing> due_;
  std::vector<net::Endpoint> send_routes_;
  std::uint64_t send_routes_version_ = 0;
  std::array<protocol::jmid::JournalLine, 16> journal_lines_;  // copied under mu_, then formatted
  std::array<char, protocol::jmid::kMaxJournalLineBytes> journal_line_{};
  std::string journal_payload_;

  std::atomic<std::uint64_t> events_sent_{0}, packets_sent_{0}, bytes_sent_{0}, journal_sent_{0},
      journal_oversize_{0}, notes_released_on_stop_{0}, rt_allocs_{0};
};

}  // namespace jamnet::midi
