// The session's transport: play, stop, pause, record, seek and tempo, as a
// timeline of commands that each act at a session time.
//
// Every peer keeps the same ordered log. The order is total and the same
// everywhere: (at_ns, origin, seq). The state at any session time is a pure
// function of the base snapshot plus the commands up to that time, folded in
// that order. So when two peers send commands at once, every peer ends with
// the same result (collision resolution), whatever order the packets arrived
// in, and a command that arrives late (after its time) still lands in its
// place. A late joiner loads a snapshot (TransportStateMsg) and then applies
// only commands ordered after the snapshot's last command.
//
// Musical time: positions are in beats (the time signature's denominator
// note), tempo in beats per minute. Position advances only while playing or
// recording. STOP and PAUSE both halt and keep the position (STOP does not
// rewind; a SEEK does). RECORD is playing with recording on. SEEK moves the
// position and keeps the play state. TEMPO changes bpm (and, when given, the
// time signature) with the position continuous.
//
// Not thread-safe: the owner (the peer's control thread) serialises access.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/protocol/control.hpp"

namespace jamnet::sync {

using protocol::control::TransportCommand;

inline constexpr int kTicksPerBeat = 960;

struct TimeSignature {
  int num = 4;  // beats per bar, 1..64
  int den = 4;  // note value of a beat: 1, 2, 4, 8, 16, 32
  friend bool operator==(const TimeSignature&, const TimeSignature&) = default;
};

// Bars, beats and ticks; bar and beat count from 1, tick from 0.
struct Bbt {
  std::int64_t bar = 1;
  int beat = 1;
  int tick = 0;
  friend bool operator==(const Bbt&, const Bbt&) = default;
};
Bbt beats_to_bbt(double beats, TimeSignature ts) noexcept;  // beats >= 0; ticks rounded down
double bbt_to_beats(const Bbt& bbt, TimeSignature ts) noexcept;
// "4.1.0", "4.1", "4" -> Bbt; errors name the bad part. Bar >= 1, 1 <= beat <= ts.num,
// 0 <= tick < kTicksPerBeat.
Result<Bbt> parse_bbt(std::string_view text, TimeSignature ts);
std::string format_bbt(const Bbt& bbt);  // "4.1.0"
inline double beats_to_ms(double beats, double bpm) noexcept {
  return beats * 60000.0 / bpm;
}
inline double ms_to_beats(double ms, double bpm) noexcept {
  return ms * bpm / 60000.0;
}

enum class PlayState : std::uint8_t { kStopped, kPlaying, kPaused, kRecording };
std::string_view to_string(PlayState s) noexcept;  // "stopped", "playing", "paused", "recording"
std::optional<PlayState> play_state_from(std::string_view s) noexcept;

struct TransportCommandRec {
  TransportCommand command = TransportCommand::kPlay;
  Nanos at_ns = 0;                              // session time it acts at
  double position_beats = 0;                    // SEEK: target
  double bpm = 0;                               // TEMPO: new tempo (20..999)
  std::optional<TimeSignature> time_signature;  // TEMPO: optional change
  std::string origin;                           // UUID text of the issuing peer
  std::uint64_t seq = 0;                        // per origin, from 1
};
// Order key: (at_ns, origin, seq).
bool command_before(const TransportCommandRec& a, const TransportCommandRec& b) noexcept;

struct TransportState {
  PlayState play = PlayState::kStopped;
  double position_beats = 0;
  double bpm = 120;
  TimeSignature time_signature;
  bool moving() const noexcept {
    return play == PlayState::kPlaying || play == PlayState::kRecording;
  }
  Bbt bbt() const noexcept { return beats_to_bbt(position_beats, time_signature); }
};

// A change of play state at a session time (for the audio side: start/stop samples).
struct TransportEvent {
  Nanos at_ns = 0;
  TransportCommandRec command;
  TransportState before, after;
};

struct TransportConfig {
  double initial_bpm = 120;
  TimeSignature initial_time_signature;
  Nanos keep_history_ns = 10'000'000'000;  // commands older than this fold into the base
};

class TransportTimeline {
 public:
  explicit TransportTimeline(TransportConfig config = {});

  // Adds a command. Returns false (ignored) when it is a duplicate (same
  // origin and seq), is ordered at or before the snapshot base, or is invalid
  // (bpm out of range, negative seek, bad time signature).
  bool apply(const TransportCommandRec& c);

  TransportState state_at(Nanos session_ns) const;
  // Events with at_ns in [from, to), in order.
  std::vector<TransportEvent> events_between(Nanos from, Nanos to) const;

  // Snapshot of everything ordered up to and including the last command at or
  // before `now` (commands still in the future are not in it; send them too).
  protocol::control::TransportStateMsg snapshot(Nanos now) const;
  // Commands after the snapshot point (for a late joiner).
  std::vector<TransportCommandRec> pending_after(Nanos now) const;
  // Late joiner: adopts the snapshot when it is ordered after our base and our
  // last applied command (a peer that knows more keeps its state). Commands in
  // the log ordered after the snapshot are kept. Returns true when adopted.
  bool load_snapshot(const protocol::control::TransportStateMsg& s);

  // Folds commands older than now - keep_history_ns into the base.
  void compact(Nanos now);
  std::size_t log_size() const noexcept { return log_.size(); }
  std::uint64_t ignored() const noexcept { return ignored_; }
  // Commands waiting in the log at most; more are ignored (counted in
  // ignored() and log_full()). Commands fold into the base 10 s after they
  // act, so only a flood of far-future ones reaches this.
  static constexpr std::size_t kMaxLog = 1024;
  // Origins whose folded seqs are remembered at most; past that the first
  // by name is forgotten (counted).
  static constexpr std::size_t kMaxOrigins = 256;
  std::uint64_t log_full() const noexcept { return log_full_; }
  std::uint64_t origins_evicted() const noexcept { return origins_evicted_; }

 private:
  struct Base {
    TransportState state;  // at anchor_ns
    Nanos anchor_ns = INT64_MIN;
    std::optional<TransportCommandRec> last;  // key of the last folded command
  };
  TransportConfig config_;
  Base base_;
  std::vector<TransportCommandRec> log_;  // sorted by command_before
  // Recently folded seqs per origin (sorted, the newest kFoldedSeqsKept), so a
  // command reusing a folded (origin, seq) is still recognised as a duplicate.
  // Exact duplicates are refused anyway: they are ordered at or before base_.last.
  static constexpr std::size_t kFoldedSeqsKept = 256;
  std::map<std::string, std::vector<std::uint64_t>, std::less<>> folded_seqs_;
  std::uint64_t log_full_ = 0, origins_evicted_ = 0;
  void remember_folded(const std::string& origin, std::uint64_t seq);
  std::uint64_t ignored_ = 0;
};

// Helpers for messages.
TransportCommandRec from_message(const protocol::control::TransportMsg& m);
protocol::control::TransportMsg to_message(const TransportCommandRec& c,
                                           const TransportState& at_send,
                                           const std::string& master_peer);

}  // namespace jamnet::sync
