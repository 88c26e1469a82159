#include "jamnet/sync/transport.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

namespace jamnet::sync {

namespace control = protocol::control;

namespace {

constexpr double kBeatEpsilon = 1e-9;  // values this close to a tick boundary snap onto it
constexpr double kMinBpm = 20.0;
constexpr double kMaxBpm = 999.0;
constexpr double kNsPerMinute = 60e9;

bool valid_bpm(double bpm) noexcept {
  return std::isfinite(bpm) && bpm >= kMinBpm && bpm <= kMaxBpm;
}

bool valid_time_signature(TimeSignature ts) noexcept {
  if (ts.num < 1 || ts.num > 64) return false;
  switch (ts.den) {
    case 1:
    case 2:
    case 4:
    case 8:
    case 16:
    case 32:
      return true;
    default:
      return false;
  }
}

bool valid_command(TransportCommand c) noexcept {
  return static_cast<std::uint8_t>(c) <= static_cast<std::uint8_t>(TransportCommand::kTempo);
}

// Order key of a command (at_ns, origin, seq).
auto key_of(const TransportCommandRec& c) noexcept {
  return std::tie(c.at_ns, c.origin, c.seq);
}

bool same_id(const TransportCommandRec& a, const TransportCommandRec& b) noexcept {
  return a.seq == b.seq && a.origin == b.origin;
}

// Moves the position from `from` to `to` while moving. `from_valid` is false
// when there is no history to advance from (the initial base).
void advance(TransportState& s, Nanos from, bool from_valid, Nanos to) noexcept {
  if (!from_valid || !s.moving() || to <= from) return;
  // Exact difference even across the whole int64 range.
  const auto dt = static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from);
  s.position_beats += static_cast<double>(dt) * s.bpm / kNsPerMinute;
}

void apply_command(TransportState& s, const TransportCommandRec& c) noexcept {
  switch (c.command) {
    case TransportCommand::kPlay:
      s.play = PlayState::kPlaying;
      break;
    case TransportCommand::kStop:
      s.play = PlayState::kStopped;
      break;
    case TransportCommand::kPause:
      s.play = PlayState::kPaused;
      break;
    case TransportCommand::kRecord:
      s.play = PlayState::kRecording;
      break;
    case TransportCommand::kSeek:
      s.position_beats = c.position_beats;
      break;
    case TransportCommand::kTempo:
      s.bpm = c.bpm;
      if (c.time_signature) s.time_signature = *c.time_signature;
      break;
  }
}

// A running fold over the base and the log.
struct Cursor {
  TransportState state;
  Nanos at = INT64_MIN;
  bool valid = false;  // `at` is a real time (position can advance from it)

  // Advances to the command's time and applies it.
  void step(const TransportCommandRec& c) noexcept {
    advance(state, at, valid, c.at_ns);
    if (!valid || c.at_ns > at) at = c.at_ns;
    valid = true;
    apply_command(state, c);
  }
  TransportState at_time(Nanos t) const noexcept {
    TransportState s = state;
    advance(s, at, valid, t);
    return s;
  }
};

// A beats position as ms such that ms_to_beats(ms, bpm) gives the beats back
// exactly when some double does; else the closest (error well under 1e-9 beats).
double encode_position_ms(double beats, double bpm) noexcept {
  double ms = beats_to_ms(beats, bpm);
  if (!std::isfinite(ms) || ms_to_beats(ms, bpm) == beats) return ms;
  double best = ms;
  double best_err = std::fabs(ms_to_beats(ms, bpm) - beats);
  double up = ms;
  double down = ms;
  for (int i = 0; i < 64; ++i) {
    up = std::nextafter(up, std::numeric_limits<double>::infinity());
    down = std::nextafter(down, -std::numeric_limits<double>::infinity());
    for (double cand : {up, down}) {
      const double err = std::fabs(ms_to_beats(cand, bpm) - beats);
      if (err == 0) return cand;
      if (err < best_err) {
        best = cand;
        best_err = err;
      }
    }
  }
  return best;
}

// Parses one decimal integer part of a BBT text.
Result<std::int64_t> parse_part(std::string_view part) {
  std::int64_t v = 0;
  const char* first = part.data();
  const char* last = part.data() + part.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  if (part.empty() || ec == std::errc::invalid_argument || ptr != last) {
    return make_error(Errc::kParse, "not a number: '" + std::string(part) + "'");
  }
  if (ec == std::errc::result_out_of_range) {
    return make_error(Errc::kInvalidArgument, "number out of range: '" + std::string(part) + "'");
  }
  return v;
}

}  // namespace

// ------------------------------------------------------------------- BBT

Bbt beats_to_bbt(double beats, TimeSignature ts) noexcept {
  const int num = ts.num >= 1 ? ts.num : 1;
  if (!(beats > 0)) return Bbt{};  // 0, negative, NaN
  double ticks = beats * kTicksPerBeat;
  constexpr double kMaxTicks = 4e18;  // fits int64 with room
  if (!(ticks < kMaxTicks)) ticks = kMaxTicks;
  // Within kBeatEpsilon of a tick boundary counts as on it: floating error must
  // not turn 4.0 - 1e-12 into bar 1 beat 4 tick 959.
  const double nearest = std::round(ticks);
  const double whole_ticks =
      std::fabs(ticks - nearest) <= kBeatEpsilon * kTicksPerBeat ? nearest : std::floor(ticks);
  const auto total = static_cast<std::int64_t>(whole_ticks);
  const std::int64_t whole_beats = total / kTicksPerBeat;
  Bbt out;
  out.tick = static_cast<int>(total % kTicksPerBeat);
  out.beat = static_cast<int>(whole_beats % num) + 1;
  out.bar = whole_beats / num + 1;
  return out;
}

double bbt_to_beats(const Bbt& bbt, TimeSignature ts) noexcept {
  return static_cast<double>(bbt.bar - 1) * ts.num + static_cast<double>(bbt.beat - 1) +
         static_cast<double>(bbt.tick) / kTicksPerBeat;
}

Result<Bbt> parse_bbt(std::string_view text, TimeSignature ts) {
  std::string_view parts[3];
  std::size_t count = 0;
  std::string_view rest = text;
  while (true) {
    const auto dot = rest.find('.');
    if (count == 3) {
      return make_error(Errc::kParse, "too many parts in '" + std::string(text) +
                                          "' (expected BAR, BAR.BEAT or BAR.BEAT.TICK)");
    }
    parts[count++] = rest.substr(0, dot);
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  std::int64_t values[3] = {1, 1, 0};
  for (std::size_t i = 0; i < count; ++i) {
    auto v = parse_part(parts[i]);
    if (!v) return std::unexpected(v.error());
    values[i] = *v;
  }
  if (values[0] < 1) return make_error(Errc::kInvalidArgument, "bar must be >= 1");
  if (values[1] < 1 || values[1] > ts.num) {
    return make_error(Errc::kInvalidArgument, "beat " + std::to_string(values[1]) +
                                                  " is outside 1.." + std::to_string(ts.num) +
                                                  " in " + std::to_string(ts.num) + "/" +
                                                  std::to_string(ts.den));
  }
  if (values[2] < 0 || values[2] >= kTicksPerBeat) {
    return make_error(Errc::kInvalidArgument,
                      "tick must be 0.." + std::to_string(kTicksPerBeat - 1));
  }
  return Bbt{values[0], static_cast<int>(values[1]), static_cast<int>(values[2])};
}

std::string format_bbt(const Bbt& bbt) {
  return std::to_string(bbt.bar) + "." + std::to_string(bbt.beat) + "." + std::to_string(bbt.tick);
}

// ------------------------------------------------------------- play state

std::string_view to_string(PlayState s) noexcept {
  switch (s) {
    case PlayState::kStopped:
      return "stopped";
    case PlayState::kPlaying:
      return "playing";
    case PlayState::kPaused:
      return "paused";
    case PlayState::kRecording:
      return "recording";
  }
  return "stopped";
}

std::optional<PlayState> play_state_from(std::string_view s) noexcept {
  if (s == "stopped") return PlayState::kStopped;
  if (s == "playing") return PlayState::kPlaying;
  if (s == "paused") return PlayState::kPaused;
  if (s == "recording") return PlayState::kRecording;
  return std::nullopt;
}

bool command_before(const TransportCommandRec& a, const TransportCommandRec& b) noexcept {
  return key_of(a) < key_of(b);
}

// --------------------------------------------------------------- timeline

TransportTimeline::TransportTimeline(TransportConfig config) : config_(config) {
  base_.state.bpm = config_.initial_bpm;
  base_.state.time_signature = config_.initial_time_signature;
}

bool TransportTimeline::apply(const TransportCommandRec& c) {
  auto reject = [this] {
    ++ignored_;
    return false;
  };
  // Validation.
  if (c.origin.empty() || c.seq == 0 || !valid_command(c.command)) return reject();
  if (!plausible_ns(c.at_ns))
    return reject();  // no clock shows it: arithmetic on it could overflow
  if (log_.size() >= kMaxLog) {
    ++log_full_;
    return reject();
  }
  if (c.command == TransportCommand::kTempo) {
    if (!valid_bpm(c.bpm)) return reject();
    if (c.time_signature && !valid_time_signature(*c.time_signature)) return reject();
  }
  if (c.command == TransportCommand::kSeek &&
      !(std::isfinite(c.position_beats) && c.position_beats >= 0)) {
    return reject();
  }
  // Ordered at or before the base: folded already (or older than a snapshot).
  if (c.at_ns < base_.anchor_ns) return reject();
  if (base_.last && !command_before(*base_.last, c)) return reject();
  // Duplicates: folded already or still in the log. (Seqs grow per origin in
  // issue order, but not necessarily in at_ns order: a larger seq may act
  // earlier, so a seq below a folded one is not a duplicate by itself.)
  if (auto it = folded_seqs_.find(c.origin);
      it != folded_seqs_.end() && std::binary_search(it->second.begin(), it->second.end(), c.seq)) {
    return reject();
  }
  for (const auto& e : log_) {
    if (same_id(e, c)) return reject();
  }
  auto pos = std::upper_bound(log_.begin(), log_.end(), c, command_before);
  log_.insert(pos, c);
  return true;
}

namespace {

// Fold state shared by the queries: the base as a cursor.
Cursor start_cursor(const TransportState& state, Nanos anchor, bool has_last) {
  Cursor cur;
  cur.state = state;
  cur.at = anchor;
  cur.valid = anchor != INT64_MIN || has_last;
  return cur;
}

}  // namespace

TransportState TransportTimeline::state_at(Nanos session_ns) const {
  Cursor cur = start_cursor(base_.state, base_.anchor_ns, base_.last.has_value());
  // Before the base there is no history: the base state (no extrapolation).
  if (cur.valid && session_ns < cur.at) return base_.state;
  for (const auto& c : log_) {
    if (c.at_ns > session_ns) break;
    cur.step(c);
  }
  return cur.at_time(session_ns);
}

std::vector<TransportEvent> TransportTimeline::events_between(Nanos from, Nanos to) const {
  std::vector<TransportEvent> out;
  Cursor cur = start_cursor(base_.state, base_.anchor_ns, base_.last.has_value());
  for (const auto& c : log_) {
    if (c.at_ns >= to) break;
    if (c.at_ns < from) {
      cur.step(c);
      continue;
    }
    TransportEvent ev;
    ev.at_ns = c.at_ns;
    ev.command = c;
    ev.before = cur.at_time(c.at_ns);
    cur.step(c);
    ev.after = cur.state;
    out.push_back(std::move(ev));
  }
  return out;
}

control::TransportStateMsg TransportTimeline::snapshot(Nanos now) const {
  Cursor cur = start_cursor(base_.state, base_.anchor_ns, base_.last.has_value());
  const TransportCommandRec* last = base_.last ? &*base_.last : nullptr;
  for (const auto& c : log_) {
    if (c.at_ns > now) break;
    cur.step(c);
    last = &c;
  }
  control::TransportStateMsg m;
  const TransportState& s = cur.state;  // the state right after `last` (or the base)
  m.state = std::string(to_string(s.play));
  m.anchor_session_ns = cur.valid ? cur.at : 0;
  m.anchor_position_ms = encode_position_ms(s.position_beats, s.bpm);
  m.bpm = s.bpm;
  m.time_signature = {s.time_signature.num, s.time_signature.den};
  if (last != nullptr) {
    m.last_origin = last->origin;
    m.last_seq = last->seq;
    m.last_timestamp = last->at_ns;
  } else {
    m.last_origin.clear();
    m.last_seq = 0;
    m.last_timestamp = now;  // "no command up to now"
  }
  return m;
}

std::vector<TransportCommandRec> TransportTimeline::pending_after(Nanos now) const {
  std::vector<TransportCommandRec> out;
  for (const auto& c : log_) {
    if (c.at_ns > now) out.push_back(c);
  }
  return out;
}

bool TransportTimeline::load_snapshot(const control::TransportStateMsg& s) {
  // Validation.
  const auto play = play_state_from(s.state);
  if (!play) return false;
  if (!valid_bpm(s.bpm)) return false;
  const TimeSignature ts{s.time_signature[0], s.time_signature[1]};
  if (!valid_time_signature(ts)) return false;
  if (!std::isfinite(s.anchor_position_ms) || s.anchor_position_ms < 0) return false;
  if (!plausible_ns(s.anchor_session_ns) || !plausible_ns(s.last_timestamp)) return false;
  const bool has_last = s.last_seq != 0;
  if (has_last == s.last_origin.empty()) return false;  // origin and seq come together

  TransportCommandRec key;
  key.at_ns = s.last_timestamp;
  key.origin = s.last_origin;
  key.seq = s.last_seq;

  // Adopt only when the snapshot is ordered after everything we have at or
  // before its point (our base and the log up to last_timestamp): a peer that
  // already has the snapshot's last command, or newer ones, keeps its state.
  // A snapshot without a command (nobody has issued one yet) is adopted only
  // by a peer that has none at or before its point either.
  if (base_.last && (!has_last || !command_before(*base_.last, key))) return false;
  for (const auto& c : log_) {
    if (c.at_ns > s.last_timestamp) break;
    if (!has_last || !command_before(c, key)) return false;
  }

  TransportState st;
  st.play = *play;
  st.bpm = s.bpm;
  st.time_signature = ts;
  st.position_beats = ms_to_beats(s.anchor_position_ms, s.bpm);

  Base nb;
  nb.state = st;
  if (has_last) {
    nb.anchor_ns = s.anchor_session_ns;
    nb.last = key;
    remember_folded(key.origin, key.seq);
  } else {
    // No command behind the snapshot: it only pins tempo and position; without
    // movement the anchor does not matter and nothing is ordered before it.
    nb.anchor_ns = st.moving() ? s.anchor_session_ns : INT64_MIN;
  }
  // Commands ordered at or before the snapshot are in it.
  std::erase_if(log_, [&](const TransportCommandRec& c) {
    const bool covered = (has_last && !command_before(key, c)) || c.at_ns < nb.anchor_ns;
    if (covered) remember_folded(c.origin, c.seq);
    return covered;
  });
  base_ = std::move(nb);
  return true;
}

void TransportTimeline::remember_folded(const std::string& origin, std::uint64_t seq) {
  if (!folded_seqs_.contains(origin) && folded_seqs_.size() >= kMaxOrigins) {
    folded_seqs_.erase(folded_seqs_.begin());  // bounded; its commands are long folded
    ++origins_evicted_;
  }
  auto& seqs = folded_seqs_[origin];
  auto pos = std::lower_bound(seqs.begin(), seqs.end(), seq);
  if (pos != seqs.end() && *pos == seq) return;
  seqs.insert(pos, seq);
  if (seqs.size() > kFoldedSeqsKept) seqs.erase(seqs.begin());  // the oldest go first
}

void TransportTimeline::compact(Nanos now) {
  const Nanos horizon = sat_sub(now, config_.keep_history_ns);
  std::size_t n = 0;
  while (n < log_.size() && log_[n].at_ns < horizon) ++n;
  if (n == 0) return;
  Cursor cur = start_cursor(base_.state, base_.anchor_ns, base_.last.has_value());
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = log_[i];
    cur.step(c);
    remember_folded(c.origin, c.seq);
  }
  base_.state = cur.state;
  base_.anchor_ns = cur.at;
  base_.last = log_[n - 1];
  log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(n));
}

// ---------------------------------------------------------------- messages

TransportCommandRec from_message(const control::TransportMsg& m) {
  TransportCommandRec c;
  c.command = m.command;
  c.at_ns = m.timestamp;
  c.origin = m.origin;
  c.seq = m.seq;
  if (valid_bpm(m.bpm)) {
    c.position_beats = ms_to_beats(m.position_ms, m.bpm);
  } else {
    // Without a usable tempo the position means nothing; a SEEK is then rejected by apply().
    c.position_beats =
        m.command == TransportCommand::kSeek ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  }
  if (m.command == TransportCommand::kTempo) {
    c.bpm = m.bpm;
    c.time_signature = TimeSignature{m.time_signature[0], m.time_signature[1]};
  }
  return c;
}

control::TransportMsg to_message(const TransportCommandRec& c, const TransportState& at_send,
                                 const std::string& master_peer) {
  control::TransportMsg m;
  m.command = c.command;
  m.timestamp = c.at_ns;
  m.origin = c.origin;
  m.seq = c.seq;
  m.master_peer = master_peer;
  m.bpm = at_send.bpm;
  m.time_signature = {at_send.time_signature.num, at_send.time_signature.den};
  double position = at_send.position_beats;
  if (c.command == TransportCommand::kTempo) {
    m.bpm = c.bpm;
    if (c.time_signature) m.time_signature = {c.time_signature->num, c.time_signature->den};
  } else if (c.command == TransportCommand::kSeek) {
    position = c.position_beats;
  }
  m.position_ms = valid_bpm(m.bpm) ? encode_position_ms(position, m.bpm) : 0.0;
  return m;
}

}  // namespace jamnet::sync
