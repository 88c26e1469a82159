// Adaptive jitter buffer for one incoming JDAT stream (docs/jdat.md,
// "Jitter buffer").
//
// Single-threaded and real-time safe after construction: the owner drains
// packets from the network thread (an SPSC queue) into push() on the audio
// thread, then calls pull() once per audio cycle. Nothing here allocates,
// locks or blocks after the constructor.
//
// - Target depth: a quantile (default p95) of the measured arrival jitter
//   over a sliding window, plus a margin, plus what the playout mechanics
//   need (the resampler's look-ahead and one pull); raised at once when
//   jitter grows, lowered slowly when it shrinks.
// - Clock drift between sender and receiver is absorbed by resampling the
//   stream by a few ppm (libsamplerate, ratio ramped, no clicks): the
//   correction is a drift estimate (slope of the uncorrected depth) plus a
//   proportional term on the depth error.
// - A packet whose frames have already been played is dropped and counted
//   (late). A missing packet at playout is concealed by PNBTR (one Concealer
//   per channel). An empty buffer (underrun) also conceals, but holds the
//   playout position, so packets that were only delayed still play.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/media/pnbtr/concealer.hpp"

namespace jamnet::media::jdat {

// libsamplerate converter used for the drift correction (SRC_SINC_*). The
// passband (80 / 90 / 97 % of Nyquist) is what survives the buffer unchanged.
enum class ResamplerQuality { kSincFastest, kSincMedium, kSincBest };

struct JitterBufferConfig {
  int channels = 1;
  int frames_per_packet = 64;
  int sample_rate = 48000;  // the stream's (sender's) rate
  // The rate pull() plays at, when it differs from the stream's (a 44.1 kHz
  // sender heard on a 48 kHz device): the resampler converts by the ratio of
  // the two on top of its drift correction. 0: the stream's rate.
  int output_rate = 0;
  int max_pull_frames = 512;          // largest pull() size (larger pulls are split)
  int capacity_packets = 256;         // ring slots; a packet further ahead is dropped (overflow)
  double quantile = 0.95;             // of arrival jitter
  Nanos window_ns = 2'000'000'000;    // jitter history
  Nanos margin_ns = 250'000;          // added to the quantile
  Nanos min_target_ns = 0;            // the target is never below one packet period
  Nanos max_target_ns = 200'000'000;  // also: an underrun this long re-anchors the playout
  Nanos fall_ns_per_s = 2'000'000;    // how fast the target may fall (rises are immediate)
  double max_correction_ppm = 1000;   // resampling bound
  ResamplerQuality resampler = ResamplerQuality::kSincFastest;
  // On an underrun, hold the playout position while concealing, so packets
  // that were only delayed still play (no audio lost; the delay grows and is
  // then wound back at up to max_correction_ppm). false: conceal the missing
  // packet and move on, as for a loss (the delay stays; the packet, if it
  // comes, is late).
  bool hold_on_underrun = true;
  // pull() comes on a regular grid (an audio device's cycles, a timer), as
  // the pull() comment asks: the target then counts the wait from a packet's
  // readiness to the next pull on that grid, instead of a whole pull for an
  // unknown phase (half a pull less latency on average). false: any timing
  // (the safe default; AudioSession turns it on for device-clocked playout).
  bool aligned_pulls = false;
  pnbtr::LpcConfig pnbtr;  // predictor per channel
  pnbtr::ConcealerConfig concealer;
};

struct JitterBufferStats {
  std::uint64_t packets = 0;  // accepted into the buffer
  std::uint64_t played = 0;   // packets played out (real audio)
  std::uint64_t late = 0;     // arrived after their frames were played: dropped
  std::uint64_t duplicates = 0;
  std::uint64_t overflow = 0;          // too far ahead of playout: dropped
  std::uint64_t misaligned = 0;        // first_frame off the stream's packet grid: dropped
  std::uint64_t malformed = 0;         // wrong number of samples: dropped
  std::uint64_t stale = 0;             // skipped at a (re)start to meet the target
  std::uint64_t underruns = 0;         // pulls that found the buffer empty
  std::uint64_t missing_packets = 0;   // packets concealed at playout: lost or late
  std::uint64_t concealed_frames = 0;  // frames the Concealers produced (gaps and underruns)
  std::uint64_t inserted_frames = 0;   // of those, inserted by underruns (playout held)
  std::uint64_t resyncs = 0;           // sender jumped (restart): playout re-anchored
  std::uint64_t reanchors = 0;         // underrun longer than max_target_ns: playout re-anchored
  Nanos jitter_ns = 0;                 // current quantile of arrival jitter
  Nanos target_ns = 0;                 // current target depth
  // Playout delay behind the earliest-arrival line (each frame's send time on
  // the minimum-transit path over the window): the audio that would be
  // buffered if packets came with minimum delay. The controlled quantity.
  Nanos depth_ns = 0;
  Nanos buffered_ns = 0;      // audio actually buffered ahead of playout at the last pull
  double correction_ppm = 0;  // current resampling correction (+ = playing faster)
  double drift_ppm = 0;       // sender's sample clock vs our pulls (+ = faster); 0 for 5 s
  bool playing = false;       // false until the first packet reached the target
};

class JitterBuffer {
 public:
  explicit JitterBuffer(const JitterBufferConfig& config);
  ~JitterBuffer();
  JitterBuffer(const JitterBuffer&) = delete;
  JitterBuffer& operator=(const JitterBuffer&) = delete;

  // A packet: frames_per_packet interleaved frames starting at the sender's
  // frame counter first_frame, which arrived at local time arrival_ns.
  void push(std::uint64_t first_frame, std::span<const float> interleaved,
            Nanos arrival_ns) noexcept;
  // A packet known lost for good (e.g. JELLIE could not recover it): lets the
  // buffer conceal it without waiting. Optional.
  void mark_lost(std::uint64_t first_frame) noexcept;
  // Fill out (frames * channels, interleaved) for playout at local time now_ns:
  // when the first frame of out is heard. Pass a smooth clock (the audio
  // device's cycle time), not the callback's wake-up time: its jitter would
  // read as depth error.
  void pull(std::span<float> out, Nanos now_ns) noexcept;

  const JitterBufferStats& stats() const noexcept;
  // Time each packet spent in the buffer, arrival to the playout of its first
  // frame: the latency the buffer adds. Ring of the last 4096 packets (ns),
  // oldest first; copy out on a non-audio thread when the stream is stopped.
  std::vector<Nanos> held_ns_history() const;
  // Frames of look-ahead the resampler needs: a packet must be in the buffer
  // this long before its first frame plays (part of the target).
  int resampler_lookahead_frames() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamnet::media::jdat
