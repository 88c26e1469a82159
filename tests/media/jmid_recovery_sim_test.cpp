// End to end, without sockets: a sender's MIDI stream goes out in bursts
// with journals every 20 ms, through a bursty (Gilbert-Elliott) lossy,
// jittery path, into a receiver that dedupes, plays out on its own clock and
// repairs from journals. The receiver must end in exactly the sender's state.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <queue>
#include <random>
#include <tuple>
#include <vector>

#include "jamnet/media/jmid/burst.hpp"
#include "jamnet/media/jmid/playout.hpp"
#include "jamnet/media/jmid/state_tracker.hpp"

namespace jamnet::media::jmid {
namespace {

using protocol::jmid::Kind;

double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}
int uniform_int(std::mt19937_64& rng, int lo, int hi) {  // [lo, hi]
  return lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
}

// Two-state bursty loss, one step per packet (media tests stay off the net layer).
class GilbertElliott {
 public:
  GilbertElliott(double p_good_to_bad, double p_bad_to_good, double loss_good, double loss_bad,
                 std::uint64_t seed)
      : p_gb_(p_good_to_bad),
        p_bg_(p_bad_to_good),
        loss_good_(loss_good),
        loss_bad_(loss_bad),
        rng_(seed) {}
  bool drop() {
    bad_ = bad_ ? uniform01(rng_) >= p_bg_ : uniform01(rng_) < p_gb_;
    return uniform01(rng_) < (bad_ ? loss_bad_ : loss_good_);
  }

 private:
  double p_gb_, p_bg_, loss_good_, loss_bad_;
  std::mt19937_64 rng_;
  bool bad_ = false;
};

struct Packet {
  Nanos at;
  std::uint64_t order;
  bool journal;
  std::size_t index;  // into the sent events or journals
  std::uint8_t k;
};
struct Earlier {
  bool operator()(const Packet& a, const Packet& b) const {
    return std::tie(a.at, a.order) > std::tie(b.at, b.order);
  }
};
using PacketQueue = std::priority_queue<Packet, std::vector<Packet>, Earlier>;

// Which state item an event sets, for the per-item order check.
int item_of(const Event& e) {
  switch (e.kind) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
      return e.data1;
    case Kind::kControlChange:
      return 128 + e.data1;
    case Kind::kProgramChange:
      return 256;
    case Kind::kPitchBend:
      return 257;
    case Kind::kChannelPressure:
      return 258;
    default:
      return -1;
  }
}

struct ChannelGen {
  std::vector<std::pair<Nanos, int>> pending_offs;  // (when, note)
  int sweep_cc = -1, sweep_value = 0, sweep_step = 0, sweep_left = 0;
  Nanos sweep_next = 0;
  int bend_left = 0;
  Nanos bend_next = 0;
  bool sustain = false;
};

struct SimResult {
  std::uint64_t events = 0, copies_sent = 0, copies_lost = 0, journals_sent = 0, journals_lost = 0;
  std::uint64_t delivered = 0, events_never_delivered = 0, stale_refused = 0, late_played = 0,
                too_old = 0;
  std::uint64_t repair_events = 0, repair_note_offs = 0, repair_note_ons = 0, repair_controls = 0;
  Nanos longest_stuck_ns = 0;
  int final_k = 0;
};

SimResult run_sim(std::uint64_t seed, bool adaptive) {
  constexpr int kChannels = 4;
  constexpr Nanos kTick = 100'000;                  // 0.1 ms
  constexpr Nanos kPlayEnd = 20'000'000'000;        // new notes/controls stop here
  constexpr Nanos kEnd = kPlayEnd + 3'000'000'000;  // journals keep going until here
  constexpr Nanos kJournalEvery = 20'000'000;
  constexpr Nanos kFeedbackEvery = 500'000'000;
  constexpr Nanos kBaseDelay = 2'000'000;
  constexpr Nanos kJitter = 3'000'000;
  constexpr Nanos kClockOffset = 777'000'000'000;  // receiver clock = sender clock + this

  SimResult r;
  std::mt19937_64 rng(seed);
  GilbertElliott path(0.03, 0.15, 0.02, 0.75, seed * 31 + 7);

  BurstConfig bc;
  bc.k = 3;
  bc.adaptive = adaptive;
  bc.k_max = 6;
  BurstSender sender(bc, seed);
  StateTracker sender_state;
  std::vector<Event> sent_events;
  std::vector<JournalLine> sent_journals;
  std::uint64_t first_seq = 0, last_seq = 0;
  bool any_seq = false;

  BurstDeduper dedupe;
  PlayoutClock clock(5'000'000, 2'000'000'000);
  PlayoutQueue<> playout;
  StateTracker receiver;
  std::vector<std::pair<Nanos, std::size_t>> journal_playout;  // (local play time, journal index)
  std::vector<std::uint8_t> delivered_count;
  std::map<std::pair<int, int>, std::uint64_t> last_applied;  // (channel, item) -> seq
  std::array<bool, kChannels> final_journal_seen{};

  PacketQueue wire;      // by send time, sender clock
  PacketQueue arrivals;  // by arrival time, receiver clock
  std::uint64_t order = 0;
  std::array<ChannelGen, kChannels> gen;
  std::array<ScheduledCopy, kMaxBurst> sched{};
  std::map<std::pair<int, int>, Nanos> stuck_since;  // receiver holds, sender does not
  std::vector<std::pair<Nanos, Event>> due;

  auto send_event = [&](Event e, Nanos now) {
    e.seq = sender.next_seq();
    e.ts_ns = now;
    if (!any_seq) first_seq = e.seq;
    any_seq = true;
    last_seq = e.seq;
    sender_state.apply(e);
    sent_events.push_back(e);
    ++r.events;
    const std::size_t n = sender.schedule(now, sched);
    for (std::size_t i = 0; i < n; ++i) {
      wire.push(Packet{sched[i].send_at_ns, order++, false, sent_events.size() - 1, sched[i].k});
    }
  };
  auto make = [](Kind kind, int ch, int d1, int d2) {
    Event e;
    e.kind = kind;
    e.channel = static_cast<std::uint8_t>(ch);
    e.data1 = static_cast<std::uint8_t>(d1);
    e.data2 = static_cast<std::uint8_t>(d2);
    return e;
  };

  auto apply_played = [&](const Event& e) {
    if (!receiver.apply(e)) {
      ++r.stale_refused;
      return;
    }
    // Rule checked: per channel and item (note, controller, program, bend,
    // pressure), no event is applied older than one applied before it.
    const auto key = std::make_pair(static_cast<int>(e.channel), item_of(e));
    auto [it, fresh] = last_applied.emplace(key, e.seq);
    if (!fresh) {
      EXPECT_GE(e.seq, it->second) << "older event applied after a newer one";
      it->second = e.seq;
    }
  };

  for (Nanos now = 0; now <= kEnd; now += kTick) {
    const Nanos local_now = now + kClockOffset;

    // ---- sender: a plausible performance on 4 channels ----
    for (int ch = 0; ch < kChannels; ++ch) {
      ChannelGen& g = gen[static_cast<std::size_t>(ch)];
      // Note offs due (some as note on velocity 0, as many keyboards send).
      for (std::size_t i = 0; i < g.pending_offs.size();) {
        if (g.pending_offs[i].first <= now) {
          const int n = g.pending_offs[i].second;
          send_event(uniform01(rng) < 0.3 ? make(Kind::kNoteOn, ch, n, 0)
                                          : make(Kind::kNoteOff, ch, n, 64),
                     now);
          g.pending_offs[i] = g.pending_offs.back();
          g.pending_offs.pop_back();
        } else {
          ++i;
        }
      }
      if (now >= kPlayEnd) continue;
      if (uniform01(rng) < 6.0 * kTick / 1e9) {  // ~6 note starts a second, some chords
        const int notes = uniform01(rng) < 0.25 ? 3 : 1;
        for (int c = 0; c < notes; ++c) {
          const int n = uniform_int(rng, 36, 96);
          if (sender_state.channel(ch).notes_on[static_cast<std::size_t>(n)]) continue;
          send_event(make(Kind::kNoteOn, ch, n, uniform_int(rng, 20, 127)), now);
          g.pending_offs.emplace_back(now + uniform_int(rng, 30, 800) * 1'000'000LL, n);
        }
      }
      if (g.sweep_left == 0 &&
          uniform01(rng) < 0.5 * kTick / 1e9) {  // a CC sweep: mod wheel, volume, expression
        static constexpr int kSweepCcs[] = {1, 7, 11, 74};
        g.sweep_cc = kSweepCcs[uniform_int(rng, 0, 3)];
        g.sweep_value =
            std::max<int>(0, sender_state.channel(ch).cc[static_cast<std::size_t>(g.sweep_cc)]);
        g.sweep_step = g.sweep_value < 64 ? 3 : -3;
        g.sweep_left = uniform_int(rng, 15, 40);
        g.sweep_next = now;
      }
      if (g.sweep_left > 0 && g.sweep_next <= now) {
        g.sweep_value = std::clamp(g.sweep_value + g.sweep_step, 0, 127);
        send_event(make(Kind::kControlChange, ch, g.sweep_cc, g.sweep_value), now);
        --g.sweep_left;
        g.sweep_next = now + 10'000'000;
      }
      if (g.bend_left == 0 && uniform01(rng) < 0.3 * kTick / 1e9) {
        g.bend_left = 30;
        g.bend_next = now;
      }
      if (g.bend_left > 0 && g.bend_next <= now) {
        --g.bend_left;  // up and back down to centre
        Event e = make(Kind::kPitchBend, ch, 0, 0);
        e.value14 = static_cast<std::int16_t>(
            g.bend_left == 0 ? 0 : (15 - std::abs(g.bend_left - 15)) * 500);
        send_event(e, now);
        g.bend_next = now + 10'000'000;
      }
      if (uniform01(rng) < 0.3 * kTick / 1e9) {
        g.sustain = !g.sustain;
        send_event(make(Kind::kControlChange, ch, 64, g.sustain ? 127 : 0), now);
      }
      if (uniform01(rng) < 0.05 * kTick / 1e9)
        send_event(make(Kind::kProgramChange, ch, uniform_int(rng, 0, 127), 0), now);
      if (uniform01(rng) < 1.0 * kTick / 1e9)
        send_event(make(Kind::kChannelPressure, ch, uniform_int(rng, 0, 127), 0), now);
      if (uniform01(rng) < 1.0 * kTick / 1e9) {
        send_event(
            make(Kind::kPolyPressure, ch, uniform_int(rng, 36, 96), uniform_int(rng, 0, 127)), now);
      }
    }
    if (now % kJournalEvery == 0 && any_seq) {
      for (JournalLine& j : sender_state.snapshot(last_seq, now)) {
        sent_journals.push_back(j);
        wire.push(Packet{now, order++, true, sent_journals.size() - 1, 1});
        ++r.journals_sent;
      }
    }
    if (now % kFeedbackEvery == 0 && now > 0) sender.on_feedback(dedupe.copy_loss_estimate());

    // ---- the path ----
    while (!wire.empty() && wire.top().at <= now) {
      Packet p = wire.top();
      wire.pop();
      if (!p.journal) ++r.copies_sent;
      if (path.drop()) {
        ++(p.journal ? r.journals_lost : r.copies_lost);
        continue;
      }
      p.at = p.at + kClockOffset + kBaseDelay + static_cast<Nanos>(uniform01(rng) * kJitter);
      // Now and then a much slower packet (a queue on the path): it arrives
      // after its play time, or after the journal that covers it.
      const double slow = uniform01(rng);
      if (slow < 0.04)
        p.at += static_cast<Nanos>(2'000'000 + uniform01(rng) * 8'000'000);
      else if (slow < 0.05)
        p.at += static_cast<Nanos>(10'000'000 + uniform01(rng) * 30'000'000);
      arrivals.push(p);
    }

    // ---- receiver ----
    while (!arrivals.empty() && arrivals.top().at <= local_now) {
      const Packet p = arrivals.top();
      arrivals.pop();
      if (p.journal) {
        const JournalLine& j = sent_journals[p.index];
        // Journals play at their own time too: repairing before the events
        // they cover are due would play those events early.
        journal_playout.emplace_back(clock.ready() ? clock.play_at(j.ts_ns) : p.at, p.index);
        continue;
      }
      const Event& e = sent_events[p.index];
      const auto v = dedupe.on_copy(e.seq, p.k, p.at);
      if (v != BurstDeduper::Verdict::kDeliver) continue;
      const std::size_t idx = e.seq - first_seq;
      if (delivered_count.size() <= idx) delivered_count.resize(idx + 1, 0);
      EXPECT_EQ(++delivered_count[idx], 1) << "seq delivered twice";
      ++r.delivered;
      clock.observe(e.ts_ns, p.at);
      playout.push(clock.play_at(e.ts_ns), e);
    }
    due.clear();
    playout.pop_due(local_now, due);
    for (const auto& [at, e] : due) {
      if (local_now - at >= kTick) ++r.late_played;
      apply_played(e);
    }
    // Events first, then journals due at the same instant: a journal covers
    // the events up to its seq, which play no later than it.
    std::sort(journal_playout.begin(), journal_playout.end());
    std::size_t done = 0;
    for (; done < journal_playout.size() && journal_playout[done].first <= local_now; ++done) {
      const JournalLine& j = sent_journals[journal_playout[done].second];
      for (const Event& fix : receiver.repair(j)) {
        ++r.repair_events;
        if (fix.kind == Kind::kNoteOff)
          ++r.repair_note_offs;
        else if (fix.kind == Kind::kNoteOn)
          ++r.repair_note_ons;
        else
          ++r.repair_controls;
      }
      if (j.upto_seq == last_seq && now > kPlayEnd + 1'000'000'000)
        final_journal_seen[j.channel] = true;
    }
    journal_playout.erase(journal_playout.begin(),
                          journal_playout.begin() + static_cast<std::ptrdiff_t>(done));

    // Stuck notes: held here but released at the sender. The sender's state
    // runs ahead by the path and playout delay, so this measures how long a
    // lost note off lingers until a journal repairs it.
    if (now % 1'000'000 == 0) {
      for (int ch = 0; ch < kChannels; ++ch) {
        for (int n = 0; n < 128; ++n) {
          const auto key = std::make_pair(ch, n);
          const bool stuck = receiver.channel(ch).notes_on[static_cast<std::size_t>(n)] &&
                             !sender_state.channel(ch).notes_on[static_cast<std::size_t>(n)];
          if (stuck) {
            const Nanos since = stuck_since.emplace(key, now).first->second;
            r.longest_stuck_ns = std::max(r.longest_stuck_ns, now - since);
          } else {
            stuck_since.erase(key);
          }
        }
      }
    }
  }

  for (std::size_t i = 0; i < sent_events.size(); ++i) {
    if (i >= delivered_count.size() || delivered_count[i] == 0) ++r.events_never_delivered;
  }
  r.final_k = sender.k();

  // The journal got through on every channel in the final quiet seconds...
  for (int ch = 0; ch < kChannels; ++ch)
    EXPECT_TRUE(final_journal_seen[static_cast<std::size_t>(ch)]) << ch;
  // ...so: no stuck notes, and every controller, program, bend and pressure as sent.
  EXPECT_EQ(sender_state.held_notes(), 0u);
  EXPECT_EQ(receiver.held_notes(), 0u);
  for (int ch = 0; ch < 16; ++ch) {
    EXPECT_TRUE(receiver.channel(ch) == sender_state.channel(ch)) << "channel " << ch;
  }
  r.too_old = dedupe.stats().too_old;
  std::printf(
      "[jmid sim seed=%llu adaptive=%d] events=%llu copies=%llu lost=%llu (%.1f%%) journals=%llu "
      "lost=%llu | "
      "delivered=%llu never=%llu too_old=%llu stale_refused=%llu late=%llu | repairs=%llu "
      "(offs=%llu ons=%llu ctl=%llu) | "
      "longest stuck=%.1f ms | loss est=%.3f final k=%d\n",
      static_cast<unsigned long long>(seed), adaptive ? 1 : 0,
      static_cast<unsigned long long>(r.events), static_cast<unsigned long long>(r.copies_sent),
      static_cast<unsigned long long>(r.copies_lost),
      100.0 * static_cast<double>(r.copies_lost) /
          static_cast<double>(std::max<std::uint64_t>(r.copies_sent, 1)),
      static_cast<unsigned long long>(r.journals_sent),
      static_cast<unsigned long long>(r.journals_lost),
      static_cast<unsigned long long>(r.delivered),
      static_cast<unsigned long long>(r.events_never_delivered),
      static_cast<unsigned long long>(r.too_old), static_cast<unsigned long long>(r.stale_refused),
      static_cast<unsigned long long>(r.late_played),
      static_cast<unsigned long long>(r.repair_events),
      static_cast<unsigned long long>(r.repair_note_offs),
      static_cast<unsigned long long>(r.repair_note_ons),
      static_cast<unsigned long long>(r.repair_controls),
      static_cast<double>(r.longest_stuck_ns) / 1e6, dedupe.copy_loss_estimate(), r.final_k);
  return r;
}

TEST(JmidRecoverySim, BurstyLossFixedKEndsInSenderState) {
  const SimResult r = run_sim(1, false);
  // The run must actually exercise recovery: whole bursts lost, notes repaired.
  EXPECT_GT(r.events, 2000u);
  EXPECT_GT(r.events_never_delivered, 0u);
  EXPECT_GT(r.repair_note_offs, 0u);
  EXPECT_GT(r.repair_events, 0u);
  EXPECT_EQ(r.delivered + r.events_never_delivered, r.events);
  EXPECT_EQ(r.final_k, 3);
  // Slow packets exercise the ordering rule and the expiry floor.
  EXPECT_GT(r.late_played, 0u);
  EXPECT_GT(r.too_old, 0u);
  // A lost note off lingers about until the next journal that gets through.
  EXPECT_LT(r.longest_stuck_ns, 1'000'000'000);
}

TEST(JmidRecoverySim, BurstyLossAdaptiveKEndsInSenderState) {
  const SimResult r = run_sim(2, true);
  EXPECT_GT(r.events, 2000u);
  EXPECT_EQ(r.delivered + r.events_never_delivered, r.events);
  EXPECT_GT(r.final_k, 3);  // ~14% bursty loss asks for more copies
  EXPECT_LT(r.longest_stuck_ns, 1'000'000'000);
}

}  // namespace
}  // namespace jamnet::media::jmid
