// MIDI playout: items the receiver queued wait here for their play time;
// then events play in order per channel (a late one is dropped as stale),
// journal lines repair the state they summarise, and a peer that went away
// has its held notes released. The handler is called on the playout thread.
//
// Real time: one wake (play_due) allocates nothing in steady state. The
// queue, the due list and the delivery list are reserved up front; growing
// past them is counted (rt_allocs). Exceptions: the first item from a new
// peer creates its state, and a release forgets a peer's state (frees).
//
// Tests drive play_due() with their own clock and never start the thread.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <variant>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/uuid.hpp"
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

class MidiPlayout {
 public:
  static constexpr std::size_t kMaxQueued = 2048;        // items waiting; more are dropped
  static constexpr std::size_t kBurstItems = 256;        // due items one wake takes unreserved
  static constexpr std::size_t kBurstDeliveries = 1024;  // handler calls one wake makes unreserved
  using Clock = Nanos (*)() noexcept;
  // Called after a peer's release has played (no lock held): the receiver
  // forgets its per-peer state too.
  using ForgetFn = std::function<void(const Uuid&)>;

  MidiPlayout(const MidiConfig& config, ForgetFn forget, Clock clock = &monotonic_ns);
  ~MidiPlayout() { stop(); }
  MidiPlayout(const MidiPlayout&) = delete;
  MidiPlayout& operator=(const MidiPlayout&) = delete;

  // Starts the playout thread (SCHED_FIFO where allowed); stop() is idempotent.
  void start() {
    thread_.start([this] { run(); });
  }
  void stop() { thread_.stop(cv_); }

  void set_handler(MidiHandler handler);
  // Receive or control thread: `d` plays at `at`. False (counted) when the
  // queue is full.
  bool push(Nanos at, Due d);
  // One wake: every item due by `now` (plus the handler lead) goes to the
  // handler. Returns the deliveries made. One caller at a time (the thread).
  std::size_t play_due(Nanos now);

  protocol::jmid::ChannelState state_from(const Uuid& peer, int channel) const;
  // Fills in the playout's counts: per peer (matched by id, or appended) and overall.
  void add_stats(MidiStats& st) const;

 private:
  struct Source {
    media::jmid::StateTracker state;
    MidiSenderStats stats;                          // delivered, repairs, late, stale
    std::array<std::uint64_t, 17> newest_played{};  // per channel, [16]: system messages
  };
  void run();
  Source& source_for(const Uuid& id);
  void play_event(Source& s, const Due& d, const protocol::jmid::Event& e, Nanos at, Nanos now);
  void play_repair(Source& s, const Due& d, const protocol::jmid::JournalLine& j, Nanos at,
                   Nanos now);
  void release(Source& s, const Due& d, Nanos at, Nanos now);
  void deliver(const MidiDelivery& d);

  MidiConfig config_;
  ForgetFn forget_;
  Clock clock_;
  MidiThread thread_;

  mutable std::mutex mu_;  // everything below up to the thread's own buffers
  std::condition_variable cv_;
  media::jmid::PlayoutQueue<Due> queue_;
  std::unordered_map<Uuid, std::unique_ptr<Source>, UuidHash> sources_;
  // The handler is swapped here and copied as a pointer per wake; the one it
  // replaced is kept until the next swap, so the playout thread never drops
  // the last reference to a handler (which would free it there).
  std::shared_ptr<const MidiHandler> handler_, retired_handler_;
  std::uint64_t release_events_ = 0, senders_released_ = 0, queue_full_ = 0;
  std::atomic<std::uint64_t> rt_allocs_{0};

  // The playing thread's own buffers (only play_due touches them).
  std::vector<std::pair<Nanos, Due>> due_;
  std::vector<MidiDelivery> out_;
  std::vector<protocol::jmid::Event> fixes_;
  std::vector<Uuid> gone_;
};

}  // namespace jamnet::midi
