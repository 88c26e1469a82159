// One audio stream between two in-process peers through a netsim relay on
// loopback, in real time, measured: what the demo, the integration test and
// the jitter-buffer benchmark share.
#pragma once

#include <cstdint>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/net/impairment.hpp"
#include "jamnet/net/netsim.hpp"
#include "jamnet/peer/audio_session.hpp"

namespace jamnet {

struct AudioLinkExperiment {
  net::Impairment link;       // applied in both directions
  std::vector<float> signal;  // mono; played by the sender in real time
  AudioConfig audio;          // mono; the same on both peers
  std::uint64_t seed = 1;
  Nanos tail_ns = 300'000'000;  // keep playing out after the last block
};

struct AudioLinkResult {
  std::vector<float> received;  // the receiver's playout, aligned to signal (same length)
  std::int64_t lag_frames = 0;  // playout frames before the first aligned sample
  double correlation = 0;
  double snr_db = 0;
  double segsnr_db = 0;
  AudioStats sender;
  AudioReceiverStats receiver;
  net::NetsimReport netsim;
  std::vector<Nanos> held_ns;  // per packet: arrival to playout (the jitter buffer's delay)
  bool realtime = false;       // sender and playout threads got SCHED_FIFO
  // The host's own stall: the latest either thread woke after its deadline
  // (or after its previous step, when that overran the deadline).
  // A run whose threads were held off longer than the jitter buffer's margin
  // measured the machine, not the link.
  Nanos worst_wake_late_ns = 0;
};

Result<AudioLinkResult> run_audio_link(const AudioLinkExperiment& x);

}  // namespace jamnet
