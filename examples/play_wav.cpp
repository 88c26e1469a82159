// Joins a JAMNet session and plays a WAV file to everyone in it (docs/api.md).
//   play_wav SESSION FILE.wav [HOST:PORT of a peer, when there is no multicast]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>
#include "jamnet/engine/io/wav_file.hpp"
#include "jamnet/peer/session.hpp"

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: play_wav SESSION FILE.wav [HOST:PORT]\n"), 2;
  auto wav = jamnet::engine::io::read_audio_file(argv[2]);
  if (!wav) return std::fprintf(stderr, "%s\n", wav.error().message.c_str()), 1;
  jamnet::SessionOptions o;
  o.peer.name = "player";
  o.peer.session = jamnet::session_id_from(argv[1]);
  if (argc > 3) o.peer.connect.push_back(*jamnet::net::Endpoint::parse(argv[3]));
  o.audio = jamnet::AudioIo::kHost;  // we are the audio thread: process() below
  o.channels = wav->channels;
  o.sample_rate = static_cast<std::uint32_t>(wav->sample_rate);
  auto session = jamnet::Session::start(o);
  if (!session) return std::fprintf(stderr, "%s\n", session.error().message.c_str()), 1;
  jamnet::Session& s = **session;
  while (s.peer().peers().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const std::size_t block = 256, n = wav->frames(), c = o.channels;
  std::vector<float> in(block * c), out(block * c);
  std::vector<const float*> ins(c);  std::vector<float*> outs(c);
  for (std::size_t ch = 0; ch < c; ++ch) ins[ch] = &in[ch * block], outs[ch] = &out[ch * block];
  jamnet::Nanos t = jamnet::monotonic_ns();
  for (std::size_t f = 0; f < n; f += block) {  // one block per block's time, as a sound card would
    const std::size_t k = std::min(block, n - f);
    for (std::size_t ch = 0; ch < c; ++ch)
      for (std::size_t i = 0; i < k; ++i) in[ch * block + i] = wav->samples[(f + i) * c + ch];
    jamnet::sleep_until_ns(t += static_cast<jamnet::Nanos>(k) * 1'000'000'000 / wav->sample_rate);
    s.process(ins.data(), outs.data(), static_cast<std::uint32_t>(k));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last packets leave
  s.stop();  // bye
}
