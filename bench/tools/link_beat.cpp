// link_beat: join an Ableton Link session and print the beat this peer sees,
// as one JSON line per interval, for the Link baseline of the clock-sync
// benchmark (bench/sync_link.py).
//
//   link_beat --seconds S [--bpm 120] [--quantum 4] [--interval-ms 20]
//             [--start-delay-ms D] [--peer-timeout-s 15]
//
// Waits --start-delay-ms, creates an ableton::Link at --bpm, enables it and
// waits until numPeers() >= 1 (none within --peer-timeout-s: message on
// stderr, exit 2). Then, every --interval-ms for --seconds, prints
//   {"t_us": T, "beat": B, "peers": N, "tempo": X}
// where T is Link's clock (link.clock().micros(); on Linux Link uses
// CLOCK_MONOTONIC_RAW, shared by every process on the machine) and B is
// captureAppSessionState().beatAtTime(T, quantum). Two peers on one machine
// therefore see the same T axis, and the difference of their beats at equal T
// is Link's synchronisation error. Exit 0 when done or on SIGINT/SIGTERM
// (Link is disabled cleanly, so the other peer sees a bye-bye), 1 on bad
// arguments.
#include <ableton/Link.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) {
  g_stop.store(true);
}

struct Options {
  double seconds = 10.0;
  double bpm = 120.0;
  double quantum = 4.0;
  double interval_ms = 20.0;
  double start_delay_ms = 0.0;
  double peer_timeout_s = 15.0;
};

[[noreturn]] void usage(const char* msg, int status = 1) {
  std::fprintf(status == 0 ? stdout : stderr,
               "%s%s\n"
               "usage: link_beat --seconds S [--bpm 120] [--quantum 4] [--interval-ms 20]\n"
               "                 [--start-delay-ms D] [--peer-timeout-s 15]\n",
               status == 0 ? "" : "link_beat: ", msg);
  std::exit(status);
}

double parse_number(std::string_view flag, const char* text, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v >= lo && v <= hi)) {
    const std::string msg = std::string(flag) + ": bad value '" + text + "'";
    usage(msg.c_str());
  }
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  bool have_seconds = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      usage("link_beat: print Ableton Link beats as JSON lines", 0);
    }
    if (i + 1 >= argc) {
      const std::string msg = "missing value or unknown flag: " + std::string(a);
      usage(msg.c_str());
    }
    const char* v = argv[++i];
    if (a == "--seconds") {
      o.seconds = parse_number(a, v, 0.0, 1e6);
      have_seconds = true;
    } else if (a == "--bpm") {
      o.bpm = parse_number(a, v, 20.0, 999.0);  // Link's tempo range
    } else if (a == "--quantum") {
      o.quantum = parse_number(a, v, 1e-3, 1e6);
    } else if (a == "--interval-ms") {
      o.interval_ms = parse_number(a, v, 0.1, 1e6);
    } else if (a == "--start-delay-ms") {
      o.start_delay_ms = parse_number(a, v, 0.0, 1e7);
    } else if (a == "--peer-timeout-s") {
      o.peer_timeout_s = parse_number(a, v, 0.0, 1e6);
    } else {
      const std::string msg = "unknown flag: " + std::string(a);
      usage(msg.c_str());
    }
  }
  if (!have_seconds) {
    usage("--seconds is required");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  using Steady = std::chrono::steady_clock;
  const auto sleep_or_stop = [](Steady::time_point until) {
    while (!g_stop.load() && Steady::now() < until) {
      std::this_thread::sleep_until(std::min(until, Steady::now() + std::chrono::milliseconds(50)));
    }
  };
  sleep_or_stop(Steady::now() +
                std::chrono::microseconds(static_cast<long long>(o.start_delay_ms * 1e3)));
  if (g_stop.load()) {
    return 0;
  }

  ableton::Link link(o.bpm);
  link.enable(true);

  const auto deadline =
      Steady::now() + std::chrono::microseconds(static_cast<long long>(o.peer_timeout_s * 1e6));
  while (link.numPeers() < 1) {
    if (g_stop.load()) {
      link.enable(false);
      return 0;
    }
    if (Steady::now() >= deadline) {
      std::fprintf(stderr, "link_beat: no Link peer seen within %.1f s (multicast not working?)\n",
                   o.peer_timeout_s);
      link.enable(false);
      return 2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::fprintf(stderr, "link_beat: %zu peer(s) after joining\n", link.numPeers());

  const auto interval =
      std::chrono::microseconds(static_cast<long long>(o.interval_ms * 1e3 + 0.5));
  const auto start = Steady::now();
  const auto end = start + std::chrono::microseconds(static_cast<long long>(o.seconds * 1e6));
  auto next = start;
  while (!g_stop.load() && next < end) {
    // Sample the clock and the session state together, then print outside the
    // timed part; the beat is a function of t_us, so printing late is harmless.
    const std::chrono::microseconds t = link.clock().micros();
    const auto state = link.captureAppSessionState();
    const double beat = state.beatAtTime(t, o.quantum);
    const double tempo = state.tempo();
    const std::size_t peers = link.numPeers();
    std::printf("{\"t_us\": %lld, \"beat\": %.12f, \"peers\": %zu, \"tempo\": %.9f}\n",
                static_cast<long long>(t.count()), beat, peers, tempo);
    std::fflush(stdout);
    next += interval;
    sleep_or_stop(next);
  }
  link.enable(false);
  return 0;
}
