#include <algorithm>

#include "jamnet/media/jmid/state_tracker.hpp"

namespace jamnet::media::jmid {
namespace {

using protocol::jmid::Kind;

constexpr std::size_t kChannels = 16;
constexpr std::size_t kNotes = 128;
// Controllers 120..127 are channel mode messages: commands, not state.
constexpr std::uint8_t kFirstModeCc = 120;

// All Sound Off, All Notes Off and the mode changes that imply it (Omni
// off/on, Mono, Poly): after any of these nothing sounds on the channel.
constexpr bool releases_notes(std::uint8_t cc) noexcept {
  return cc == 120 || cc >= 123;
}

Event make_event(Kind kind, std::size_t ch, std::uint64_t seq, std::int64_t ts) noexcept {
  Event e;
  e.kind = kind;
  e.channel = static_cast<std::uint8_t>(ch);
  e.seq = seq;
  e.ts_ns = ts;
  return e;
}

}  // namespace

void StateTracker::set_note(std::size_t ch, std::uint8_t note, std::uint8_t velocity,
                            std::uint64_t seq) noexcept {
  ChannelState& st = state_[ch];
  st.notes_on.set(note, velocity > 0);
  // Velocity is kept only for held notes, so two states that hold the same
  // notes compare equal whatever was played before.
  st.velocity[note] = velocity;
  touched_[ch].note[note] = seq;
}

bool StateTracker::apply(const Event& e) {
  switch (e.kind) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
    case Kind::kControlChange:
    case Kind::kProgramChange:
    case Kind::kPitchBend:
    case Kind::kChannelPressure:
      break;
    default:
      return true;  // not channel state (poly pressure, system messages): nothing to keep
  }
  if (e.channel >= kChannels) return false;
  const std::size_t ch = e.channel;
  if (e.seq < journal_floor_[ch]) return false;
  ChannelState& st = state_[ch];
  Touched& t = touched_[ch];
  const std::uint64_t seq = e.seq;

  switch (e.kind) {
    case Kind::kNoteOn:
    case Kind::kNoteOff: {
      const std::uint8_t n = e.data1 & 0x7F;
      if (seq < t.note[n]) return false;
      const std::uint8_t v = e.kind == Kind::kNoteOn ? (e.data2 & 0x7F) : 0;
      set_note(ch, n, v, seq);
      break;
    }
    case Kind::kControlChange: {
      const std::uint8_t c = e.data1 & 0x7F;
      if (c >= kFirstModeCc) {
        if (!releases_notes(c)) return true;
        // Per note, so a newer note on that arrived first survives.
        for (std::size_t n = 0; n < kNotes; ++n) {
          if (t.note[n] <= seq) set_note(ch, static_cast<std::uint8_t>(n), 0, seq);
        }
        break;
      }
      if (seq < t.cc[c]) return false;
      st.cc[c] = static_cast<std::int16_t>(e.data2 & 0x7F);
      t.cc[c] = seq;
      break;
    }
    case Kind::kProgramChange:
      if (seq < t.program) return false;
      st.program = static_cast<std::int16_t>(e.data1 & 0x7F);
      t.program = seq;
      break;
    case Kind::kPitchBend:
      if (seq < t.bend) return false;
      st.pitch_bend = std::clamp<std::int16_t>(e.value14, -8192, 8191);
      t.bend = seq;
      break;
    case Kind::kChannelPressure:
      if (seq < t.pressure) return false;
      st.pressure = static_cast<std::int16_t>(e.data1 & 0x7F);
      t.pressure = seq;
      break;
    default:
      break;
  }
  active_[ch] = true;
  return true;
}

std::vector<JournalLine> StateTracker::snapshot(std::uint64_t upto_seq, std::int64_t ts_ns) const {
  std::vector<JournalLine> lines;
  for (std::size_t ch = 0; ch < kChannels; ++ch) {
    // Not is_default(): that lives in the protocol library; the defaulted
    // operator== is inline and says the same.
    if (!active_[ch] && state_[ch] == ChannelState{}) continue;
    JournalLine& j = lines.emplace_back();
    j.channel = static_cast<std::uint8_t>(ch);
    j.upto_seq = upto_seq;
    j.ts_ns = ts_ns;
    j.state = state_[ch];
  }
  return lines;
}

std::vector<Event> StateTracker::repair(const JournalLine& j) {
  std::vector<Event> out;
  repair(j, out);
  return out;
}

void StateTracker::repair(const JournalLine& j, std::vector<Event>& out) {
  if (j.channel >= kChannels) return;
  const std::size_t ch = j.channel;
  ChannelState& st = state_[ch];
  Touched& t = touched_[ch];
  const ChannelState& there = j.state;
  const std::uint64_t upto = j.upto_seq;
  // An item touched by an event newer than the journal knows better.
  const auto stale = [upto](std::uint64_t touched) { return touched > upto; };

  // Order: stuck notes off first, then program and controllers, then the
  // missing notes on, so those sound with the right patch and controllers.
  for (std::size_t n = 0; n < kNotes; ++n) {
    if (stale(t.note[n]) || !st.notes_on[n] || there.notes_on[n]) continue;
    Event e = make_event(Kind::kNoteOff, ch, upto, j.ts_ns);
    e.data1 = static_cast<std::uint8_t>(n);
    set_note(ch, e.data1, 0, upto);
    out.push_back(e);
  }
  if (!stale(t.program) && there.program >= 0 && there.program != st.program) {
    Event e = make_event(Kind::kProgramChange, ch, upto, j.ts_ns);
    e.data1 = static_cast<std::uint8_t>(there.program & 0x7F);
    st.program = e.data1;
    t.program = upto;
    out.push_back(e);
  }
  for (std::size_t c = 0; c < kFirstModeCc; ++c) {
    // A controller the journal never saw set cannot be "unset": leave ours.
    if (stale(t.cc[c]) || there.cc[c] < 0 || there.cc[c] == st.cc[c]) continue;
    Event e = make_event(Kind::kControlChange, ch, upto, j.ts_ns);
    e.data1 = static_cast<std::uint8_t>(c);
    e.data2 = static_cast<std::uint8_t>(there.cc[c] & 0x7F);
    st.cc[c] = e.data2;
    t.cc[c] = upto;
    out.push_back(e);
  }
  if (!stale(t.bend) && there.pitch_bend != st.pitch_bend) {
    Event e = make_event(Kind::kPitchBend, ch, upto, j.ts_ns);
    e.value14 = std::clamp<std::int16_t>(there.pitch_bend, -8192, 8191);
    st.pitch_bend = e.value14;
    t.bend = upto;
    out.push_back(e);
  }
  if (!stale(t.pressure) && there.pressure >= 0 && there.pressure != st.pressure) {
    Event e = make_event(Kind::kChannelPressure, ch, upto, j.ts_ns);
    e.data1 = static_cast<std::uint8_t>(there.pressure & 0x7F);
    st.pressure = e.data1;
    t.pressure = upto;
    out.push_back(e);
  }
  for (std::size_t n = 0; n < kNotes; ++n) {
    if (stale(t.note[n]) || !there.notes_on[n]) continue;
    // A velocity 0 in a held note's entry would turn the note on into a note
    // off; 1 keeps it held.
    const auto v = static_cast<std::uint8_t>(std::clamp<int>(there.velocity[n] & 0x7F, 1, 127));
    if (st.notes_on[n]) {
      // Held on both sides (we missed a release and a new press): adopt the
      // velocity but do not re-attack a sounding note late.
      st.velocity[n] = v;
      continue;
    }
    Event e = make_event(Kind::kNoteOn, ch, upto, j.ts_ns);
    e.data1 = static_cast<std::uint8_t>(n);
    e.data2 = v;
    set_note(ch, e.data1, v, upto);
    out.push_back(e);
  }
  // Every event up to `upto` is now reflected (items newer than the journal
  // were left alone and keep their own, newer seq): a late copy of one of
  // them must not undo the repair.
  journal_floor_[ch] = std::max(journal_floor_[ch], upto + 1);
  active_[ch] = true;
}

std::vector<Event> StateTracker::release_all() {
  std::vector<Event> out;
  release_all(out);
  return out;
}

void StateTracker::release_all(std::vector<Event>& out) {
  for (std::size_t ch = 0; ch < kChannels; ++ch) {
    for (std::size_t n = 0; n < kNotes; ++n) {
      if (!state_[ch].notes_on[n]) continue;
      Event e = make_event(Kind::kNoteOff, ch, 0, 0);
      e.data1 = static_cast<std::uint8_t>(n);
      out.push_back(e);
    }
    state_[ch].notes_on.reset();
    state_[ch].velocity.fill(0);
  }
  touched_ = {};
  journal_floor_ = {};
}

std::size_t StateTracker::held_notes() const noexcept {
  std::size_t held = 0;
  for (const ChannelState& st : state_) held += st.notes_on.count();
  return held;
}

}  // namespace jamnet::media::jmid
