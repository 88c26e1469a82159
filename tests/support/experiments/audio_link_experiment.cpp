#include "experiments/audio_link_experiment.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "jamnet/media/audio_quality.hpp"
#include "jamnet/peer/peer.hpp"
#include "jamnet/platform/realtime.hpp"
#include "link_pair.hpp"

namespace jamnet {

Result<AudioLinkResult> run_audio_link(const AudioLinkExperiment& x) {
  if (x.audio.channels != 1)
    return make_error(Errc::kInvalidArgument, "the audio link experiment streams one channel");
  if (x.signal.empty()) return make_error(Errc::kInvalidArgument, "no signal to stream");
  PeerConfig base;
  base.audio = x.audio;
  auto pair = detail::start_link_pair(base, x.link, x.seed);
  if (!pair) return std::unexpected(pair.error());
  auto* receiver = &pair->receiver;
  auto* sender = &pair->sender;
  auto* sim = &pair->sim;

  const auto frames = static_cast<std::size_t>(x.audio.period_frames);
  const Nanos period = static_cast<Nanos>(frames) * 1'000'000'000 / x.audio.sample_rate;
  const std::size_t blocks = (x.signal.size() + frames - 1) / frames;
  const auto tail_blocks = static_cast<std::size_t>(x.tail_ns / period) + 1;
  std::vector<float> padded(x.signal);
  padded.resize(blocks * frames, 0.0f);

  // Playout starts when the sender starts; it plays silence until the
  // jitter buffer has reached its target, so the lag is the buffer's delay
  // plus the network's.
  std::vector<float> played((blocks + tail_blocks) * frames, 0.0f);
  const Uuid from = (*sender)->id();
  std::atomic<bool> rt_send{false}, rt_play{false};
  std::atomic<Nanos> late_send{0}, late_play{0};
  // How late a thread woke for reasons not its own: measured from its
  // deadline, or from when its last step ended if that overran the deadline
  // (our own work, such as concealing a lost packet under ASan, is not a
  // host stall).
  const auto wake_at = [](Nanos at, Nanos last_done, std::atomic<Nanos>& worst) {
    sleep_until_ns(at);
    const Nanos late = monotonic_ns() - std::max(at, last_done);
    if (late > worst.load(std::memory_order_relaxed)) worst.store(late, std::memory_order_relaxed);
  };
  const Nanos start = monotonic_ns() + 20'000'000;
  std::thread send_thread([&] {
    rt_send = platform::make_current_thread_realtime(2);
    Nanos done = 0;
    for (std::size_t b = 0; b < blocks; ++b) {
      wake_at(start + static_cast<Nanos>(b) * period, done, late_send);
      (*sender)->audio()->send_block(std::span<const float>(padded.data() + b * frames, frames));
      done = monotonic_ns();
    }
  });
  std::optional<AudioReceiverStats> at_end;  // once the last block has had time to play out
  std::thread play_thread([&] {
    rt_play = platform::make_current_thread_realtime(2);
    Nanos done = 0;
    for (std::size_t b = 0; b < blocks + tail_blocks; ++b) {
      // Half a period after the sender's instant: the phase of two
      // unrelated audio clocks is arbitrary; this is the middle case.
      const Nanos at = start + static_cast<Nanos>(b) * period + period / 2;
      wake_at(at, done, late_play);
      (*receiver)->audio()->pull(from, std::span<float>(played.data() + b * frames, frames), at);
      done = monotonic_ns();
      if (!at_end && b >= blocks) {
        auto st = (*receiver)->audio()->stats_from(from);
        if (st && stream_played_out(*st, static_cast<Nanos>(b - blocks) * period,
                                    x.link.delay + 2 * x.link.jitter))
          at_end = st;
      }
    }
  });
  send_thread.join();
  play_thread.join();

  AudioLinkResult r;
  r.realtime = rt_send && rt_play;
  r.worst_wake_late_ns = std::max(late_send.load(), late_play.load());
  r.sender = (*sender)->audio()->stats();
  if (!at_end) at_end = (*receiver)->audio()->stats_from(from);
  if (at_end) r.receiver = *at_end;
  r.held_ns = (*receiver)->audio()->held_ns_history(from);
  r.netsim = (*sim)->report();
  (*sender)->stop();
  (*receiver)->stop();
  (*sim)->stop();

  auto a = media::align_playout(x.signal, played, static_cast<std::int64_t>(tail_blocks * frames));
  r.received = std::move(a.received);
  r.lag_frames = a.lag_frames;
  r.correlation = a.correlation;
  r.snr_db = a.snr_db;
  r.segsnr_db = a.segsnr_db;
  return r;
}

}  // namespace jamnet
