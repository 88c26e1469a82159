// Peers come and go (issue 14): a receiver with --jack sees a sender join
// and leave 30 times - clean stops, SIGKILL, and restarts under the same name
// with a new id before the old one timed out, in turn. After each return the
// sender must be heard within 3 s on the same ports (rx:tx_1), whose
// connection to our recorder is kept. After the last leave and the removal
// delay (--timeout-ms + --port-linger-ms) the receiver has its starting ports
// and no receiver left. One jackd dummy server; loopback only.
#include <gtest/gtest.h>
#include <jack/jack.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.hpp"
#include "../support/jackd_process.hpp"
#include "../support/skip.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "jamnet/media/audio_quality.hpp"

namespace jamnet {
namespace {

using namespace std::chrono_literals;
using testing::Child;

// One JACK client: out_1 plays a tone whose pitch changes per cycle, in_1
// records into a ring the test thread reads.
struct Tester {
  jack_port_t* out = nullptr;
  jack_port_t* in = nullptr;
  double rate = 48000;
  std::atomic<double> freq{440};
  double phase = 0;
  std::vector<float> ring = std::vector<float>(1 << 18, 0.0f);
  std::atomic<std::uint64_t> written{0};
  static int process(jack_nframes_t n, void* arg) {
    auto* t = static_cast<Tester*>(arg);
    auto* o = static_cast<float*>(jack_port_get_buffer(t->out, n));
    const auto* i = static_cast<const float*>(jack_port_get_buffer(t->in, n));
    const double step = 2 * std::numbers::pi * t->freq.load(std::memory_order_relaxed) / t->rate;
    std::uint64_t w = t->written.load(std::memory_order_relaxed);
    for (jack_nframes_t k = 0; k < n; ++k) {
      o[k] = static_cast<float>(0.4 * std::sin(t->phase));
      t->phase = std::fmod(t->phase + step, 2 * std::numbers::pi);
      t->ring[(w + k) & (t->ring.size() - 1)] = i[k];
    }
    t->written.store(w + n, std::memory_order_release);
    return 0;
  }
  // Whether the last 100 ms recorded are the tone at `f` (not silence, not
  // the previous run's pitch concealed).
  bool hears(double f) const {
    const std::size_t len = static_cast<std::size_t>(rate / 10);
    const std::uint64_t w = written.load(std::memory_order_acquire);
    if (w < len + 512) return false;
    std::vector<float> x(len);
    for (std::size_t k = 0; k < len; ++k) x[k] = ring[(w - 512 - len + k) & (ring.size() - 1)];
    media::SegSnrConfig c;
    c.segment = len / 5;
    const double fs[] = {f};
    // All of it loud (tone_segsnr skips the first and last segment).
    double e = 0;
    for (float v : x) e += static_cast<double>(v) * v;
    if (e / static_cast<double>(len) < 0.01) return false;
    const auto r = media::tone_segsnr_db(x, rate, fs, c, 1000);
    return r.silent_segments == 0 && r.segsnr_db >= 20;
  }
};

std::size_t count_ports(jack_client_t* c, const std::string& prefix) {
  const char** ports = jack_get_ports(c, (prefix + ":.*").c_str(), nullptr, 0);
  std::size_t n = 0;
  if (ports) {
    while (ports[n]) ++n;
    jack_free(ports);
  }
  return n;
}

// live receivers (created - freed) from the last line of the status JSONL.
// VmRSS of a process, KiB; -1 when unknown.
long rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

long live_receivers(const std::string& path) {
  std::ifstream f(path);
  std::string line, last;
  while (std::getline(f, line))
    if (!line.empty()) last = line;
  auto num = [&](const std::string& key) -> long {
    const auto at = last.find("\"" + key + "\":");
    if (at == std::string::npos) return -1;
    return std::strtol(last.c_str() + at + key.size() + 3, nullptr, 10);
  };
  const long created = num("receivers_created"), freed = num("receivers_freed");
  return created < 0 || freed < 0 ? -1 : created - freed;
}

TEST(JackChurn, SenderComesAndGoesThirtyTimesOnTheSamePorts) {
  if (!engine::io::jack_midi_available()) JAMNET_SKIP_UNLESS_REQUIRED("built without JACK");
  const int cycles =
      std::getenv("JAMNET_CHURN_CYCLES") ? std::atoi(std::getenv("JAMNET_CHURN_CYCLES")) : 30;
  const std::string tag = std::to_string(::getpid());
  testing::JackdProcess server;
  std::string why;
  if (!server.start("jamnet-churn-" + tag, 48000, 128, why))
    JAMNET_SKIP_UNLESS_REQUIRED("jackd: " + why);
  const std::string port = std::to_string(40000 + std::random_device{}() % 20000);
  const std::string session = "churn-" + tag;
  const std::string status = "/tmp/jamnet-churn-" + tag + ".jsonl";
  std::remove(status.c_str());
  constexpr int kTimeoutMs = 1500, kLingerMs = 2000;
  auto peer = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> a{JAMNET_BIN,
                               "peer",
                               "--name",
                               name,
                               "--session",
                               session,
                               "--multicast",
                               "239.255.74.79:" + port,
                               "--jack",
                               "--jack-server",
                               server.name(),
                               "--no-sync",
                               "--quiet",
                               "--timeout-ms",
                               std::to_string(kTimeoutMs),
                               "--heartbeat-ms",
                               "250"};
    a.insert(a.end(), extra.begin(), extra.end());
    return testing::spawn(a);
  };
  Child rx = peer("rx", {"--port-linger-ms", std::to_string(kLingerMs), "--status-jsonl", status,
                         "--status-ms", "200"});
  jack_client_t* c = testing::open_jack_client("tester", server.name());
  ASSERT_NE(c, nullptr);
  Tester t;
  t.rate = jack_get_sample_rate(c);
  t.out = jack_port_register(c, "out_1", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
  t.in = jack_port_register(c, "in_1", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
  jack_set_process_callback(c, &Tester::process, &t);
  ASSERT_EQ(jack_activate(c), 0);
  // The receiver's own ports (send_1) are its starting count.
  const auto start_wait = std::chrono::steady_clock::now() + 10s;
  while (count_ports(c, "rx") == 0 && std::chrono::steady_clock::now() < start_wait)
    std::this_thread::sleep_for(20ms);
  const std::size_t rx_ports_at_start = count_ports(c, "rx");
  ASSERT_GT(rx_ports_at_start, 0u) << "the receiver never came up";

  Child tx;
  std::vector<double> heard_s;
  long rss_first = -1;
  for (int i = 0; i < cycles; ++i) {
    const double f = 330.0 + 55.0 * (i % 7);
    t.freq.store(f);
    const auto started = std::chrono::steady_clock::now();
    tx = peer("tx", {});
    ASSERT_TRUE(testing::connect_when_there(c, "tester:out_1", "tx:send_1", 10s))
        << "cycle " << i << ": the sender's port never appeared";
    if (i == 0) {
      ASSERT_TRUE(testing::connect_when_there(c, "rx:tx_1", "tester:in_1", 10s))
          << "the receiver never made a port for the sender";
    }
    bool heard = false;
    while (!heard && std::chrono::steady_clock::now() < started + 8s) {
      std::this_thread::sleep_for(20ms);
      heard = t.hears(f);
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    heard_s.push_back(secs);
    const jack_port_t* rx_port = jack_port_by_name(c, "rx:tx_1");
    EXPECT_TRUE(rx_port && jack_port_connected_to(rx_port, "tester:in_1"))
        << "cycle " << i << ": the connection rx:tx_1 -> tester:in_1 was lost";
    EXPECT_TRUE(heard) << "cycle " << i << ": the sender was not heard within 8 s";
    EXPECT_LE(secs, 3.0) << "cycle " << i << ": heard only after " << secs << " s";
    if (i == 0) rss_first = rss_kb(rx.pid);  // warmed up: one peer heard
    if (i % 20 == 19) std::printf("churn rss at return %d: %ld KiB\n", i + 1, rss_kb(rx.pid));
    switch (i % 3) {
      case 0:  // a clean stop: bye, the receiver frees it at once
        tx.stop(SIGINT);
        std::this_thread::sleep_for(300ms);
        break;
      case 1:  // a crash: the receiver times it out
        tx.stop(SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs + 500));
        break;
      default:  // a crash and an immediate restart under the same name (a new id)
        tx.stop(SIGKILL);
        break;
    }
  }
  tx.stop(SIGINT);
  std::sort(heard_s.begin(), heard_s.end());
  std::printf("churn: %d returns, heard after median %.2f s, worst %.2f s\n", cycles,
              heard_s[heard_s.size() / 2], heard_s.back());
  // The removal delay: the timeout, the linger, and a status interval.
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs + kLingerMs + 1500));
  EXPECT_EQ(count_ports(c, "rx"), rx_ports_at_start) << "ports of a gone peer are still there";
  EXPECT_EQ(live_receivers(status), 0) << "receivers left after everyone left";
  const long rss_last = rss_kb(rx.pid);
  std::printf(
      "churn rss: %ld KiB after the first return, %ld KiB at the end, growth %ld KiB over %d "
      "cycles\n",
      rss_first, rss_last, rss_last - rss_first, cycles);
  std::fflush(stdout);
  jack_deactivate(c);
  jack_client_close(c);
  rx.stop();
  std::remove(status.c_str());
}

}  // namespace
}  // namespace jamnet
