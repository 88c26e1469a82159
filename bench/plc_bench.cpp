// Loss-concealment quality: PNBTR against zero-fill, repeat-last-block and
// libopus's own packet-loss concealment, on the same signals with the same
// loss patterns, plus what PNBTR costs per concealed block.
//
// Method notes (repeated in the table printed to stderr):
// - The comparison uses 120-sample packets (2.5 ms at 48 kHz), the smallest
//   frame libopus (CELT) codes, so every method fills gaps of the same size.
//   PNBTR, zero and repeat also run at 64 samples, the JDAT default packet.
// - Zero, repeat and PNBTR run through the same pnbtr::Concealer (same
//   crossfade back into real audio, same fade over long gaps): only the
//   predictor differs. Their reference is the original signal.
// - Opus: RESTRICTED_LOWDELAY (CELT only), 48 kHz mono, 120-sample frames,
//   256 kbit/s, complexity 10, told the expected loss rate; lost packets are
//   decoded with opus_decode_float(dec, NULL, 0, out, 120, 0). Its reference is
//   its OWN loss-free decode of the same packets, so coding noise is not
//   counted, only the concealment damage (including the decoder's recovery
//   after a gap). Both decodes share the codec delay: no alignment needed.
#include <opus.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "jamnet/media/pnbtr/concealer.hpp"
#include "jamnet/media/pnbtr/predictor.hpp"
#include "quality.hpp"
#include "signals/signals.hpp"

namespace jamnet::bench {
namespace {

namespace pnbtr = media::pnbtr;

constexpr int kRate = 48000;
constexpr int kBlock = 120;     // comparison packet: libopus's smallest CELT frame
constexpr int kJdatBlock = 64;  // JDAT's default packet
constexpr int kSegment = 960;   // 20 ms, a multiple of both packet sizes
constexpr int kOpusBitrate = 256000;
constexpr int kOpusComplexity = 10;
constexpr double kMeanBurst = 3.0;  // Gilbert-Elliott mean burst, in packets

struct LossCase {
  const char* key;    // as in plc.<signal>.<key>.<method>.segsnr_db
  const char* label;  // for the table
  double loss;
  bool bursty;
};
constexpr LossCase kLosses[] = {
    {"1", "1%", 0.01, false},   {"5", "5%", 0.05, false},         {"10", "10%", 0.10, false},
    {"20", "20%", 0.20, false}, {"burst", "GE 5%/3", 0.05, true},
};
constexpr std::size_t kNumLosses = std::size(kLosses);

enum class Method { kZero, kRepeat, kPnbtr, kOpus, kZero64, kRepeat64, kPnbtr64 };
struct MethodInfo {
  Method m;
  const char* key;
  const char* label;
  int block;
};
constexpr MethodInfo kMethods[] = {
    {Method::kZero, "zero", "zero", kBlock},
    {Method::kRepeat, "repeat", "repeat", kBlock},
    {Method::kPnbtr, "pnbtr", "PNBTR", kBlock},
    {Method::kOpus, "opus", "opus", kBlock},
    {Method::kZero64, "zero64", "zero@64", kJdatBlock},
    {Method::kRepeat64, "repeat64", "repeat@64", kJdatBlock},
    {Method::kPnbtr64, "pnbtr64", "PNBTR@64", kJdatBlock},
};
constexpr std::size_t kNumMethods = std::size(kMethods);

struct Signal {
  std::string name;
  std::vector<float> x;  // padded to a whole number of 20 ms segments
};

// The seed depends on the loss case and the packet size only: every method
// and every signal at one packet size sees the same sequence of losses.
std::vector<bool> loss_pattern(std::size_t case_index, std::size_t blocks, int block) {
  const LossCase& c = kLosses[case_index];
  const std::uint64_t seed =
      0x504e4254'52000000ull + case_index * 1000 + static_cast<unsigned>(block);
  return c.bursty ? bursty_loss(blocks, c.loss, kMeanBurst, seed)
                  : random_loss(blocks, c.loss, seed);
}

std::unique_ptr<pnbtr::Predictor> make_predictor(Method m, int block) {
  switch (m) {
    case Method::kZero:
    case Method::kZero64:
      return pnbtr::make_zero_predictor();
    case Method::kRepeat:
    case Method::kRepeat64:
      return pnbtr::make_repeat_predictor(block);
    default: {
      pnbtr::LpcConfig lc;
      lc.max_block = block;
      return pnbtr::make_lpc_predictor(lc);
    }
  }
}

pnbtr::ConcealerConfig concealer_config(int block) {
  pnbtr::ConcealerConfig cc;
  cc.max_block = block;
  return cc;
}

std::vector<float> conceal(const std::vector<float>& x, const std::vector<bool>& lost, int block,
                           Method m) {
  pnbtr::Concealer c(make_predictor(m, block), concealer_config(block));
  std::vector<float> y(x.size());
  const std::size_t bs = static_cast<std::size_t>(block);
  for (std::size_t b = 0; b < lost.size(); ++b) {
    std::span<float> out(y.data() + b * bs, bs);
    if (lost[b]) {
      c.lost(out);
    } else {
      c.good(std::span<const float>(x.data() + b * bs, bs), out);
    }
  }
  return y;
}

// ---- libopus ---------------------------------------------------------------

struct OpusEncoderDeleter {
  void operator()(OpusEncoder* e) const { opus_encoder_destroy(e); }
};
struct OpusDecoderDeleter {
  void operator()(OpusDecoder* d) const { opus_decoder_destroy(d); }
};

std::vector<std::vector<unsigned char>> opus_encode_all(const std::vector<float>& x,
                                                        double expected_loss) {
  int err = 0;
  std::unique_ptr<OpusEncoder, OpusEncoderDeleter> enc(
      opus_encoder_create(kRate, 1, OPUS_APPLICATION_RESTRICTED_LOWDELAY, &err));
  if (err != OPUS_OK || !enc) throw std::runtime_error("plc: opus_encoder_create failed");
  opus_encoder_ctl(enc.get(), OPUS_SET_BITRATE(kOpusBitrate));
  opus_encoder_ctl(enc.get(), OPUS_SET_COMPLEXITY(kOpusComplexity));
  opus_encoder_ctl(enc.get(),
                   OPUS_SET_PACKET_LOSS_PERC(static_cast<int>(std::lround(expected_loss * 100))));
  std::vector<std::vector<unsigned char>> packets(x.size() / kBlock);
  unsigned char buf[1500];
  for (std::size_t b = 0; b < packets.size(); ++b) {
    const int n = opus_encode_float(enc.get(), x.data() + b * kBlock, kBlock, buf, sizeof buf);
    if (n < 0) throw std::runtime_error(std::string("plc: opus_encode: ") + opus_strerror(n));
    packets[b].assign(buf, buf + n);
  }
  return packets;
}

// Decodes every packet, or conceals the lost ones (lost empty: none lost).
std::vector<float> opus_decode_all(const std::vector<std::vector<unsigned char>>& packets,
                                   const std::vector<bool>& lost) {
  int err = 0;
  std::unique_ptr<OpusDecoder, OpusDecoderDeleter> dec(opus_decoder_create(kRate, 1, &err));
  if (err != OPUS_OK || !dec) throw std::runtime_error("plc: opus_decoder_create failed");
  std::vector<float> y(packets.size() * kBlock);
  for (std::size_t b = 0; b < packets.size(); ++b) {
    float* out = y.data() + b * kBlock;
    const bool is_lost = !lost.empty() && lost[b];
    const int n =
        is_lost ? opus_decode_float(dec.get(), nullptr, 0, out, kBlock, 0)
                : opus_decode_float(dec.get(), packets[b].data(),
                                    static_cast<opus_int32>(packets[b].size()), out, kBlock, 0);
    if (n != kBlock) throw std::runtime_error("plc: opus_decode returned " + std::to_string(n));
  }
  return y;
}

// ---- PNBTR cost --------------------------------------------------------------

struct CostStats {
  std::vector<double> lost_ns;       // every concealed block
  std::vector<double> gap_start_ns;  // the first block of each gap (Burg fit, pitch search)
  std::vector<double> good_ns;       // every received block (history update)
};

// PNBTR at 64-sample blocks, each call timed alone with the steady clock.
// Every pass does exactly the same work block for block, so each block keeps
// the least time any pass took: what is left is the block's own cost, not the
// hypervisor stealing the CPU in the middle of it.
CostStats time_pnbtr(const std::vector<float>& x, const std::vector<bool>& lost, int passes) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> best(lost.size(), std::numeric_limits<double>::infinity());
  std::vector<float> y(kJdatBlock);
  for (int p = 0; p < passes; ++p) {
    pnbtr::Concealer c(make_predictor(Method::kPnbtr64, kJdatBlock), concealer_config(kJdatBlock));
    for (std::size_t b = 0; b < lost.size(); ++b) {
      const float* in = x.data() + b * kJdatBlock;
      const auto t0 = Clock::now();
      if (lost[b]) {
        c.lost(y);
      } else {
        c.good(std::span<const float>(in, kJdatBlock), y);
      }
      const auto t1 = Clock::now();
      best[b] = std::min(best[b], std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
  }
  CostStats s;
  for (std::size_t b = 0; b < lost.size(); ++b) {
    if (lost[b]) {
      s.lost_ns.push_back(best[b]);
      if (b == 0 || !lost[b - 1]) s.gap_start_ns.push_back(best[b]);
    } else {
      s.good_ns.push_back(best[b]);
    }
  }
  return s;
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? std::nan("")
                   : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// ---- signals -------------------------------------------------------------------

void pad_to_segments(std::vector<float>& x) {
  const std::size_t n = (x.size() + kSegment - 1) / kSegment * kSegment;
  x.resize(n, 0.0f);
}

std::vector<Signal> load_signals(const BenchOptions& opts) {
  const double music_s = opts.quick ? 3.0 : 20.0;
  const double chords_s = opts.quick ? 3.0 : 10.0;
  std::vector<Signal> out;
  auto music = signals::music(opts.workdir, music_s, kRate);
  if (!music) throw std::runtime_error("plc: music signal: " + music.error().message);
  out.push_back({"music", std::move(*music)});
  out.push_back({"chords", signals::chords(chords_s, kRate)});
  auto speech = signals::speech(opts.workdir, kRate);
  if (!speech) throw std::runtime_error("plc: speech signal: " + speech.error().message);
  if (opts.quick && speech->size() > static_cast<std::size_t>(3 * kRate))
    speech->resize(static_cast<std::size_t>(3 * kRate));
  out.push_back({"speech", std::move(*speech)});
  for (auto& s : out) pad_to_segments(s.x);
  return out;
}

}  // namespace

void run_plc_bench(const BenchOptions& opts, Metrics& out) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::vector<Signal> sigs = load_signals(opts);

  // results[signal][loss][method]
  std::vector<std::array<std::array<SnrResult, kNumMethods>, kNumLosses>> res(sigs.size());
  std::vector<std::array<std::array<double, kNumMethods>, kNumLosses>> gap(sigs.size());
  std::array<double, kNumLosses> actual_loss{};  // music, 120-sample packets
  double burst_len = std::nan("");

  for (std::size_t si = 0; si < sigs.size(); ++si) {
    const Signal& sig = sigs[si];
    const std::size_t blocks120 = sig.x.size() / kBlock;
    const std::size_t blocks64 = sig.x.size() / kJdatBlock;
    for (std::size_t li = 0; li < kNumLosses; ++li) {
      const std::vector<bool> lost120 = loss_pattern(li, blocks120, kBlock);
      const std::vector<bool> lost64 = loss_pattern(li, blocks64, kJdatBlock);
      if (si == 0) {
        actual_loss[li] = loss_fraction(lost120);
        if (kLosses[li].bursty) burst_len = mean_burst_length(lost120);
      }
      for (std::size_t mi = 0; mi < kNumMethods; ++mi) {
        const MethodInfo& m = kMethods[mi];
        SnrResult r;
        if (m.m == Method::kOpus) {
          const auto packets = opus_encode_all(sig.x, kLosses[li].loss);
          const std::vector<float> clean = opus_decode_all(packets, {});
          const std::vector<float> lossy = opus_decode_all(packets, lost120);
          r = compare(clean, lossy);
          gap[si][li][mi] = gap_snr_db(clean, lossy, lost120, kBlock);
        } else {
          const auto& lost = m.block == kBlock ? lost120 : lost64;
          const std::vector<float> y = conceal(sig.x, lost, m.block, m.m);
          r = compare(sig.x, y);
          gap[si][li][mi] = gap_snr_db(sig.x, y, lost, static_cast<std::size_t>(m.block));
        }
        res[si][li][mi] = r;
        const std::string base = "plc." + sig.name + "." + kLosses[li].key + "." + m.key + ".";
        out[base + "segsnr_db"] = r.segsnr_db;
        out[base + "snr_db"] = r.snr_db;
        out[base + "gap_snr_db"] = gap[si][li][mi];
      }
    }
  }

  // PNBTR cost per 64-sample block: music, 10% random loss.
  const int passes = opts.quick ? 2 : 7;
  const CostStats cost =
      time_pnbtr(sigs[0].x, loss_pattern(2, sigs[0].x.size() / kJdatBlock, kJdatBlock), passes);
  const double period_ns = 1e9 * kJdatBlock / kRate;

  // Headline keys: music, 120-sample packets.
  auto idx = [](const char* key) {
    for (std::size_t i = 0; i < kNumMethods; ++i)
      if (std::string(kMethods[i].key) == key) return i;
    return std::size_t{0};
  };
  const auto& music = res[0];
  for (const auto& [li, tag] : {std::pair<std::size_t, const char*>{1, "5"}, {2, "10"}}) {
    const std::string k = std::string("pnbtr.segsnr_db_loss") + tag;
    out[k] = music[li][idx("pnbtr")].segsnr_db;
    out[k + "_zero"] = music[li][idx("zero")].segsnr_db;
    out[k + "_repeat"] = music[li][idx("repeat")].segsnr_db;
    out[k + "_opus"] = music[li][idx("opus")].segsnr_db;
    out[k + "_b64"] = music[li][idx("pnbtr64")].segsnr_db;
  }
  out["pnbtr.cpu_frac_of_period"] = percentile_of(cost.lost_ns, 0.50) / period_ns;
  out["pnbtr.cpu_frac_of_period_p99"] = percentile_of(cost.lost_ns, 0.99) / period_ns;
  out["pnbtr.cpu_frac_of_period_mean"] = mean_of(cost.lost_ns) / period_ns;
  out["pnbtr.cpu_frac_of_period_gap_start_p50"] =
      percentile_of(cost.gap_start_ns, 0.50) / period_ns;
  out["pnbtr.cpu_frac_of_period_gap_start_p99"] =
      percentile_of(cost.gap_start_ns, 0.99) / period_ns;
  out["pnbtr.cpu_frac_of_period_good_p50"] = percentile_of(cost.good_ns, 0.50) / period_ns;
  out["pnbtr.concealed_blocks_timed"] = static_cast<double>(cost.lost_ns.size());
  for (std::size_t li = 0; li < kNumLosses; ++li)
    out[std::string("plc.loss.") + kLosses[li].key + ".actual_pct"] = 100.0 * actual_loss[li];
  out["plc.loss.burst.mean_burst_blocks"] = burst_len;

  // ---- the table, for people ----
  std::fprintf(
      stderr,
      "\nLoss concealment, segmental SNR in dB (higher is better): 20 ms segments, each "
      "clamped to [-10, 35] dB,\nsegments below -60 dBFS skipped. Packets of 120 samples "
      "(2.5 ms, libopus's smallest frame) unless marked @64.\nzero/repeat/PNBTR: same "
      "Concealer (crossfade, long-gap fade), reference = original. opus: CELT 256 kbit/s,\n"
      "complexity 10, its own PLC; reference = its own loss-free decode (coding noise not "
      "counted).\nLoss: seeded Bernoulli per packet; GE 5%%/3 = Gilbert-Elliott, 5%% "
      "overall, mean burst 3 packets.\n");
  // kind: 0 segmental SNR, 1 SNR, 2 SNR over the lost packets only
  auto print_table = [&](int kind) {
    static constexpr const char* kTitle[] = {
        "(segSNR dB)", "(SNR dB, whole signal)",
        "(SNR dB over the lost packets only: 0 = as good as silence)"};
    std::fprintf(stderr, "\n%-7s %-8s", "signal", "loss");
    for (const auto& m : kMethods) std::fprintf(stderr, " %9s", m.label);
    std::fprintf(stderr, "   %s\n", kTitle[kind]);
    for (std::size_t si = 0; si < sigs.size(); ++si) {
      for (std::size_t li = 0; li < kNumLosses; ++li) {
        std::fprintf(stderr, "%-7s %-8s", sigs[si].name.c_str(), kLosses[li].label);
        for (std::size_t mi = 0; mi < kNumMethods; ++mi) {
          const SnrResult& r = res[si][li][mi];
          const double v = kind == 0 ? r.segsnr_db : kind == 1 ? r.snr_db : gap[si][li][mi];
          std::fprintf(stderr, " %9.2f", v);
        }
        std::fputc('\n', stderr);
      }
    }
  };
  for (int kind = 0; kind < 3; ++kind) print_table(kind);
  std::fprintf(stderr, "\nPNBTR (120) against the best other method at 120 samples, segSNR:\n");
  for (std::size_t si = 0; si < sigs.size(); ++si) {
    for (std::size_t li = 0; li < kNumLosses; ++li) {
      const auto& row = res[si][li];
      std::size_t best = idx("zero");
      for (const char* k : {"zero", "repeat", "opus"})
        if (row[idx(k)].segsnr_db > row[best].segsnr_db) best = idx(k);
      const double d = row[idx("pnbtr")].segsnr_db - row[best].segsnr_db;
      std::fprintf(stderr, "  %-7s %-8s %+6.2f dB vs %s%s\n", sigs[si].name.c_str(),
                   kLosses[li].label, d, kMethods[best].label, d > 0 ? "" : "  (PNBTR behind)");
    }
  }
  std::fprintf(stderr, "Actual loss (music, 120): ");
  for (std::size_t li = 0; li < kNumLosses; ++li)
    std::fprintf(stderr, "%s=%.2f%% ", kLosses[li].label, 100.0 * actual_loss[li]);
  std::fprintf(stderr, "(mean burst %.2f packets)\n", burst_len);
  std::fprintf(
      stderr,
      "PNBTR cost per concealed 64-sample block (music, 10%%, %zu blocks, incl. the fit at "
      "each gap start; each block's least time over %d passes):\n  p50 %.1f us = %.4f of the %.3f "
      "ms period, p99 %.1f us, mean "
      "%.1f us; gap-start p50 %.1f us; received block p50 %.2f us\n",
      cost.lost_ns.size(), passes, percentile_of(cost.lost_ns, 0.5) / 1e3,
      percentile_of(cost.lost_ns, 0.5) / period_ns, period_ns / 1e6,
      percentile_of(cost.lost_ns, 0.99) / 1e3, mean_of(cost.lost_ns) / 1e3,
      percentile_of(cost.gap_start_ns, 0.5) / 1e3, percentile_of(cost.good_ns, 0.5) / 1e3);
  const double run_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  out["plc.run_s"] = run_s;
  std::fprintf(stderr, "plc: %.1f s\n\n", run_s);
}

}  // namespace jamnet::bench
