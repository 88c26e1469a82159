// MIDI through two `jamnet peer --jack-midi` processes (issue JMID,
// deliverable 6): a keyboard client plays into keys:midi_in; keys sends it
// over UDP to synth; a listener records synth:midi_out. Every event must
// arrive once, in order, byte-identical, with its timing kept.
// Both peers use one jackd server: libjack does not support one process (this
// test's keyboard and listener) being a client of two servers at once.
#include <gtest/gtest.h>
#include <jack/jack.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support/child_process.hpp"
#include "../support/jackd_process.hpp"
#include "../support/skip.hpp"
#include "jamnet/core/sample_stats.hpp"
#include "jamnet/engine/io/jack_midi.hpp"

namespace jamnet {
namespace {

using namespace std::chrono_literals;
using protocol::jmid::Event;
using protocol::jmid::Kind;

bool jack_connect_ports(const std::string& server, const std::string& from, const std::string& to) {
  jack_status_t status{};
  jack_client_t* c = jack_client_open(
      "jamnet-test-connect", static_cast<jack_options_t>(JackNoStartServer | JackServerName),
      &status, server.c_str());
  if (c == nullptr) return false;
  bool ok = false;
  for (int i = 0; i < 300 && !ok; ++i) {  // the peer registers its ports shortly after start
    ok = jack_connect(c, from.c_str(), to.c_str()) == 0;
    if (!ok) std::this_thread::sleep_for(10ms);
  }
  jack_client_close(c);
  return ok;
}

using testing::Child;
using testing::spawn;

TEST(JackMidiPeer, EventsCrossTwoPeersOnceInOrderWithTimingKept) {
  if (!engine::io::jack_midi_available()) JAMNET_SKIP_UNLESS_REQUIRED("built without JACK");
  const std::string tag = std::to_string(::getpid());
  testing::JackdProcess server;
  std::string why;
  if (!server.start("jamnet-e2e-" + tag, 48000, 64, why))
    JAMNET_SKIP_UNLESS_REQUIRED("jackd: " + why);

  const std::string port = std::to_string(40000 + std::random_device{}() % 20000);
  const std::string session = "jack-e2e-" + tag;
  auto peer = [&](const std::string& name, const std::string& server) {
    return spawn({JAMNET_BIN, "peer", "--name", name, "--session", session, "--multicast",
                  "239.255.74.77:" + port, "--jack-midi", "--jack-server", server, "--no-adaptive",
                  "--quiet"});
  };
  Child keys = peer("keys", server.name());
  Child synth = peer("synth", server.name());

  engine::io::JackMidi::Config kc;
  kc.client_name = "keyboard";
  kc.server_name = server.name();
  auto keyboard = engine::io::JackMidi::open(kc);
  ASSERT_TRUE(keyboard.has_value()) << keyboard.error().message;
  engine::io::JackMidi::Config lc;
  lc.client_name = "listener";
  lc.server_name = server.name();
  auto listener = engine::io::JackMidi::open(lc);
  ASSERT_TRUE(listener.has_value()) << listener.error().message;
  ASSERT_TRUE(jack_connect_ports(server.name(), "keyboard:midi_out", "keys:midi_in"));

  ASSERT_TRUE(jack_connect_ports(server.name(), "synth:midi_out", "listener:midi_in"));
  std::this_thread::sleep_for(1500ms);  // discovery and first heartbeats

  std::vector<Event> sent;
  std::vector<Nanos> at;
  const Nanos start = monotonic_ns() + 50'000'000;
  for (int i = 0; i < 60; ++i) {
    Event e;
    e.kind = i % 3 == 2 ? Kind::kControlChange : (i % 3 == 0 ? Kind::kNoteOn : Kind::kNoteOff);
    e.channel = static_cast<std::uint8_t>(i % 4);
    e.data1 = static_cast<std::uint8_t>(60 + (i / 3) % 12);
    e.data2 = static_cast<std::uint8_t>(e.kind == Kind::kNoteOff ? 0 : 90);
    sent.push_back(e);
    at.push_back(start + Nanos{i} * 15'000'000);  // every 15 ms
    ASSERT_TRUE((*keyboard)->push_output(e, at.back()));
  }
  std::vector<Event> got;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
    Event e;
    while ((*listener)->pop_input(e)) got.push_back(e);
    std::this_thread::sleep_for(1ms);
  }
  std::this_thread::sleep_for(100ms);
  Event extra;
  while ((*listener)->pop_input(extra)) got.push_back(extra);

  const auto kst = (*keyboard)->stats();
  const auto lst = (*listener)->stats();
  std::printf("keyboard: %llu out, %llu xruns; listener: %llu in, %llu xruns\n",
              static_cast<unsigned long long>(kst.output_events),
              static_cast<unsigned long long>(kst.xruns),
              static_cast<unsigned long long>(lst.input_events),
              static_cast<unsigned long long>(lst.xruns));
  // What arrived must be the sent events, in order, none twice: match each
  // received event to the next sent one with the same bytes.
  auto bytes_of = [](const Event& e) {
    std::array<std::uint8_t, 8> b{};
    const auto n = protocol::jmid::to_midi(e, b);
    return std::vector<std::uint8_t>(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
  };
  std::vector<double> err_us;
  std::size_t next = 0;
  for (const auto& g : got) {
    while (next < sent.size() && bytes_of(sent[next]) != bytes_of(g)) ++next;
    ASSERT_LT(next, sent.size()) << "an event arrived twice, out of order, or changed";
    err_us.push_back(static_cast<double>(g.ts_ns - at[next]) / 1e3);
    ++next;
  }
  // The whole path adds a constant (the session latency); what varies around
  // it is the timing error.
  const double constant = percentile_of(err_us, 0.5);
  std::vector<double> abs_err;
  for (double e : err_us) abs_err.push_back(std::abs(e - constant));
  const double p50 = percentile_of(abs_err, 0.5), p99 = percentile_of(abs_err, 0.99);
  std::printf(
      "keyboard -> keys -> UDP -> synth -> listener: %zu/%zu events, latency %.2f ms, "
      "timing error p50 %.1f us, p99 %.1f us\n",
      got.size(), sent.size(), constant / 1e3, p50, p99);
  const auto xruns = kst.xruns + lst.xruns;
  if (xruns > 0) {
    // jackd's dummy driver on a shared VM misses cycles (and sometimes falls
    // behind for good, an xrun every cycle); events can then miss their cycle
    // or land periods off. Still demand nearly everything, in order, once.
    // The timing target itself is measured by `make bench`
    // (jmid.timing_err_p99_us).
    std::printf("jackd reported %llu xruns: timing not checked\n",
                static_cast<unsigned long long>(xruns));
    const auto cycles = kst.cycles + lst.cycles;
    if (xruns * 10 > cycles) {
      // An xrun in more than one cycle in ten: jackd itself is drowning (its
      // dummy driver on a stalled VM) and drops what clients write. Order and
      // uniqueness were checked above; counts would measure jackd, not us.
      GTEST_SKIP() << "jackd xrun in " << xruns << " of " << cycles
                   << " cycles: delivery count not judged";
    }
    EXPECT_GE(got.size(), sent.size() * 9 / 10);
    return;
  }
  EXPECT_EQ(got.size(), sent.size()) << "every event exactly once";
  // Two JACK periods (2 x 1.33 ms) bound what the clocks and cycles can add.
  EXPECT_LT(p50, 300.0);
  EXPECT_LT(p99, 2700.0);
}

}  // namespace
}  // namespace jamnet
