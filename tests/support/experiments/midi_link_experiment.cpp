#include "experiments/midi_link_experiment.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "jamnet/core/sample_stats.hpp"
#include "jamnet/net/netsim.hpp"
#include "jamnet/peer/peer.hpp"
#include "link_pair.hpp"

namespace jamnet {

using protocol::jmid::Event;
using protocol::jmid::Kind;

namespace {

template <class Pred>
bool wait_until(Pred pred, Nanos limit) {
  const Nanos end = monotonic_ns() + limit;
  while (monotonic_ns() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

// A musical-looking stream: notes start and stop, controllers sweep, on 4 channels.
std::vector<Event> make_stream(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Event> out;
  std::map<std::pair<int, int>, bool> held;
  for (int i = 0; i < n; ++i) {
    Event e;
    e.channel = static_cast<std::uint8_t>(rng() % 4);
    const auto r = rng() % 10;
    if (r < 7) {
      const int note = 48 + static_cast<int>(rng() % 24);
      const bool on = !held[{e.channel, note}];
      held[{e.channel, note}] = on;
      e.kind = on ? Kind::kNoteOn : Kind::kNoteOff;
      e.data1 = static_cast<std::uint8_t>(note);
      e.data2 = static_cast<std::uint8_t>(on ? 40 + rng() % 80 : 64);
    } else {
      e.kind = Kind::kControlChange;
      e.data1 = static_cast<std::uint8_t>(rng() % 2 ? 1 : 74);
      e.data2 = static_cast<std::uint8_t>(rng() % 128);
    }
    out.push_back(e);
  }
  for (const auto& [key, on] : held) {  // end with every note released
    if (!on) continue;
    Event e;
    e.kind = Kind::kNoteOff;
    e.channel = static_cast<std::uint8_t>(key.first);
    e.data1 = static_cast<std::uint8_t>(key.second);
    out.push_back(e);
  }
  return out;
}

}  // namespace

Result<MidiLinkResult> run_midi_link(const MidiLinkExperiment& x) {
  MidiConfig mc;
  mc.burst.k = x.k;
  mc.burst.adaptive = x.adaptive;
  mc.latency_ns = x.latency_ns;
  mc.accept_copies = x.accept_copies;
  PeerConfig base;
  base.midi = mc;
  auto pair = detail::start_link_pair(base, x.link, x.seed);
  if (!pair) return std::unexpected(pair.error());
  auto* receiver = &pair->receiver;
  auto* sender = &pair->sender;
  auto* sim = &pair->sim;

  std::mutex mu;
  std::vector<MidiDelivery> got;
  (*receiver)->midi()->set_handler([&](const MidiDelivery& d) {
    std::lock_guard lock(mu);
    got.push_back(d);
  });

  const auto stream = make_stream(x.events, x.seed);
  Nanos next = monotonic_ns();
  for (const auto& e : stream) {
    sleep_until_ns(next);
    (*sender)->midi()->send({&e, 1});
    next += x.spacing_ns;
  }
  // Let the last bursts land and the journal repair what bursts could not.
  auto held = [&] {
    const auto st = (*receiver)->midi()->stats();
    std::size_t n = 0;
    for (const auto& s : st.senders) n += s.held_notes;
    return n;
  };
  // Controller state must match the sender's once the journal has spoken.
  auto wrong_controllers = [&] {
    std::uint64_t n = 0;
    for (int ch = 0; ch < 4; ++ch) {
      const auto want = (*sender)->midi()->sent_state(ch);
      const auto have = (*receiver)->midi()->state_from((*sender)->id(), ch);
      for (std::size_t c = 0; c < 128; ++c) n += want.cc[c] != have.cc[c];
    }
    return n;
  };
  std::this_thread::sleep_for(std::chrono::nanoseconds(x.latency_ns + 20'000'000));
  wait_until([&] { return held() == 0 && wrong_controllers() == 0; }, x.settle_ns);

  MidiLinkResult r;
  r.sent = stream.size();
  const auto sstats = (*sender)->midi()->stats();
  r.bytes_on_wire = sstats.bytes_sent;
  r.final_k = sstats.k;
  r.stuck_notes = held();
  {
    std::lock_guard lock(mu);
    std::map<std::uint64_t, int> seen;
    std::map<int, std::uint64_t> last_seq_on_channel;
    std::vector<double> offsets;
    for (const auto& d : got) {
      if (d.repair) {
        ++r.repairs;
        continue;
      }
      if (seen[d.event.seq]++ > 0) ++r.app_duplicates;
      ++r.delivered;
      auto& last = last_seq_on_channel[d.event.channel];
      if (d.event.seq < last) ++r.out_of_order;
      last = std::max(last, d.event.seq);
      offsets.push_back(static_cast<double>(d.played_ns - d.event.ts_ns) / 1e3);
      r.net_latency_us.push_back(static_cast<double>(d.received_ns - d.event.ts_ns) / 1e3);
    }
    const double median = percentile_of(offsets, 0.5);
    for (double o : offsets) r.timing_err_us.push_back(o - median);
  }
  r.delivered_rate = r.sent ? static_cast<double>(r.delivered) / static_cast<double>(r.sent) : 0;

  r.wrong_controllers = wrong_controllers();

  (*sender)->stop();
  (*receiver)->stop();
  (*sim)->stop();
  return r;
}

}  // namespace jamnet
