// jamnet_bench: every Foundation figure in one run, so ours and the plain
// baseline share the same machine state. Writes one flat JSON object
// ("metric.name": number) for bench/run.py, which turns it into
// bench/results.json and bench/REPORT.md.
//
//   jamnet_bench [--quick] [--only AREA] [--out-json PATH] [--benchmark_* flags for the codec part]
//
// Two tools for measurements made outside this program (e.g. through JackTrip):
//   jamnet_bench --make-signal music|chords|speech|sine OUT.wav [--seconds S] [--workdir DIR]
//     writes a test signal as a 48 kHz mono float WAV;
//   jamnet_bench --segsnr REF.wav TEST.wav [--max-lag N]
//     aligns TEST to REF (the lag within +-N samples, default 48000, with the
//     highest normalised cross-correlation) and prints one JSON line
//     {"segsnr_db":..,"snr_db":..,"lag":..,"corr":..}.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "jamnet/engine/io/wav_file.hpp"
#include "jamnet/media/audio_quality.hpp"
#include "quality.hpp"
#include "signals/signals.hpp"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--only "
               "codec|net|discovery|jmid_net|jmid|plc|jdat|rt|full_load|sync|gpu|security] "
               "[--workdir DIR] [--out-json PATH] [--benchmark_*=...]\n",
               argv0);
  std::fprintf(stderr,
               "       %s --make-signal music|chords|speech|sine OUT.wav [--seconds S] "
               "[--workdir DIR]\n"
               "       %s --segsnr REF.wav TEST.wav [--max-lag N]\n",
               argv0, argv0);
  return 2;
}

// Writes one test signal as a 48 kHz mono float WAV. Without --seconds,
// speech keeps its natural length and the others last 10 s.
int make_signal(const std::string& kind, const std::string& path, double seconds,
                const std::string& workdir) {
  namespace sig = jamnet::signals;
  const bool given = seconds > 0;
  const double s = given ? seconds : 10.0;
  jamnet::Result<std::vector<float>> x = std::vector<float>{};
  if (kind == "music") {
    x = sig::music(workdir, s, sig::kRate);
  } else if (kind == "chords") {
    x = sig::chords(s, sig::kRate);
  } else if (kind == "speech") {
    x = sig::speech(workdir, sig::kRate);
    if (x && given) x->resize(static_cast<std::size_t>(std::llround(s * sig::kRate)), 0.0f);
  } else if (kind == "sine") {
    x = sig::sine(440.0, s, sig::kRate);
  } else {
    std::fprintf(stderr, "jamnet_bench: unknown signal '%s' (music, chords, speech, sine)\n",
                 kind.c_str());
    return 2;
  }
  if (!x) {
    std::fprintf(stderr, "jamnet_bench: %s: %s\n", kind.c_str(), x.error().message.c_str());
    return 1;
  }
  if (auto ok = jamnet::engine::io::write_wav(path, *x, 1, sig::kRate); !ok) {
    std::fprintf(stderr, "jamnet_bench: %s\n", ok.error().message.c_str());
    return 1;
  }
  return 0;
}

// Segmental SNR of TEST against REF after aligning TEST by the best lag.
int segsnr(const std::string& ref_path, const std::string& test_path, long max_lag) {
  int ref_rate = 0, test_rate = 0;
  auto ref = jamnet::engine::io::read_wav_mono(ref_path, &ref_rate);
  auto test = jamnet::engine::io::read_wav_mono(test_path, &test_rate);
  if (!ref || !test) {
    std::fprintf(stderr, "jamnet_bench: %s\n", (!ref ? ref.error() : test.error()).message.c_str());
    return 1;
  }
  if (ref_rate != test_rate) {
    std::fprintf(stderr, "jamnet_bench: sample rates differ (%d and %d)\n", ref_rate, test_rate);
    return 1;
  }
  const auto a = jamnet::media::best_lag(*ref, *test, max_lag);
  // ref[i] against test[i + lag], over the samples both have.
  const auto nr = static_cast<std::int64_t>(ref->size()),
             nt = static_cast<std::int64_t>(test->size());
  const std::int64_t i0 = std::max<std::int64_t>(0, -a.lag), i1 = std::min(nr, nt - a.lag);
  std::span<const float> r, t;
  if (i1 > i0) {
    r = std::span<const float>(ref->data() + i0, static_cast<std::size_t>(i1 - i0));
    t = std::span<const float>(test->data() + i0 + a.lag, static_cast<std::size_t>(i1 - i0));
  }
  const jamnet::bench::SnrResult q = jamnet::bench::compare(r, t);
  nlohmann::json j = {
      {"segsnr_db", q.segsnr_db}, {"snr_db", q.snr_db}, {"lag", a.lag}, {"corr", a.correlation}};
  std::printf("%s\n", j.dump().c_str());
  return std::isfinite(q.segsnr_db) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace jamnet::bench;
  BenchOptions opts;
  std::string out_json;
  std::vector<char*> benchmark_args{argv[0]};
  std::string only;  // one area: codec, net, discovery, jmid_net, jmid, ..., gpu
  std::string make_kind, make_out, ref_wav, test_wav;  // the two tool modes
  double seconds = 0;
  long max_lag = 48000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      opts.quick = true;
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (arg == "--make-signal" && i + 2 < argc) {
      make_kind = argv[++i];
      make_out = argv[++i];
    } else if (arg == "--segsnr" && i + 2 < argc) {
      ref_wav = argv[++i];
      test_wav = argv[++i];
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--max-lag" && i + 1 < argc) {
      max_lag = std::atol(argv[++i]);
    } else if (arg == "--workdir" && i + 1 < argc) {
      opts.workdir = argv[++i];
    } else if (arg == "--out-json" && i + 1 < argc) {
      out_json = argv[++i];
    } else if (arg.rfind("--out-json=", 0) == 0) {
      out_json = arg.substr(std::strlen("--out-json="));
    } else if (arg.rfind("--benchmark_", 0) == 0) {
      benchmark_args.push_back(argv[i]);
    } else if (arg == "-h" || arg == "--help") {
      usage(argv[0]);
      return 0;
    } else {
      return usage(argv[0]);
    }
  }
  if (!make_kind.empty()) return make_signal(make_kind, make_out, seconds, opts.workdir);
  if (!ref_wav.empty()) return segsnr(ref_wav, test_wav, max_lag);

  Metrics metrics;
  try {
    auto want = [&](const char* area) { return only.empty() || only == area; };
    if (want("codec")) run_codec_bench(opts, metrics, benchmark_args);
    if (want("net")) run_net_bench(opts, metrics);
    if (want("discovery")) run_discovery_bench(opts, metrics);
    if (want("jmid_net")) run_jmid_net_bench(opts, metrics);
    if (want("jmid")) run_jmid_bench(opts, metrics);
    if (want("plc")) run_plc_bench(opts, metrics);
    if (want("jdat")) run_jdat_bench(opts, metrics);
    if (want("rt")) run_rt_bench(opts, metrics);
    if (want("full_load")) run_full_load_bench(opts, metrics);
    if (want("sync")) run_sync_bench(opts, metrics);
    if (want("gpu")) run_gpu_bench(opts, metrics);
    if (want("security")) run_security_bench(opts, metrics);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jamnet_bench: %s\n", e.what());
    return 1;
  }

  nlohmann::json j = nlohmann::json::object();
  bool all_finite = true;
  for (const auto& [name, value] : metrics) {
    j[name] = value;  // NaN becomes null: a missing figure stays visibly missing
    all_finite = all_finite && std::isfinite(value);
  }
  const std::string text = j.dump(2) + "\n";
  std::fputs(text.c_str(), stdout);
  if (!out_json.empty()) {
    std::ofstream f(out_json);
    f << text;
    if (!f) {
      std::fprintf(stderr, "jamnet_bench: cannot write %s\n", out_json.c_str());
      return 1;
    }
  }
  if (!all_finite)
    std::fprintf(stderr, "jamnet_bench: some metrics could not be measured (null)\n");
  return all_finite ? 0 : 1;
}
