// jamnet_bench: every Foundation figure in one run, so ours and the plain
// baseline share the same machine state. Writes one flat JSON object
// ("metric.name": number) for bench/run.py, which turns it into
// bench/results.json and bench/REPORT.md.
//
//   jamnet_bench [--quick] [--only AREA] [--out-json PATH] [--benchmark_* flags for the codec part]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.hpp"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--quick] [--only codec|net|discovery|jmid_net|jmid|plc|jdat] [--workdir DIR] "
               "[--out-json PATH] [--benchmark_*=...]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace jamnet::bench;
  BenchOptions opts;
  std::string out_json;
  std::vector<char*> benchmark_args{argv[0]};
  std::string only;  // one area: codec, net, discovery, jmid_net, jmid
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      opts.quick = true;
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
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
