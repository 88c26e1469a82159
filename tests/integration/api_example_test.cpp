// docs/api.md's example program (examples/play_wav.cpp), built by CMake and
// run here: it joins a session and plays a WAV file of tones; a second member
// (a Session on the host-driven backend, driven in real time by this test)
// must hear it with a tone-fit segSNR >= 30 dB.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "../support/child_process.hpp"
#include "jamnet/engine/io/wav_file.hpp"
#include "jamnet/media/audio_quality.hpp"
#include "jamnet/peer/session.hpp"

namespace jamnet {
namespace {

TEST(ApiExample, PlayWavReachesASecondMember) {
  constexpr int kRate = 48000;
  const std::vector<double> freqs{311.0, 887.0};
  std::vector<float> tone(static_cast<std::size_t>(kRate * 3));
  for (std::size_t i = 0; i < tone.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    tone[i] = static_cast<float>(0.3 * std::sin(2 * std::numbers::pi * freqs[0] * t) +
                                 0.3 * std::sin(2 * std::numbers::pi * freqs[1] * t));
  }
  const std::string wav = "/tmp/jamnet-api-example-" + std::to_string(::getpid()) + ".wav";
  ASSERT_TRUE(engine::io::write_wav(wav, tone, 1, kRate));

  const std::string session = "api-example-" + std::to_string(::getpid());
  SessionOptions o;
  o.peer.name = "listener";
  o.peer.session = session_id_from(session);
  o.peer.multicast.reset();
  o.audio = AudioIo::kHost;
  o.channels = 1;
  o.sample_rate = kRate;
  o.block_frames = 256;
  auto s = Session::start(o);
  ASSERT_TRUE(s) << s.error().message;
  testing::Child player =
      testing::spawn({PLAY_WAV_BIN, session, wav, (*s)->peer().local().to_string()});

  std::vector<float> rec, out(256);
  float* outs[1] = {out.data()};
  const Nanos start = monotonic_ns();
  Nanos t = start, player_done = 0;
  while (t - start < 15'000'000'000) {
    t += 256LL * 1'000'000'000 / kRate;
    sleep_until_ns(t);
    (*s)->process(nullptr, outs, 256, t);
    rec.insert(rec.end(), out.begin(), out.end());
    if (player_done == 0 && ::waitpid(player.pid, nullptr, WNOHANG) == player.pid) {
      player.pid = -1;
      player_done = t;
    }
    if (player_done != 0 && t - player_done > 500'000'000) break;
  }
  EXPECT_NE(player_done, 0) << "play_wav did not finish in 15 s";
  (*s)->stop();
  std::remove(wav.c_str());
  media::SegSnrConfig sc;
  sc.segment = kRate / 50;
  const auto r = media::tone_segsnr_db(rec, kRate, freqs, sc, 1000);
  EXPECT_GE(r.segsnr_db, 30.0) << r.silent_segments << " silent segments";
  EXPECT_GE(r.seconds, 2.5);
  EXPECT_LE(r.silent_segments, 2u);
}

}  // namespace
}  // namespace jamnet
