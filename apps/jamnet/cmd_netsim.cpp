// `jamnet netsim`: a UDP relay that adds loss, delay, jitter, reordering,
// duplication, corruption and a rate limit (see docs/netsim.md).
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "jamnet/net/netsim.hpp"

namespace jamnet::app {

namespace {

using net::Impairment;

enum class Unit { kPercent, kMs, kKbps };

// One impairment flag: --NAME for both directions, --fwd-NAME / --rev-NAME for one.
struct Knob {
  const char* name;
  const char* help;
  Unit unit;
  std::function<void(Impairment&, double)> apply;
  std::array<double, 3> value{};  // both, forward, reverse
  std::array<CLI::Option*, 3> option{};
};

// CLI::NonNegativeNumber's message prints DBL_MAX in full; this one reads well.
CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !(v >= 0.0))
          return "must be a number >= 0, got " + text;
        return {};
      },
      ">=0");
}

CLI::Validator percent() {
  return CLI::Range(0.0, 100.0).description("0..100");
}

Nanos ms_to_ns(double ms) {
  return static_cast<Nanos>(std::llround(ms * 1e6));
}

std::vector<Knob> make_knobs() {
  const auto pct = [](double Impairment::*field) {
    return [field](Impairment& s, double v) { s.*field = v / 100.0; };
  };
  const auto ms = [](Nanos Impairment::*field) {
    return [field](Impairment& s, double v) { s.*field = ms_to_ns(v); };
  };
  return {
      {"loss", "Independent random loss, percent", Unit::kPercent, pct(&Impairment::loss)},
      {"ge-p", "Gilbert-Elliott: good->bad transition chance per packet, percent", Unit::kPercent,
       pct(&Impairment::ge_p)},
      {"ge-r", "Gilbert-Elliott: bad->good transition chance per packet, percent", Unit::kPercent,
       pct(&Impairment::ge_r)},
      {"ge-loss-good", "Gilbert-Elliott: loss in the good state, percent (default 0)",
       Unit::kPercent, pct(&Impairment::ge_loss_good)},
      {"ge-loss-bad", "Gilbert-Elliott: loss in the bad state, percent (default 100)",
       Unit::kPercent, pct(&Impairment::ge_loss_bad)},
      {"delay", "Fixed one-way delay, ms", Unit::kMs, ms(&Impairment::delay)},
      {"jitter", "Jitter, ms: +-MS (uniform) or standard deviation (normal)", Unit::kMs,
       ms(&Impairment::jitter)},
      {"reorder", "Chance a packet is held back --reorder-gap so later ones overtake it, percent",
       Unit::kPercent, pct(&Impairment::reorder)},
      {"reorder-gap", "How long a reordered packet is held back, ms (default 2)", Unit::kMs,
       ms(&Impairment::reorder_gap)},
      {"duplicate", "Chance a packet is sent twice, percent", Unit::kPercent,
       pct(&Impairment::duplicate)},
      {"corrupt", "Chance one random bit of a packet is flipped, percent", Unit::kPercent,
       pct(&Impairment::corrupt)},
      {"rate", "Rate limit, kbit/s of UDP payload (0 = unlimited)", Unit::kKbps,
       [](Impairment& s, double v) { s.rate_kbps = v; }},
      {"queue-ms", "Rate limiter's queue, ms of data at --rate; fuller drops (default 50)",
       Unit::kMs, ms(&Impairment::queue)},
  };
}

std::string describe(const Impairment& s) {
  if (s.is_identity()) return "none";
  std::string out;
  char buf[160];
  const auto add = [&](const char* fmt, auto... args) {
    std::snprintf(buf, sizeof buf, fmt, args...);
    out += out.empty() ? "" : ", ";
    out += buf;
  };
  if (s.loss > 0) add("loss %g%%", s.loss * 100);
  if (s.ge_p > 0 || s.ge_loss_good > 0) {
    add("GE p %g%% r %g%% loss %g%%/%g%%", s.ge_p * 100, s.ge_r * 100, s.ge_loss_good * 100,
        s.ge_loss_bad * 100);
  }
  if (s.delay > 0) add("delay %g ms", static_cast<double>(s.delay) / 1e6);
  if (s.jitter > 0) {
    add("jitter %g ms %s", static_cast<double>(s.jitter) / 1e6,
        s.jitter_dist == net::JitterDist::kNormal ? "normal" : "uniform");
  }
  if (s.reorder > 0)
    add("reorder %g%% by %g ms", s.reorder * 100, static_cast<double>(s.reorder_gap) / 1e6);
  if (s.duplicate > 0) add("duplicate %g%%", s.duplicate * 100);
  if (s.corrupt > 0) add("corrupt %g%%", s.corrupt * 100);
  if (s.rate_kbps > 0)
    add("rate %g kbps queue %g ms", s.rate_kbps, static_cast<double>(s.queue) / 1e6);
  return out;
}

std::string human_report(const net::NetsimReport& r) {
  char line[160];
  std::snprintf(line, sizeof line, "netsim: %.1f s, seed %llu, client %s, target %s\n", r.elapsed_s,
                static_cast<unsigned long long>(r.seed),
                r.client ? r.client->to_string().c_str() : "none", r.target.to_string().c_str());
  std::string out = line;
  std::snprintf(line, sizeof line, "  %-16s %12s %12s\n", "", "forward", "reverse");
  out += line;
  const auto row = [&](const char* name, std::uint64_t f, std::uint64_t b) {
    std::snprintf(line, sizeof line, "  %-16s %12llu %12llu\n", name,
                  static_cast<unsigned long long>(f), static_cast<unsigned long long>(b));
    out += line;
  };
  const auto& f = r.forward;
  const auto& b = r.reverse;
  row("received", f.received, b.received);
  row("forwarded", f.forwarded, b.forwarded);
  row("dropped_loss", f.dropped_loss, b.dropped_loss);
  row("dropped_queue", f.dropped_queue, b.dropped_queue);
  row("dropped_send", f.dropped_send, b.dropped_send);
  row("duplicated", f.duplicated, b.duplicated);
  row("corrupted", f.corrupted, b.corrupted);
  row("reordered", f.reordered, b.reordered);
  std::snprintf(line, sizeof line, "  %-16s %12.3f %12.3f\n", "delayed_ms_mean", f.delayed_ms_mean,
                b.delayed_ms_mean);
  out += line;
  row("bytes_in", f.bytes_in, b.bytes_in);
  row("bytes_out", f.bytes_out, b.bytes_out);
  if (r.ignored > 0)
    out += "  ignored " + std::to_string(r.ignored) + " datagrams from other than the target\n";
  return out;
}

// Written to a temporary name and renamed, so a reader never sees half a file.
bool write_stats(const std::string& path, const net::NetsimReport& r) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << r.to_json() << '\n';
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

struct NetsimArgs {
  std::string bind, connect, upstream_bind;
  std::vector<Knob> knobs = make_knobs();
  std::array<std::string, 3> jitter_dist{"uniform", "uniform", "uniform"};
  std::array<CLI::Option*, 3> jitter_dist_option{};
  std::uint64_t seed = 1;
  double duration_s = 0;
  bool json = false;
  bool quiet = false;
  std::string stats_file;
};

// --fwd-X / --rev-X win over --X, which wins over the default.
Impairment direction_settings(const NetsimArgs& a, std::size_t dir) {
  Impairment s;
  for (const Knob& k : a.knobs) {
    if (k.option[dir]->count() > 0) {
      k.apply(s, k.value[dir]);
    } else if (k.option[0]->count() > 0) {
      k.apply(s, k.value[0]);
    }
  }
  const std::size_t jd = a.jitter_dist_option[dir]->count() > 0 ? dir : 0;
  s.jitter_dist =
      a.jitter_dist[jd] == "normal" ? net::JitterDist::kNormal : net::JitterDist::kUniform;
  return s;
}

int run_netsim(const NetsimArgs& a) {
  net::NetsimConfig config;
  config.listen = endpoint_arg(a.bind);
  config.target = endpoint_arg(a.connect);
  if (!a.upstream_bind.empty()) config.upstream_bind = endpoint_arg(a.upstream_bind);
  config.forward = direction_settings(a, 1);
  config.reverse = direction_settings(a, 2);
  config.seed = a.seed;

  auto started = net::Netsim::start(config);
  if (!started) {
    std::fprintf(stderr, "jamnet netsim: %s\n", started.error().message.c_str());
    return 1;
  }
  net::Netsim& sim = **started;
  if (!a.quiet) {
    std::fprintf(stderr,
                 "netsim: listening on %s, forwarding to %s from %s (seed %llu)\n"
                 "  forward (client->target): %s\n  reverse (target->client): %s\n",
                 sim.listen_endpoint().to_string().c_str(), config.target.to_string().c_str(),
                 sim.upstream_endpoint().to_string().c_str(),
                 static_cast<unsigned long long>(a.seed), describe(config.forward).c_str(),
                 describe(config.reverse).c_str());
  }

  constexpr Nanos kTick = 1'000'000'000;
  const Nanos begin = monotonic_ns();
  const Nanos end = a.duration_s > 0 ? begin + static_cast<Nanos>(a.duration_s * 1e9)
                                     : std::numeric_limits<Nanos>::max();
  Nanos next_tick = begin + kTick;
  while (!stop_requested()) {
    const Nanos now = monotonic_ns();
    if (now >= end) break;
    if (now >= next_tick) {
      next_tick += kTick;
      const auto r = sim.report();
      if (!a.stats_file.empty()) write_stats(a.stats_file, r);
      if (!a.quiet) {
        std::fprintf(stderr, "netsim: fwd %llu in %llu out | rev %llu in %llu out\n",
                     static_cast<unsigned long long>(r.forward.received),
                     static_cast<unsigned long long>(r.forward.forwarded),
                     static_cast<unsigned long long>(r.reverse.received),
                     static_cast<unsigned long long>(r.reverse.forwarded));
      }
    }
    const Nanos wait = std::min(end, next_tick) - now;
    sleep_unless_stopped(static_cast<int>((wait + 999'999) / 1'000'000));
  }
  sim.stop();

  const auto r = sim.report();
  int rc = 0;
  if (!a.stats_file.empty() && !write_stats(a.stats_file, r)) {
    std::fprintf(stderr, "jamnet netsim: cannot write --stats-file %s\n", a.stats_file.c_str());
    rc = 1;
  }
  if (a.json) {
    std::printf("%s\n", r.to_json().c_str());
  } else if (!a.quiet) {
    std::fputs(human_report(r).c_str(), stdout);
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

void add_netsim_command(CLI::App& root, Runner& run) {
  auto args = std::make_shared<NetsimArgs>();
  CLI::App* cmd = root.add_subcommand(
      "netsim",
      "Relay UDP between a client and a target through a simulated bad network\n"
      "(loss, bursts, delay, jitter, reordering, duplicates, corruption, rate limit).\n"
      "Point your client at --bind; the relay forwards to --connect and sends replies back.\n"
      "Each impairment flag applies to both directions; --fwd-FLAG (client->target) and\n"
      "--rev-FLAG (target->client) override one. Seeded: the same run drops the same packets.");
  NetsimArgs& a = *args;
  const std::string relay = "Relay";
  cmd->add_option("--bind", a.bind, "Listen here for the client (port 0: any free port)")
      ->required()
      ->type_name("HOST:PORT")
      ->check(EndpointValidator())
      ->group(relay);
  cmd->add_option("--connect", a.connect, "Forward to this target")
      ->required()
      ->type_name("HOST:PORT")
      ->check(EndpointValidator())
      ->group(relay);
  cmd->add_option("--upstream-bind", a.upstream_bind,
                  "Send to the target from here (default: an ephemeral port on --bind's address)")
      ->type_name("HOST:PORT")
      ->check(EndpointValidator())
      ->group(relay);
  cmd->add_option("--seed", a.seed,
                  "Random seed; same seed + same packets = same fates (default 1)")
      ->group(relay);
  cmd->add_option("--duration", a.duration_s, "Stop after S seconds (0 = until Ctrl-C)")
      ->type_name("S")
      ->check(non_negative())
      ->group(relay);
  cmd->add_flag("--json", a.json, "Print the final report as one JSON object")->group(relay);
  cmd->add_option("--stats-file", a.stats_file,
                  "Write the JSON report here every second and at exit")
      ->group(relay);
  cmd->add_flag("--quiet", a.quiet, "No banner, no per-second status; only --json output")
      ->group(relay);

  const std::array<std::string, 3> prefix{"--", "--fwd-", "--rev-"};
  const std::array<std::string, 3> group{"Impairments (both directions)",
                                         "Forward only (client->target), overrides the flag above",
                                         "Reverse only (target->client), overrides the flag above"};
  for (Knob& k : a.knobs) {
    for (std::size_t d = 0; d < 3; ++d) {
      CLI::Option* o = cmd->add_option(prefix[d] + k.name, k.value[d],
                                       d == 0 ? k.help : "as --" + std::string(k.name));
      o->group(group[d]);
      if (k.unit == Unit::kPercent) {
        o->type_name("PCT")->check(percent());
      } else {
        o->type_name(k.unit == Unit::kMs ? "MS" : "KBPS")->check(non_negative());
      }
      k.option[d] = o;
    }
  }
  for (std::size_t d = 0; d < 3; ++d) {
    a.jitter_dist_option[d] =
        cmd->add_option(
               prefix[d] + "jitter-dist", a.jitter_dist[d],
               d == 0 ? "Jitter distribution: uniform (delay +- jitter) or normal (sd = jitter)"
                      : "as --jitter-dist")
            ->type_name("DIST")
            ->check(CLI::IsMember({"uniform", "normal"}))
            ->group(group[d]);
  }

  cmd->callback([&run, args] { run = [args] { return run_netsim(*args); }; });
}

}  // namespace jamnet::app
