// Audio between two real peers through an in-process netsim relay, in real
// time: what arrives is what was sent, losses are recovered (JELLIE) or
// concealed (PNBTR), and bad configurations are refused.
#include <gtest/gtest.h>

#include <cmath>

#include "experiments/audio_link_experiment.hpp"
#include "jamnet/peer/peer.hpp"
#include "signals/signals.hpp"

namespace jamnet {
namespace {

AudioLinkExperiment link_with(double seconds, double loss) {
  AudioLinkExperiment x;
  x.signal = signals::chords(seconds);
  x.link.loss = loss;
  x.seed = 3;
  // Both peers run on this machine's clock: there is no drift to absorb, and
  // with the resampler steering the depth the playout would be time-warped
  // against the reference by a few samples, which a single-lag SNR cannot
  // tell from noise. With the correction off the buffer passes samples
  // through unchanged, so the SNR measures transport, JELLIE and PNBTR.
  x.audio.jitter.max_correction_ppm = 0;
  return x;
}

// The VM can stall a thread for tens of ms; a stall makes the playout miss
// packets that did arrive. Allow a few such blocks, never a systematic loss.
std::uint64_t stall_allowance(const AudioLinkResult& r) {
  return 10 + r.sender.blocks_sent / 50;
}

// A host stall long enough to make the buffer drop a run of late packets and
// re-anchor shifts the playout for the rest of the run, which a single-lag
// SNR reads as noise. Such a run measures the VM, not the code, and its own
// threads show it: they woke late. Only a run whose threads woke on time
// (within 5 ms) is judged, and it is the run judged, not the best of several;
// a run with a measured stall is repeated, up to three in all, and when every
// one stalled the test says "skipped" with the stalls it saw.
constexpr Nanos kHostStall = 5'000'000;

Result<AudioLinkResult> run_link(const AudioLinkExperiment& x, std::string& stalls) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = run_audio_link(x);
    if (!r || r->worst_wake_late_ns <= kHostStall) return r;
    stalls += (stalls.empty() ? "" : ", ") + std::to_string(r->worst_wake_late_ns / 1000) + " us";
  }
  return make_error(Errc::kTimeout, "the host stalled the test's threads in every run");
}

#define RUN_LINK(var, x)                                                                        \
  std::string var##_stalls;                                                                     \
  auto var = run_link(x, var##_stalls);                                                         \
  if (!var && !var##_stalls.empty()) GTEST_SKIP() << "host stalls in 3 runs: " << var##_stalls; \
  ASSERT_TRUE(var) << var.error().message

std::string describe(const AudioLinkResult& r) {
  const auto& j = r.receiver.jitter;
  return "sent " + std::to_string(r.sender.blocks_sent) + " blocks, received " +
         std::to_string(r.receiver.blocks) + ", missing " + std::to_string(j.missing_packets) +
         ", underruns " + std::to_string(j.underruns) + ", late " + std::to_string(j.late) +
         ", overflow " + std::to_string(j.overflow) + ", resyncs " + std::to_string(j.resyncs) +
         ", target " + std::to_string(j.target_ns) + " ns, depth " + std::to_string(j.depth_ns) +
         " ns, correction " + std::to_string(j.correction_ppm) + " ppm, lag " +
         std::to_string(r.lag_frames) + ", corr " + std::to_string(r.correlation) + ", realtime " +
         (r.realtime ? "yes" : "no");
}

TEST(AudioSession, CleanLinkDeliversTheSignal) {
  RUN_LINK(r, link_with(2.0, 0.0));
  SCOPED_TRACE(describe(*r));
  EXPECT_GT(r->correlation, 0.99);
  EXPECT_LE(r->receiver.concealed_blocks, stall_allowance(*r));
  EXPECT_EQ(r->receiver.decode_errors, 0u);
  EXPECT_EQ(r->receiver.format_mismatch, 0u);
  EXPECT_GT(r->segsnr_db, 25.0);
  EXPECT_FALSE(r->held_ns.empty());
}

TEST(AudioSession, JsonlWireFormatCarriesTheSameAudio) {
  auto x = link_with(1.5, 0.0);
  x.audio.wire = protocol::FormatType::kCompactJsonl;
  RUN_LINK(r, x);
  SCOPED_TRACE(describe(*r));
  EXPECT_EQ(r->receiver.decode_errors, 0u);
  EXPECT_GT(r->correlation, 0.99);
  EXPECT_GT(r->segsnr_db, 25.0);
}

TEST(AudioSession, JellieRecoversStreamsLostOnTheLink) {
  auto x = link_with(2.0, 0.10);
  x.audio.jellie = true;
  x.audio.format = protocol::jdat::SampleFormat::kInt24;
  RUN_LINK(r, x);
  SCOPED_TRACE(describe(*r));
  // 10% of packets lost: about 1 - 0.9^4 - 4 * 0.1 * 0.9^3 = 5% of blocks
  // lose 2+ streams, 34% lose at least one; all with 2+ left are exact.
  EXPECT_GT(r->receiver.jellie_recovered, r->sender.blocks_sent / 10);
  EXPECT_LT(r->receiver.jellie_lost, r->sender.blocks_sent / 50 + 5);
  EXPECT_GT(r->segsnr_db, 25.0);
}

TEST(AudioSession, PnbtrConcealsPlainJdatLoss) {
  RUN_LINK(r, link_with(2.0, 0.10));
  SCOPED_TRACE(describe(*r));
  EXPECT_GT(r->receiver.jitter.missing_packets, r->sender.blocks_sent / 20);
  EXPECT_GT(r->receiver.concealed_blocks, 0u);
  EXPECT_GT(r->correlation, 0.9);
}

TEST(AudioSession, RefusesJellieOnMoreThanOneChannel) {
  PeerConfig c;
  c.session = Uuid::random();
  c.multicast.reset();
  AudioConfig a;
  a.channels = 2;
  a.jellie = true;
  c.audio = a;
  auto p = Peer::start(c);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("JELLIE"), std::string::npos);
  a.channels = 1;
  a.frames_per_packet = 8;
  a.jellie = false;
  c.audio = a;
  auto q = Peer::start(c);
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message.find("frames per packet"), std::string::npos);
}

}  // namespace
}  // namespace jamnet
