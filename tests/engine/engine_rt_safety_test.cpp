// The audio cycle never allocates, frees or locks: this test traps malloc,
// free and pthread mutex locks on the audio thread while Engine::process runs
// (marked by its rt::Scope), with the whole peer path live:
// JACK (jackd -d dummy) -> Engine -> AudioBridge -> two in-process peers
// streaming to each other, commands of every kind in flight, an automation
// lane and the click. A control run whose processor allocates proves the
// traps fire.
//
// Without ASan the test binary interposes malloc/free/calloc/realloc (glibc's
// __libc_* underneath); under ASan (which owns malloc) it installs the
// sanitizer's malloc/free hooks instead. pthread_mutex_lock/trylock and
// pthread_rwlock_*lock are interposed in both builds.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <thread>
#include <vector>

#include "../support/full_load.hpp"
#include "../support/jackd_process.hpp"
#include "../support/skip.hpp"
#include "jamnet/core/rt_scope.hpp"
#include "jamnet/engine/engine.hpp"
#include "jamnet/engine/io/jack_audio.hpp"
#include "jamnet/engine/io/jack_midi.hpp"
#include "jamnet/engine/io/null_backend.hpp"
#include "jamnet/peer/audio_bridge.hpp"
#include "jamnet/peer/peer.hpp"
#include "jamnet/peer/session.hpp"

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (GCC ships no sanitizer/allocator_interface.h).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*,
                                                                             std::size_t),
                                                         void (*free_hook)(const volatile void*));
#define JAMNET_TEST_ASAN 1
#endif

namespace {

using jamnet::rt::Work;
constexpr std::size_t kKinds = static_cast<std::size_t>(Work::kCount);
using Counters = std::array<std::atomic<std::uint64_t>, kKinds>;

// The scopes this thread is inside (innermost last): a trapped call counts
// against the innermost one.
thread_local int t_depth = 0;
thread_local Work t_stack[8];
Counters g_scopes{}, g_allocs{}, g_frees{}, g_locks{}, g_trylocks{};
std::array<std::atomic<bool>, kKinds> g_shown{};
bool g_show_stacks = false;  // JAMNET_TRAP_STACKS=1: the first trapped call of each kind

std::size_t idx(Work w) {
  return static_cast<std::size_t>(w);
}

void enter_scope(Work w) {
  if (t_depth < 8) t_stack[t_depth] = w;
  ++t_depth;
  g_scopes[idx(w)].fetch_add(1, std::memory_order_relaxed);
}
void leave_scope(Work) {
  if (t_depth > 0) --t_depth;
}

#if defined(JAMNET_TEST_ASAN)
extern "C" void __sanitizer_print_stack_trace();
#endif

void trap(Counters& c) {
  if (t_depth <= 0) return;
  const std::size_t k = idx(t_stack[std::min(t_depth, 8) - 1]);
  c[k].fetch_add(1, std::memory_order_relaxed);
#if defined(JAMNET_TEST_ASAN)
  if (g_show_stacks && !g_shown[k].exchange(true)) __sanitizer_print_stack_trace();
#endif
}

#if defined(JAMNET_TEST_ASAN)
void on_malloc(const volatile void*, std::size_t) {
  trap(g_allocs);
}
void on_free(const volatile void*) {
  trap(g_frees);
}
const bool g_hooks_installed = [] {
  return __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
}();
#endif

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

#if !defined(JAMNET_TEST_ASAN)
extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);

void* malloc(std::size_t n) {
  trap(g_allocs);
  return __libc_malloc(n);
}
void free(void* p) {
  if (p) trap(g_frees);
  __libc_free(p);
}
void* calloc(std::size_t n, std::size_t s) {
  trap(g_allocs);
  return __libc_calloc(n, s);
}
void* realloc(void* p, std::size_t n) {
  trap(g_allocs);
  return __libc_realloc(p, n);
}
}
#endif

extern "C" {
int pthread_mutex_lock(pthread_mutex_t* m) {
  static auto fn = real<int (*)(pthread_mutex_t*)>("pthread_mutex_lock");
  trap(g_locks);
  return fn(m);
}
int pthread_mutex_trylock(pthread_mutex_t* m) {
  static auto fn = real<int (*)(pthread_mutex_t*)>("pthread_mutex_trylock");
  trap(g_trylocks);  // never waits: counted apart from the locks that can
  return fn(m);
}
int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
  static auto fn = real<int (*)(pthread_rwlock_t*)>("pthread_rwlock_rdlock");
  trap(g_locks);
  return fn(l);
}
int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
  static auto fn = real<int (*)(pthread_rwlock_t*)>("pthread_rwlock_wrlock");
  trap(g_locks);
  return fn(l);
}
}

namespace jamnet {
namespace {

using engine::Command;
using engine::CommandKind;

struct TrapCounts {
  std::uint64_t cycles, allocs, frees, locks, trylocks;
};

TrapCounts counts(Work w = Work::kAudioCycle) {
  const auto k = idx(w);
  return {g_scopes[k].load(), g_allocs[k].load(), g_frees[k].load(), g_locks[k].load(),
          g_trylocks[k].load()};
}

void reset_counts() {
  for (auto* c : {&g_scopes, &g_allocs, &g_frees, &g_locks, &g_trylocks})
    for (auto& a : *c) a = 0;
  for (auto& b : g_shown) b = false;
  const char* v = std::getenv("JAMNET_TRAP_STACKS");
  g_show_stacks = v != nullptr && std::string_view(v) == "1";
}

// A processor that breaks the rules on purpose: the control run.
class AllocatingProcessor final : public engine::AudioProcessor {
 public:
  void process(const engine::io::AudioBlock& block) noexcept override {
    std::vector<float>* v = new std::vector<float>(block.info.frames);  // allocates
    {
      std::lock_guard<std::mutex> lock(mu_);  // locks
      sink_ += (*v)[0];
    }
    delete v;
    for (float* out : block.outputs) std::fill(out, out + block.info.frames, 0.0f);
  }

 private:
  std::mutex mu_;
  float sink_ = 0;
};

// Commands of every kind, from two control threads, while the engine runs.
void push_load(engine::Engine& e, std::atomic<bool>& stop) {
  std::uint32_t i = 0;
  while (!stop.load()) {
    Command c;
    c.kind = (i % 2) ? CommandKind::kNoteOn : CommandKind::kNoteOff;
    c.a = static_cast<std::uint8_t>(60 + i % 12);
    c.b = 100;
    c.at_ns = monotonic_ns() + 1'000'000;
    e.push(c);
    Command g;
    g.kind = CommandKind::kGain;
    g.target = static_cast<std::uint16_t>(i % 4);
    g.value = 0.5f + 0.1f * static_cast<float>(i % 5);
    e.push(g);
    Command lp;
    lp.kind = CommandKind::kLiveParam;
    lp.target = static_cast<std::uint16_t>(i % 8);
    lp.value = static_cast<float>(i);
    e.push(lp);
    if (i % 50 == 0) {
      Command t;
      t.kind = CommandKind::kTempo;
      t.value = 100.0f + static_cast<float>(i % 40);
      e.push(t);
      Command s;
      s.kind = CommandKind::kStateSync;
      e.push(s);
    }
    ++i;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

std::shared_ptr<const engine::AutomationLane> make_lane() {
  std::vector<engine::AutomationPoint> pts;
  for (std::uint64_t f = 0; f < 48000 * 4; f += 4800)
    pts.push_back({f, (f / 4800) % 2 ? 1.0f : 0.25f});
  return std::make_shared<const engine::AutomationLane>(pts);
}

class EngineRtSafety : public ::testing::Test {
 protected:
  void SetUp() override {
    rt::set_hooks({enter_scope, leave_scope});
    reset_counts();
  }
  void TearDown() override { rt::set_hooks({}); }
  using Engine = engine::Engine;
};

TEST_F(EngineRtSafety, NullBackendCycleNeitherAllocatesNorLocks) {
  engine::io::BackendConfig bc;
  bc.frames = 64;
  bc.outputs = {"out_1", "out_2"};
  auto be = engine::io::open_null_backend(bc);
  ASSERT_TRUE(be) << be.error().message;
  engine::EngineConfig ec;
  ec.click = true;
  ec.click_output = 1;
  engine::Engine e(std::move(*be), ec);
  e.set_master_automation(make_lane(), {});
  ASSERT_TRUE(e.start(nullptr));
  std::atomic<bool> stop{false};
  std::thread load([&] { push_load(e, stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  load.join();
  e.stop();
  const auto c = counts();
  // About 1100 cycles; a stalled VM may run far fewer (the null backend
  // re-anchors instead of bursting). The point is that the cycles ran.
  EXPECT_GT(c.cycles, 20u);
  EXPECT_GT(e.counters().notes, 0u);
  EXPECT_EQ(c.allocs, 0u);
  EXPECT_EQ(c.frees, 0u);
  EXPECT_EQ(c.locks, 0u);
}

TEST_F(EngineRtSafety, TrapsFireOnAProcessorThatAllocatesAndLocks) {
  engine::io::BackendConfig bc;
  bc.frames = 64;
  auto be = engine::io::open_null_backend(bc);
  ASSERT_TRUE(be) << be.error().message;
  engine::Engine e(std::move(*be));
  AllocatingProcessor bad;
  ASSERT_TRUE(e.start(&bad));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  e.stop();
  const auto c = counts();
  ASSERT_GT(c.cycles, 20u);
  EXPECT_GE(c.allocs, c.cycles / 2);
  EXPECT_GE(c.frees, c.cycles / 2);
  EXPECT_GE(c.locks, c.cycles / 2);
}

TEST_F(EngineRtSafety, JackPeerPathNeitherAllocatesNorLocks) {
  if (!engine::io::jack_midi_available()) JAMNET_SKIP_UNLESS_REQUIRED("built without JACK");
  testing::JackdProcess jackd;
  std::string why;
  const std::string server = "jamnet-rtsafe-" + std::to_string(::getpid());
  ASSERT_TRUE(jackd.start(server, 48000, 128, why)) << why;

  // Two peers on loopback, each with an engine on the same JACK server.
  AudioConfig ac;
  ac.period_frames = 128;
  PeerConfig base;
  base.session = Uuid::random();
  base.multicast.reset();
  base.audio = ac;
  base.name = "left";
  auto left = Peer::start(base);
  ASSERT_TRUE(left) << left.error().message;
  base.name = "right";
  base.connect = {(*left)->local()};
  auto right = Peer::start(base);
  ASSERT_TRUE(right) << right.error().message;

  struct Side {
    engine::io::JackAudioBackend* jack = nullptr;
    std::unique_ptr<AudioBridge> bridge;
    std::unique_ptr<engine::Engine> engine;
  };
  std::vector<Side> sides;
  for (Peer* p : {left->get(), right->get()}) {
    engine::io::BackendConfig bc;
    bc.client_name = p->config().name;
    bc.server_name = server;
    bc.inputs = {"send_1"};
    bc.outputs = {"click"};
    bc.midi = true;
    auto be = engine::io::JackAudioBackend::open(bc);
    ASSERT_TRUE(be) << be.error().message;
    auto bridge = AudioBridge::create(*p->audio(), **be);
    ASSERT_TRUE(bridge) << bridge.error().message;
    engine::EngineConfig ec;
    ec.click = true;
    ec.click_output = 0;
    Side s;
    s.jack = be->get();
    s.bridge = std::move(*bridge);
    s.engine = std::make_unique<engine::Engine>(std::move(*be), ec);
    s.engine->set_master_automation(make_lane(), {});
    s.bridge->start();
    ASSERT_TRUE(s.engine->start(s.bridge.get()));
    sides.push_back(std::move(s));
  }
  // Feed each side's input with the other's click: real audio on the wire.
  ASSERT_TRUE(sides[0].jack->connect("left:click", "left:send_1"));
  ASSERT_TRUE(sides[1].jack->connect("right:click", "right:send_1"));

  std::atomic<bool> stop{false};
  std::thread load_l([&] { push_load(*sides[0].engine, stop); });
  std::thread load_r([&] { push_load(*sides[1].engine, stop); });
  const Nanos end = monotonic_ns() + 3'000'000'000;
  std::size_t ports = 0;
  while (monotonic_ns() < end) {
    ports += sides[0].bridge->update().added.size();
    ports += sides[1].bridge->update().added.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  load_l.join();
  load_r.join();
  const auto heard = (*left)->audio()->stats_from((*right)->id());
  for (auto& s : sides) {
    s.engine->stop();
    s.bridge->stop();
  }
  (*right)->stop();
  (*left)->stop();
  const auto c = counts();
  EXPECT_EQ(ports, 2u);  // each side gave the other's stream a port
  ASSERT_TRUE(heard.has_value());
  EXPECT_GT(heard->jitter.played, 20u);
  EXPECT_GT(c.cycles, 100u);  // about 2250 on a quiet machine
  EXPECT_EQ(c.allocs, 0u);
  EXPECT_EQ(c.frees, 0u);
  EXPECT_EQ(c.locks, 0u);
}

// Every real-time thread of two peers doing their whole job at once, for
// 10 s: JACK audio and JACK MIDI (jackd -d dummy), audio both ways, MIDI
// notes both ways every 5 ms, discovery, heartbeats and clock sync running.
// Inside every rt::Scope - an audio cycle, a JACK MIDI period, a received
// datagram, a block sent, a MIDI send or playout wake - nothing allocates or
// frees, and nothing takes a lock (a snapshot try-lock for a reader aside).
TEST_F(EngineRtSafety, FullPeerLoadKeepsEveryRealTimeThreadClean) {
  if (!engine::io::jack_midi_available()) JAMNET_SKIP_UNLESS_REQUIRED("built without JACK");
  testing::JackdProcess jackd;
  std::string why;
  const std::string server = "jamnet-rtfull-" + std::to_string(::getpid());
  ASSERT_TRUE(jackd.start(server, 48000, 128, why)) << why;

  const Uuid session = Uuid::random();
  auto options = [&](const char* name) {
    auto o = testing::jack_session_options(name, session, server);
    o.jack_midi = true;
    return o;
  };
  auto left = Session::start(options("left"));
  ASSERT_TRUE(left) << left.error().message;
  auto ro = options("right");
  ro.peer.connect = {(*left)->peer().local()};
  auto right = Session::start(ro);
  ASSERT_TRUE(right) << right.error().message;
  for (int i = 0; i < 300 && ((*left)->peer().peers().empty() || (*right)->peer().peers().empty());
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_FALSE((*left)->peer().peers().empty());

  std::atomic<bool> stop{false};
  std::thread notes([&] {
    for (std::uint32_t i = 0; !stop.load(); ++i) {
      const auto e = testing::load_note(i);
      (void)(*left)->send_midi({&e, 1});
      (void)(*right)->send_midi({&e, 1});
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  // The steady state: each side has heard the other's audio and MIDI (a new
  // stream's receiver and a new destination's counter are set up once, then).
  for (int i = 0; i < 300; ++i) {
    const auto l = (*left)->status(), r = (*right)->status();
    if (!l.sources.empty() && !r.sources.empty() && l.report.midi && r.report.midi &&
        !l.report.midi->senders.empty() && !r.report.midi->senders.empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  reset_counts();
  std::this_thread::sleep_for(std::chrono::seconds(10));
  stop = true;
  notes.join();
  // The counts first: status readers below must not add to them.
  std::array<TrapCounts, kKinds> c{};
  for (std::size_t k = 0; k < kKinds; ++k) c[k] = counts(static_cast<Work>(k));
  const auto st = (*right)->status();
  right->reset();
  left->reset();

  ASSERT_TRUE(st.report.midi.has_value());
  std::uint64_t delivered = 0;
  for (const auto& s : st.report.midi->senders) delivered += s.delivered;
  EXPECT_GT(delivered, 500u) << "MIDI notes from left";
  ASSERT_FALSE(st.sources.empty());
  // No lock anywhere. The threads that own state other threads read (the
  // receive thread's tables, the MIDI playout's per-peer state) try-lock
  // their snapshot when a reader asked (the control thread's loss reports,
  // a few times a second) and never wait: bounded here at one per 50
  // stretches, far above what readers ask and far below one per datagram.
  const struct {
    Work w;
    const char* name;
    std::uint64_t at_least;  // stretches in 10 s, far below the nominal count
  } kinds[] = {
      {Work::kAudioCycle, "audio cycle", 1000},     {Work::kJackMidi, "JACK MIDI period", 1000},
      {Work::kAudioSend, "audio block sent", 1000}, {Work::kReceive, "received datagram", 1000},
      {Work::kMidiSend, "MIDI send wake", 500},     {Work::kMidiPlayout, "MIDI playout wake", 500}};
  for (const auto& k : kinds) {
    const auto& n = c[idx(k.w)];
    SCOPED_TRACE(k.name);
    EXPECT_GT(n.cycles, k.at_least);
    EXPECT_EQ(n.allocs, 0u);
    EXPECT_EQ(n.frees, 0u);
    EXPECT_EQ(n.locks, 0u);
    EXPECT_LE(n.trylocks, n.cycles / 50);
    std::printf("%-18s %8llu stretches: %llu allocations, %llu frees, %llu locks, %llu try-locks\n",
                k.name, static_cast<unsigned long long>(n.cycles),
                static_cast<unsigned long long>(n.allocs), static_cast<unsigned long long>(n.frees),
                static_cast<unsigned long long>(n.locks),
                static_cast<unsigned long long>(n.trylocks));
  }
}

}  // namespace
}  // namespace jamnet
