// The peer doing its whole job, and the host's floor measured in the same run.
//
// Peer windows: two Sessions on one jackd -d dummy (48 kHz, 64 frames), a
// sine sent both ways, MIDI notes from "tx" to "rx" every 3 ms, discovery,
// heartbeats and clock sync running, every datagram through an in-process
// netsim relay with 2 ms +- 1 ms of jitter each way, under rt_bench's stress
// load (the second core spinning; 10 bursts of 1000 normal and 1 burst of
// 1000 priority commands per second into rx's engine). Measured after a
// warm-up: tick jitter of both engines (|callback-to-callback - period|, the
// engines' own whole-window histograms), JMID timing error (|played - (sender
// timestamp + constant)|, the constant being the median), xruns.
//
// Floor windows, interleaved with them: the peer is stopped (Sessions and the
// relay gone), the same stress load runs, and a probe thread at the audio
// thread's real-time priority does nothing but sleep to 64-frame deadlines.
// Its |wake-to-wake - period| is the host's own stall (rt.host_stall_*):
// what any program at that priority meets on this machine at that moment. A
// wake more than a period late is what would have been an xrun.
//
// Xruns: a JACK client that does nothing (an empty process callback) stays
// on the server through every window and counts the xruns the server
// reports. In the peer windows that is what the peer costs jackd
// (full_load.xruns); in the floor windows, where two more no-op clients
// stand in for the engines (the same graph, doing nothing), what jackd's
// dummy driver misses on this host with no work at all
// (full_load.floor_xruns). The engines'
// own counts (each server xrun reaches both) are full_load.engine_xruns.
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <thread>

#include "../tests/support/full_load.hpp"
#include "../tests/support/jackd_process.hpp"
#include "bench_common.hpp"
#include "jamnet/core/histogram.hpp"
#include "jamnet/core/sample_stats.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#if defined(JAMNET_HAVE_JACK)
#include <jack/jack.h>
#endif
#include "jamnet/net/netsim.hpp"
#include "jamnet/peer/session.hpp"
#include "stress_load.hpp"

namespace jamnet::bench {

namespace {

constexpr std::uint32_t kRate = 48000;
constexpr std::uint32_t kPeriod = 64;
constexpr Nanos kPeriodNs = static_cast<Nanos>(kPeriod) * 1'000'000'000 / kRate;

std::atomic<int> g_audio_priority{0};  // the engine's audio thread, as it runs

// The shared sine, noting the audio thread's real-time priority on its first call.
void sine_input(void* user, std::span<float* const> channels, std::uint32_t frames,
                std::uint64_t frame_time) noexcept {
  if (g_audio_priority.load(std::memory_order_relaxed) == 0) {
    int policy = 0;
    sched_param sp{};
    if (::pthread_getschedparam(::pthread_self(), &policy, &sp) == 0)
      g_audio_priority.store(policy == SCHED_FIFO || policy == SCHED_RR ? sp.sched_priority : -1);
  }
  testing::sine_input(user, channels, frames, frame_time);
}

struct PeerWindow {
  bool ok = false;
  std::string why;
  Histogram tick_jitter;              // ns, both engines
  std::vector<double> timing_err_us;  // |played - (ts + median offset)|
  std::uint64_t xruns = 0, notes_sent = 0, notes_played = 0;
};

PeerWindow run_peer_window(const std::string& server, double seconds) {
  PeerWindow w;
  const Uuid session = Uuid::random();
  auto options = [&](const char* name) {
    auto o = testing::jack_session_options(name, session, server);
    // Discovery crosses the jittery relay: announce often, time out slowly.
    o.peer.announce_interval_ns = 100'000'000;
    o.peer.peer_timeout_ns = 10'000'000'000;
    o.input = sine_input;
    return o;
  };
  auto rx = Session::start(options("rx"));
  if (!rx) {
    w.why = rx.error().message;
    return w;
  }
  net::NetsimConfig nc;
  nc.listen = net::Endpoint::loopback(0);
  nc.target = (*rx)->peer().local();
  nc.forward.delay = nc.reverse.delay = 2'000'000;
  nc.forward.jitter = nc.reverse.jitter = 1'000'000;
  nc.seed = 7;
  auto sim = net::Netsim::start(nc);
  if (!sim) {
    w.why = sim.error().message;
    return w;
  }
  auto to = options("tx");
  to.peer.connect = {(*sim)->listen_endpoint()};
  auto tx = Session::start(to);
  if (!tx) {
    w.why = tx.error().message;
    return w;
  }
  const Nanos found_by = monotonic_ns() + 10'000'000'000;
  while ((*tx)->peer().discovery().routes().empty() || (*rx)->peer().discovery().routes().empty()) {
    if (monotonic_ns() > found_by) {
      w.why = "the peers did not find each other through netsim";
      return w;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  std::mutex mu;
  std::vector<double> offsets_us;
  std::atomic<bool> measuring{false};
  (*rx)->set_midi_handler([&](const MidiDelivery& d) {
    if (!measuring.load(std::memory_order_relaxed) || d.repair || d.release) return;
    std::lock_guard lock(mu);
    offsets_us.push_back(static_cast<double>(d.played_ns - d.event.ts_ns) / 1e3);
  });
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  std::thread notes([&] {
    Nanos next = monotonic_ns();
    for (std::uint32_t i = 0; !stop.load(); ++i) {
      const auto e = testing::load_note(i);
      if ((*tx)->send_midi({&e, 1})) sent.fetch_add(1);
      next += 3'000'000;
      sleep_until_ns(next);
    }
  });
  StressLoad stress((*rx)->engine());
  // Warm-up: clocks lock, the MIDI latency settles, the buffers fill.
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  engine::Engine* engines[] = {(*rx)->engine(), (*tx)->engine()};
  std::uint64_t xruns_before = 0;
  for (auto* e : engines) {
    e->reset_telemetry_totals();
    xruns_before += e->backend().xruns();
  }
  const std::uint64_t sent_before = sent.load();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  const std::uint64_t sent_in_window = sent.load() - sent_before;
  // The last telemetry window publishes once a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::uint64_t xruns_after = 0;
  for (auto* e : engines) {
    w.tick_jitter.merge(e->telemetry().tick_jitter_total);
    xruns_after += e->backend().xruns();
  }
  stop = true;
  notes.join();
  w.xruns = xruns_after - xruns_before;
  w.notes_sent = sent_in_window;
  {
    std::lock_guard lock(mu);
    w.notes_played = offsets_us.size();
    if (!offsets_us.empty()) {
      const double median = percentile_of(offsets_us, 0.5);
      for (double o : offsets_us) w.timing_err_us.push_back(std::fabs(o - median));
    }
  }
  (*rx)->set_midi_handler(nullptr);
  w.ok = w.tick_jitter.count() > 0 && !w.timing_err_us.empty();
  if (!w.ok) w.why = "nothing measured in the window";
  return w;
}

// The no-op client that counts the server's xruns through every window.
class IdleJackClient {
 public:
  explicit IdleJackClient(const std::string& server, int n = 0) {
#if defined(JAMNET_HAVE_JACK)
    jack_status_t status{};
    const std::string name = "jamnet-bench-idle-" + std::to_string(n);
    client_ = ::jack_client_open(name.c_str(),
                                 static_cast<jack_options_t>(JackNoStartServer | JackServerName),
                                 &status, server.c_str());
    if (client_ == nullptr) return;
    ::jack_set_process_callback(
        client_, [](jack_nframes_t, void*) -> int { return 0; }, nullptr);
    ::jack_set_xrun_callback(
        client_,
        [](void* self) -> int {
          static_cast<IdleJackClient*>(self)->xruns_.fetch_add(1, std::memory_order_relaxed);
          return 0;
        },
        this);
    if (::jack_activate(client_) != 0) {
      ::jack_client_close(client_);
      client_ = nullptr;
    }
#else
    (void)server;
    (void)n;
#endif
  }
  ~IdleJackClient() {
#if defined(JAMNET_HAVE_JACK)
    if (client_ != nullptr) {
      ::jack_deactivate(client_);
      ::jack_client_close(client_);
    }
#endif
  }
  IdleJackClient(const IdleJackClient&) = delete;
  IdleJackClient& operator=(const IdleJackClient&) = delete;
  bool ok() const noexcept {
    return client_ != nullptr;
  }
  std::uint64_t xruns() const noexcept {
    return xruns_.load(std::memory_order_relaxed);
  }

 private:
#if defined(JAMNET_HAVE_JACK)
  jack_client_t* client_ = nullptr;
#else
  void* client_ = nullptr;
#endif
  std::atomic<std::uint64_t> xruns_{0};
};

struct FloorWindow {
  Histogram stall;  // ns: |wake-to-wake - period|
  std::uint64_t late_by_period = 0;
};

FloorWindow run_floor_window(double seconds, int priority) {
  FloorWindow w;
  StressLoad stress(nullptr);
  std::thread probe([&] {
    if (priority > 0) {
      sched_param sp{};
      sp.sched_priority = priority;
      ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &sp);
    }
    const Nanos start = monotonic_ns() + kPeriodNs;
    const auto n = static_cast<std::int64_t>(seconds * 1e9 / static_cast<double>(kPeriodNs));
    Nanos prev = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const Nanos deadline = start + i * kPeriodNs;
      sleep_until_ns(deadline);
      const Nanos now = monotonic_ns();
      if (now - deadline > kPeriodNs) ++w.late_by_period;
      if (prev != 0) w.stall.add(std::llabs(now - prev - kPeriodNs));
      prev = now;
    }
  });
  probe.join();
  return w;
}

}  // namespace

void run_full_load_bench(const BenchOptions& opts, Metrics& out) {
  if (!engine::io::jack_midi_available()) {
    std::fprintf(stderr, "full_load: built without JACK; skipped\n");
    return;
  }
  testing::JackdProcess jackd;
  std::string why;
  const std::string server = "jamnet-fullload-" + std::to_string(::getpid());
  if (!jackd.start(server, kRate, kPeriod, why)) {
    std::fprintf(stderr, "full_load: cannot start jackd: %s\n", why.c_str());
    return;
  }
  IdleJackClient idle(server);
  if (!idle.ok()) {
    std::fprintf(stderr, "full_load: cannot open the idle JACK client on %s\n", server.c_str());
    return;
  }
  const int rounds = opts.quick ? 2 : 4;
  const double peer_s = opts.quick ? 4.0 : 8.0;
  const double floor_s = opts.quick ? 2.0 : 4.0;
  Histogram tick, floor_stall;
  std::vector<double> timing;
  std::uint64_t engine_xruns = 0, xruns = 0, floor_xruns = 0, floor_late = 0, sent = 0, played = 0;
  int peer_windows = 0;
  for (int r = 0; r < rounds; ++r) {
    const std::uint64_t before_peer = idle.xruns();
    const PeerWindow p = run_peer_window(server, peer_s);
    const std::uint64_t peer_window_xruns = idle.xruns() - before_peer;
    if (!p.ok) {
      std::fprintf(stderr, "full_load: peer window %d: %s\n", r, p.why.c_str());
    } else {
      ++peer_windows;
      tick.merge(p.tick_jitter);
      timing.insert(timing.end(), p.timing_err_us.begin(), p.timing_err_us.end());
      engine_xruns += p.xruns;
      xruns += peer_window_xruns;
      sent += p.notes_sent;
      played += p.notes_played;
    }
    // The same JACK graph as the peer windows, its clients doing nothing:
    // two no-op clients where the engines were.
    std::vector<std::unique_ptr<IdleJackClient>> stand_ins;
    for (int i = 0; i < 2; ++i)
      stand_ins.push_back(std::make_unique<IdleJackClient>(server, i + 1));
    const std::uint64_t before_floor = idle.xruns();
    const FloorWindow f = run_floor_window(floor_s, g_audio_priority.load());
    floor_xruns += idle.xruns() - before_floor;
    stand_ins.clear();
    floor_stall.merge(f.stall);
    floor_late += f.late_by_period;
  }
  if (peer_windows == 0 || floor_stall.count() == 0) return;
  out["full_load.windows"] = peer_windows;
  out["full_load.peer_seconds"] = peer_windows * peer_s;
  out["full_load.floor_seconds"] = rounds * floor_s;
  out["full_load.audio_priority"] = g_audio_priority.load();
  out["rt.tick_jitter_p99_us"] = static_cast<double>(tick.quantile(0.99)) / 1e3;
  out["rt.tick_jitter_max_us"] = static_cast<double>(tick.max()) / 1e3;
  out["jmid.timing_err_p99_us"] = percentile_of(timing, 0.99);
  out["jmid.timing_err_p50_us"] = percentile_of(timing, 0.50);
  out["full_load.midi_notes_sent"] = static_cast<double>(sent);
  out["full_load.midi_notes_played"] = static_cast<double>(played);
  out["full_load.xruns"] = static_cast<double>(xruns);
  out["full_load.engine_xruns"] = static_cast<double>(engine_xruns);
  out["full_load.floor_xruns"] = static_cast<double>(floor_xruns);
  out["rt.host_stall_p99_us"] = static_cast<double>(floor_stall.quantile(0.99)) / 1e3;
  out["rt.host_stall_max_us"] = static_cast<double>(floor_stall.max()) / 1e3;
  out["rt.host_stall_late_by_a_period"] = static_cast<double>(floor_late);
  std::fprintf(
      stderr,
      "full_load: %d windows: tick jitter p99 %.1f us, JMID timing p99 %.1f us, xruns "
      "%llu; host floor p99 %.1f us, %llu wakes a period late, %llu xruns\n",
      peer_windows, static_cast<double>(tick.quantile(0.99)) / 1e3, percentile_of(timing, 0.99),
      static_cast<unsigned long long>(xruns), static_cast<double>(floor_stall.quantile(0.99)) / 1e3,
      static_cast<unsigned long long>(floor_late), static_cast<unsigned long long>(floor_xruns));
}

}  // namespace jamnet::bench
