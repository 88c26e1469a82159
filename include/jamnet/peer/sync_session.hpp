// A peer's clock sync and transport: the ClockDriftArbiter and the
// TransportTimeline on the network, plus the JSON control messages of the
// `jamnet transport` command (docs/control.md).
//
// Wire: JSON control messages (protocol/control.hpp) in TOAST frames,
// message kind kJsonControl, format standard JSON:
//   sync://SESSION        sync_ping, sync_pong, sync_status
//   control://SESSION/1   transport, transport_state, hello, request, reply, error
// (control://SESSION/0 stays the foundation's probe stream.)
//
// Transport commands act `transport_lead_ns` (default 50 ms) ahead in session
// time. Each is sent three times, 5 ms apart, and every peer broadcasts its
// transport_state once a second and to each peer it newly discovers, so a
// command survives heavy loss and a late joiner learns the state.
//
// The audio device clock of a peer without a sound card is its local clock
// counted in samples at `audio_rate`; when a transport event starts playback
// the peer works out the sample it starts on (the first sample at or after
// the command's session time, through its session clock) and records it,
// with that sample's true CLOCK_MONOTONIC time (for tests: all namespaces on
// one machine share that clock).
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/net/discovery.hpp"
#include "jamnet/net/session_registry.hpp"
#include "jamnet/net/transport.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/clock_drift_arbiter.hpp"
#include "jamnet/sync/clock_source.hpp"
#include "jamnet/sync/transport.hpp"

namespace jamnet {

inline constexpr std::uint16_t kJsonControlKind = 0x0001;

struct SyncConfig {
  double sync_hz = 20;  // 1..100
  int priority = 0;
  bool force_master = false;
  // A test clock in place of the local monotonic clock (a crystal that is
  // offset and runs fast or slow): for tests and benchmarks.
  std::optional<Nanos> test_offset_ns;
  double test_skew_ppm = 0;
  Nanos transport_lead_ns = 50'000'000;
  std::uint32_t audio_rate = 48000;
  double initial_bpm = 120;
};

// Where and when this peer started (or stopped) on a transport event.
struct TransportEventReport {
  std::string command;  // "PLAY", ...
  std::string origin;
  std::uint64_t seq = 0;
  Nanos at_session_ns = 0;      // when the command asked to act
  std::int64_t sample = 0;      // first audio-clock sample at or after it
  Nanos sample_local_ns = 0;    // that sample on the local clock
  Nanos sample_mono_ns = 0;     // and on CLOCK_MONOTONIC
  Nanos sample_session_ns = 0;  // and in session time, by our clock
  bool late = false;            // the command arrived after its time
};

struct SyncReport {
  sync::ArbiterStatus clock;
  Nanos mono_ns = 0;     // one reading, taken together:
  Nanos local_ns = 0;    //   the local clock
  Nanos session_ns = 0;  //   and the session clock
  sync::TransportState transport;
  std::vector<TransportEventReport> events;  // most recent last (up to 64)
  std::array<std::uint64_t, protocol::control::kRejectKinds> rejected{};
  std::uint64_t transport_commands = 0, transport_ignored = 0, snapshots_adopted = 0;
  std::uint64_t inbox_dropped = 0;  // frames dropped because the control thread fell behind
  nlohmann::ordered_json to_json_value() const;
  std::string to_json() const;  // to_json_value(), printed on one line
};

class SyncSession {
 public:
  SyncSession(const SyncConfig& config, net::Transport& transport, net::SessionRegistry& registry,
              net::Discovery& discovery, const Uuid& session, const Uuid& self);
  ~SyncSession();
  SyncSession(const SyncSession&) = delete;
  SyncSession& operator=(const SyncSession&) = delete;

  void tick();  // the peer's control thread, every few ms
  void stop();  // unsubscribes; idempotent

  // Issues a transport command into the session, `lead` ahead (default the
  // config's). The command's at_ns, origin and seq are filled in here.
  // Returns the session time it acts at.
  Result<Nanos> command(sync::TransportCommandRec c, std::optional<Nanos> lead = std::nullopt);

  // With a sound card: its sample counter, so transport events are placed on
  // its samples (the clock must outlive this session, or be reset to null).
  // Answers "mix" requests (`jamnet mix`): set by the Session that owns the
  // mix; without one they are refused. Called on the control router's
  // thread with this session's lock held: it must not call back into it.
  using MixHandler = std::function<Result<void>(const protocol::control::RequestMsg&)>;
  void set_mix_handler(MixHandler handler) {
    std::lock_guard lock(mu_);
    mix_handler_ = std::move(handler);
  }
  void set_audio_clock(const sync::AudioDeviceClock* clock) noexcept {
    audio_clock_.store(clock, std::memory_order_release);
  }

  Nanos session_now() const noexcept { return arbiter_->session_now(); }
  const sync::SessionClock& session_clock() const noexcept { return arbiter_->session(); }
  const sync::ClockSource& local_clock() const noexcept { return *clock_; }
  sync::TransportState transport_state() const;
  SyncReport report() const;

 private:
  // A frame as the receive thread leaves it for the control thread.
  struct Inbound {
    protocol::StreamType type;
    std::string text;
    net::Endpoint from;
    Nanos rx_local = 0;  // kernel receive time on the local clock (t2 / t4)
  };
  void queue_frame(const net::ReceivedFrame& rx, protocol::StreamType type);
  void dispatch_inbound(const Inbound& in);
  void on_request(const protocol::control::RequestMsg& r, const net::Endpoint& from);
  void send_to(const std::optional<Uuid>& to, const protocol::control::ControlMessage& m,
               protocol::StreamType type);
  void send_to_endpoint(const net::Endpoint& ep, const protocol::control::ControlMessage& m,
                        protocol::StreamType type);
  void record_events_locked(Nanos upto_session);
  void record_if_late_locked(const sync::TransportCommandRec& rec);
  void note_event_locked(const sync::TransportEvent& e, bool late);
  Result<Nanos> command_locked(sync::TransportCommandRec c, std::optional<Nanos> lead);
  SyncReport report_locked(const sync::ArbiterStatus& clock) const;
  TransportEventReport event_report(const sync::TransportEvent& e, bool late) const;
  Nanos local_rx(const net::ReceivedFrame& rx) const;

  SyncConfig config_;
  net::Transport& transport_;
  net::SessionRegistry& registry_;
  net::Discovery& discovery_;
  Uuid session_;
  Uuid self_;
  std::unique_ptr<sync::ClockSource> clock_;
  std::unique_ptr<sync::ClockDriftArbiter> arbiter_;
  std::atomic<const sync::AudioDeviceClock*> audio_clock_{nullptr};
  MixHandler mix_handler_;  // under mu_
  net::SubscriptionId sync_sub_ = 0, control_sub_ = 0;
  bool stopped_ = false;

  mutable std::mutex routes_mu_;
  std::unordered_map<Uuid, net::Endpoint, UuidHash> routes_;
  Nanos next_routes_ = 0;  // discovery's routes are read at most every kRoutesInterval

  // Received control and sync frames wait here for tick(): the transport's
  // receive thread only copies them (with their kernel receive time), and the
  // JSON parse, schema check and handlers run on the control thread. Bounded:
  // beyond kMaxInbox pending frames, new ones are dropped and counted.
  std::mutex inbox_mu_;
  std::vector<Inbound> inbox_, draining_;
  std::atomic<std::uint64_t> inbox_dropped_{0};

  mutable std::mutex mu_;  // everything below
  protocol::control::BasicRouter sync_router_, control_router_;
  sync::TransportTimeline timeline_;
  std::uint64_t seq_ = 0;
  struct Resend {
    Nanos due_mono;
    protocol::control::TransportMsg msg;
  };
  std::vector<Resend> resends_;
  Nanos events_checked_to_ = INT64_MIN;  // session time up to which events are recorded
  std::deque<TransportEventReport> events_;
  Nanos next_state_broadcast_ = 0;
  std::uint64_t commands_ = 0, snapshots_adopted_ = 0;
  std::deque<std::pair<std::uint64_t, protocol::control::ReplyMsg>> replies_;  // by request id
  // set while dispatching, for handlers that reply
  const net::Endpoint* current_from_ = nullptr;
  Nanos last_reject_log_ = 0;
  Nanos current_rx_local_ = 0;
};

}  // namespace jamnet
