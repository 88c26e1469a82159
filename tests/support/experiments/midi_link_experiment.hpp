// One MIDI stream between two in-process peers through a netsim relay on
// loopback, measured: what the loss tests, the benchmark and the demo share.
#pragma once

#include <cstdint>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/net/impairment.hpp"

namespace jamnet {

struct MidiLinkExperiment {
  net::Impairment link;  // applied in both directions
  int k = 3;
  bool adaptive = false;
  int accept_copies = 1;
  int events = 400;  // note on/off pairs and controller moves, on 4 channels
  Nanos spacing_ns = 2'000'000;
  Nanos latency_ns = 5'000'000;
  std::uint64_t seed = 1;
  Nanos settle_ns =
      2'000'000'000;  // after the last event: wait this long at most for the journal to repair
};

struct MidiLinkResult {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;       // events received as events (not repairs)
  std::uint64_t app_duplicates = 0;  // an event handed to the application twice: must be 0
  std::uint64_t out_of_order = 0;    // per channel, an event played before an earlier one
  std::uint64_t repairs = 0;         // corrective events generated from the journal
  std::uint64_t stuck_notes =
      0;  // notes the receiver still held at the end while the sender held none
  std::uint64_t wrong_controllers = 0;  // controller values differing from the sender's at the end
  std::uint64_t bytes_on_wire = 0;      // all MIDI frames of the sender, copies, journal, feedback
  double delivered_rate = 0;
  std::vector<double> timing_err_us;  // played - (ts + constant offset), constant removed (median)
  std::vector<double>
      net_latency_us;  // first copy arrival - sender timestamp (one clock on loopback)
  int final_k = 0;
};

Result<MidiLinkResult> run_midi_link(const MidiLinkExperiment& x);

}  // namespace jamnet
