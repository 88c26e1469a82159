// MIDI playout: the one owner of everything we keep per sending peer. The
// receive thread hands each parsed line over (push_received); the playout
// thread dedupes burst copies, maps sender time to ours, queues each item
// for its play time, then plays it: events in order per channel (a late one
// is dropped as stale), journal lines repairing the state they summarise,
// and, when a peer went away (peer_gone), note offs for what it held. The
// handler is called on the playout thread.
//
// Real time: no lock anywhere between the threads. Hand-offs go through a
// bounded lock-free queue and a semaphore post; statistics and state are
// copied out by the playout thread on a reader's request (SnapshotRequests);
// the handler is a Published value. One wake allocates nothing in steady
// state: the queue, the due list and the delivery list are reserved up
// front, and growing past them is counted (rt_allocs). Exceptions: the first
// item from a new peer creates its state, and a release forgets it (frees).
//
// Tests drive play_due() with their own clock and never start the thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <variant>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/mpsc_queue.hpp"
#include "jamnet/core/published.hpp"
#include "jamnet/core/snapshot_requests.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/core/wakeup.hpp"
#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/media/jmid/playout.hpp"
#include "jamnet/media/jmid/state_tracker.hpp"
#include "jamnet/peer/midi/midi_thread.hpp"
#include "jamnet/peer/midi/midi_types.hpp"

namespace jamnet::midi {

// What the playout thread handles at its time: an event, or a journal line
// (applied at its own play time, so it meets the state its events built).
struct Release {};  // the peer went away: release what it holds
struct Due {
  Uuid from;
  Nanos received_ns = 0;
  std::variant<protocol::jmid::Event, protocol::jmid::JournalLine, Release> item;
};

// What another thread hands the playout thread: an item to schedule as it
// is, a received line to dedupe and clock first, or a peer gone.
struct PlayoutHandoff {
  enum class Kind : std::uint8_t { kScheduled, kReceived, kGone } kind = Kind::kScheduled;
  std::uint8_t k = 1;  // kReceived: the burst size the copy carried
  Nanos at = 0;        // kScheduled: the play time
  Due due;
};

class MidiPlayout {
 public:
  static constexpr std::size_t kMaxQueued = 2048;        // items waiting; more are dropped
  static constexpr std::size_t kInbox = 2048;            // hand-offs the thread has not taken yet
  static constexpr std::size_t kMaxPeers = 64;           // peers with state here; more are dropped
  static constexpr std::size_t kBurstItems = 256;        // due items one wake takes unreserved
  static constexpr std::size_t kBurstDeliveries = 1024;  // handler calls one wake makes unreserved
  // After a peer's release, its copies still on the way for this long are
  // dropped (counted), not taken as a new peer whose notes nobody releases.
  static constexpr Nanos kReleasedHoldNs = 250'000'000;
  using Clock = Nanos (*)() noexcept;

  explicit MidiPlayout(const MidiConfig& config, Clock clock = &monotonic_ns);
  ~MidiPlayout() { stop(); }
  MidiPlayout(const MidiPlayout&) = delete;
  MidiPlayout& operator=(const MidiPlayout&) = delete;

  // Starts the playout thread (SCHED_FIFO where allowed); stop() is idempotent.
  void start();
  void stop();

  // Not from inside a handler: on return the old handler has stopped running.
  void set_handler(MidiHandler handler);
  // Receive thread: one line of a MIDI frame from `from` (a burst copy of
  // an event that carried burst size k, or a journal line). False (counted)
  // when the hand-off queue is full.
  bool push_received(const Uuid& from, Nanos rx_ns, std::uint8_t k,
                     const std::variant<protocol::jmid::Event, protocol::jmid::JournalLine>& line);
  // Any thread: `d` plays at `at` as it is (no dedupe, no clock). False
  // (counted) when the hand-off queue is full.
  bool push(Nanos at, Due d);
  // Control thread: `id` left, timed out or restarted. Its release plays
  // after everything of it already queued; then its state is forgotten.
  void peer_gone(const Uuid& id);
  // One wake: what was handed over is taken, and every item due by `now`
  // (plus the handler lead) goes to the handler. Returns the deliveries
  // made. One caller at a time (the thread, or a test without it).
  std::size_t play_due(Nanos now);

  protocol::jmid::ChannelState state_from(const Uuid& peer, int channel) const;
  // Fills in the playout's counts: per peer (matched by id, or appended) and overall.
  void add_stats(MidiStats& st) const;

 private:
  struct Source {
    media::jmid::BurstDeduper dedupe;
    media::jmid::PlayoutClock clock;
    media::jmid::StateTracker state;
    MidiSenderStats stats;                          // copies, delivered, repairs, late, stale
    std::array<std::uint64_t, 17> newest_played{};  // per channel, [16]: system messages
    Nanos last_play_ns = 0;
    explicit Source(const MidiConfig& c);
    Nanos play_time(std::int64_t sender_ts_ns);  // never earlier than the previous item's
  };
  struct PeerSnapshot {
    MidiSenderStats stats;
    std::array<protocol::jmid::ChannelState, 16> channels;
  };
  struct Snapshot {
    std::vector<PeerSnapshot> peers;  // reserved for kMaxPeers
    std::uint64_t release_events = 0, senders_released = 0, after_release = 0, bad_time = 0;
  };

  using Handoff = PlayoutHandoff;
  void run();
  bool hand_over(const Handoff& h);
  void take_handoffs();
  void accept(Handoff& h);
  void enqueue(Nanos at, Due&& d);
  Source* source_for(const Uuid& id);  // made if new (accept only)
  Source* find_source(const Uuid& id);
  bool released_lately(const Uuid& id, Nanos now) const;
  void play_event(Source& s, const Due& d, const protocol::jmid::Event& e, Nanos at, Nanos now);
  void play_repair(Source& s, const Due& d, const protocol::jmid::JournalLine& j, Nanos at,
                   Nanos now);
  void release(Source& s, const Due& d, Nanos at, Nanos now);
  void deliver(const MidiDelivery& d);
  void publish_snapshot() const;  // snapshot_ from the thread's state
  template <class Read>
  void read_snapshot(Read&& read) const;

  MidiConfig config_;
  Clock clock_;
  MidiThread thread_;
  Wakeup wake_;
  MpscQueue<Handoff> inbox_{kInbox};
  Published<MidiHandler> handler_;
  std::atomic<std::uint64_t> queue_full_{0}, peers_full_{0}, rt_allocs_{0};
  std::atomic<bool> realtime_{false};

  // The playing thread's own (the caller's while it does not run).
  media::jmid::PlayoutQueue<Due> queue_;
  std::unordered_map<Uuid, std::unique_ptr<Source>, UuidHash> sources_;
  std::uint64_t release_events_ = 0, senders_released_ = 0, after_release_ = 0, bad_time_ = 0;
  struct Released {
    Uuid id;
    Nanos at = 0;
  };
  std::array<Released, kMaxPeers> released_{};  // ring: the latest releases
  std::size_t released_next_ = 0;
  std::vector<std::pair<Nanos, Due>> due_;
  std::vector<MidiDelivery> out_;
  std::vector<protocol::jmid::Event> fixes_;
  Handoff taken_;  // one hand-off at a time, off the stack (a journal line is large)

  // Readers' copies, made by the thread on request.
  SnapshotRequests requests_;
  mutable Snapshot snapshot_;
};

}  // namespace jamnet::midi
