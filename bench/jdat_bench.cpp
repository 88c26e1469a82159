// JDAT: what the JSONL debug format costs in bandwidth against BINARY, and
// the latency the adaptive jitter buffer adds on a link with 1 ms +- 0.5 ms
// jitter (two real-time peers through netsim on loopback).
#include <algorithm>
#include <cstdio>

#include "bench_common.hpp"
#include "jamnet/core/sample_stats.hpp"
#include "experiments/audio_link_experiment.hpp"
#include "jamnet/protocol/jdat.hpp"
#include "jamnet/protocol/toast_frame.hpp"
#include "signals/signals.hpp"

namespace jamnet::bench {

namespace {

namespace jdat = protocol::jdat;

// Wire bytes (TOAST frames) of a signal sent as 64-frame packets in both formats.
std::pair<double, double> wire_bytes(const std::vector<float>& signal, jdat::SampleFormat f) {
  const std::size_t frames = jdat::kDefaultFrames;
  std::vector<std::uint32_t> words(frames);
  std::vector<std::uint8_t> buf(jdat::kBinaryHeaderSize + frames * 4);
  double binary = 0, jsonl = 0;
  jdat::JdatHeader h;
  h.format = f;
  h.frames = frames;
  for (std::size_t at = 0; at + frames <= signal.size(); at += frames) {
    h.first_frame = 1'000'000'000 + at;
    jdat::to_words(f, std::span(signal).subspan(at, frames), words);
    auto n = jdat::encode_binary(h, words, buf);
    if (!n) throw std::runtime_error("jdat encode: " + n.error().message);
    binary += static_cast<double>(protocol::encoded_size(*n));
    jsonl += static_cast<double>(protocol::encoded_size(jdat::encode_jsonl(h, words).size()));
  }
  return {binary, jsonl};
}

// The shared VM can stall a real-time thread for tens of ms, which raises the
// buffer's target for the rest of a run or shifts a whole run's alignment.
// Run the link `runs` times and keep the run at the median of `figure`, so
// every reported number comes from one real run, and report the spread.
template <class Figure>
AudioLinkResult median_run(const AudioLinkExperiment& x, int runs, Figure figure,
                           const std::string& key, Metrics& out) {
  std::vector<AudioLinkResult> all;
  for (int i = 0; i < runs; ++i) {
    auto r = run_audio_link(x);
    if (!r) throw std::runtime_error("jdat: audio link: " + r.error().message);
    all.push_back(std::move(*r));
  }
  std::sort(all.begin(), all.end(), [&](const AudioLinkResult& a, const AudioLinkResult& b) {
    return figure(a) < figure(b);
  });
  out[key + "_min"] = figure(all.front());
  out[key + "_max"] = figure(all.back());
  return std::move(all[all.size() / 2]);
}

double held_ms_at(const AudioLinkResult& r, double q) {
  std::vector<double> held_ms;
  for (Nanos h : r.held_ns) held_ms.push_back(static_cast<double>(h) * 1e-6);
  return percentile_of(held_ms, q);
}

}  // namespace

void run_jdat_bench(const BenchOptions& opts, Metrics& out) {
  auto music = signals::music(opts.workdir, opts.quick ? 4 : 10);
  const auto signal = music ? *music : signals::chords(opts.quick ? 4 : 10);
  if (!music)
    std::fprintf(stderr, "jdat: no fluidsynth music (%s); chords instead\n",
                 music.error().message.c_str());
  for (auto f :
       {jdat::SampleFormat::kFloat32, jdat::SampleFormat::kInt24, jdat::SampleFormat::kInt16}) {
    const auto [binary, jsonl] = wire_bytes(signal, f);
    const std::string name(jdat::to_string(f));
    out["jdat.jsonl_to_binary_bytes_ratio_" + name] = jsonl / binary;
    out["jdat.binary_kbps_" + name] =
        binary * 8 / (static_cast<double>(signal.size()) / 48000) / 1e3;
    if (f == jdat::SampleFormat::kFloat32) out["jdat.jsonl_to_binary_bytes_ratio"] = jsonl / binary;
  }

  // The jitter buffer on a link with 1 ms +- 0.5 ms (uniform) jitter, no loss.
  AudioLinkExperiment x;
  x.link.delay = 1'000'000;
  x.link.jitter = 500'000;
  x.signal = signals::chords(opts.quick ? 3 : 10);
  x.audio.period_frames = jdat::kDefaultFrames;
  const int runs = opts.quick ? 1 : 3;
  out["jdat.link_runs"] = runs;
  const auto r = median_run(
      x, runs, [](const AudioLinkResult& a) { return held_ms_at(a, 0.50); },
      "jdat.jitterbuffer_added_ms_p50", out);
  out["jdat.jitterbuffer_added_ms_p50"] = held_ms_at(r, 0.50);
  out["jdat.jitterbuffer_added_ms_p95"] = held_ms_at(r, 0.95);
  out["jdat.jitterbuffer_target_ms"] = static_cast<double>(r.receiver.jitter.target_ns) * 1e-6;
  out["jdat.jitterbuffer_concealed_blocks"] = static_cast<double>(r.receiver.concealed_blocks);
  std::fprintf(
      stderr,
      "jdat: jitter buffer on 1 ms +- 0.5 ms: held p50 %.3f ms p95 %.3f ms, target %.3f ms, "
      "%llu concealed (realtime threads: %s)\n",
      out["jdat.jitterbuffer_added_ms_p50"], out["jdat.jitterbuffer_added_ms_p95"],
      out["jdat.jitterbuffer_target_ms"],
      static_cast<unsigned long long>(r.receiver.concealed_blocks), r.realtime ? "yes" : "no");

  // JELLIE against plain JDAT + PNBTR on the same 10%-loss link.
  for (bool jellie : {false, true}) {
    AudioLinkExperiment y;
    y.link.loss = 0.10;
    y.link.delay = 1'000'000;
    y.link.jitter = 500'000;
    y.signal = signal;
    y.audio.jellie = jellie;
    // One clock on both ends: no drift to correct, and an uncorrected buffer
    // passes samples through unwarped, so a single-lag SNR measures the link.
    y.audio.jitter.max_correction_ppm = 0;
    y.seed = 7;
    const std::string key =
        jellie ? "jdat.jellie_link_segsnr_db_loss10" : "jdat.plain_link_segsnr_db_loss10";
    const auto z = median_run(
        y, runs, [](const AudioLinkResult& a) { return a.segsnr_db; }, key, out);
    out[key] = z.segsnr_db;
    std::fprintf(stderr, "jdat: %s at 10%% loss: segSNR %.1f dB, %llu blocks concealed\n",
                 jellie ? "JELLIE" : "plain JDAT + PNBTR", z.segsnr_db,
                 static_cast<unsigned long long>(z.receiver.concealed_blocks));
  }
}

}  // namespace jamnet::bench
