#include "jamnet/engine/io/null_backend.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace jamnet::engine::io {
namespace {

using namespace std::chrono_literals;

// Records what the backend hands it, from the audio thread, into preallocated
// slots only (the callback must not allocate).
class Recorder : public AudioCallback {
 public:
  static constexpr std::size_t kSlots = 4096;

  void process(const AudioBlock& block) noexcept override {
    const auto n = calls_.load(std::memory_order_relaxed);
    if (n < kSlots) {
      infos_[n] = block.info;
      outputs_[n] = block.outputs.size();
      inputs_silent_[n] = true;
      for (const float* in : block.inputs) {
        for (std::uint32_t f = 0; f < block.info.frames; ++f) inputs_silent_[n] &= in[f] == 0.0f;
      }
    }
    for (float* out : block.outputs) {
      for (std::uint32_t f = 0; f < block.info.frames; ++f) out[f] = 0.5f;
    }
    calls_.store(n + 1, std::memory_order_release);
  }

  std::uint64_t calls() const { return calls_.load(std::memory_order_acquire); }
  const CycleInfo& info(std::size_t i) const { return infos_[i]; }
  std::size_t outputs(std::size_t i) const { return outputs_[i]; }
  bool inputs_silent(std::size_t i) const { return inputs_silent_[i]; }

 private:
  std::atomic<std::uint64_t> calls_{0};
  std::array<CycleInfo, kSlots> infos_{};
  std::array<std::size_t, kSlots> outputs_{};
  std::array<bool, kSlots> inputs_silent_{};
};

BackendConfig config_48k_128() {
  BackendConfig c;
  c.client_name = "nulltest";
  c.inputs = {"in_1", "in_2"};
  c.outputs = {"out_1"};
  c.sample_rate = 48000;
  c.frames = 128;  // 2.667 ms
  return c;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

TEST(NullBackend, DescribesItself) {
  auto b = open_null_backend(config_48k_128());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ((*b)->kind(), "null");
  EXPECT_EQ((*b)->client_name(), "nulltest");
  EXPECT_EQ((*b)->sample_rate(), 48000u);
  EXPECT_EQ((*b)->buffer_size(), 128u);
  EXPECT_EQ((*b)->input_ports(), (std::vector<std::string>{"nulltest:in_1", "nulltest:in_2"}));
  EXPECT_EQ((*b)->output_ports(), (std::vector<std::string>{"nulltest:out_1"}));
  EXPECT_FALSE((*b)->transport().has_value());
  EXPECT_FALSE((*b)->failure().has_value());
  EXPECT_FALSE((*b)->finished());
}

TEST(NullBackend, RejectsBadConfig) {
  auto c = config_48k_128();
  c.frames = 0;
  EXPECT_EQ(open_null_backend(c).error().code, Errc::kInvalidArgument);
  c = config_48k_128();
  c.sample_rate = 0;
  EXPECT_EQ(open_null_backend(c).error().code, Errc::kInvalidArgument);
  c = config_48k_128();
  c.outputs = {"in_1"};  // same name as an input
  EXPECT_EQ(open_null_backend(c).error().code, Errc::kInvalidArgument);
}

TEST(NullBackend, CyclesAdvanceAtAboutTheRightRate) {
  auto b = open_null_backend(config_48k_128());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  auto rec_owner = std::make_unique<Recorder>();  // big: not on the stack
  Recorder& rec = *rec_owner;
  const Nanos t0 = monotonic_ns();
  ASSERT_TRUE((*b)->start(rec).has_value());
  std::this_thread::sleep_for(300ms);
  const auto c = static_cast<double>((*b)->cycles());
  const Nanos t1 = monotonic_ns();
  (*b)->stop();
  const double period = 1e9 * 128 / 48000;                        // 375 cycles a second
  const double most = static_cast<double>(t1 - t0) / period + 1;  // the first tick is at once
  std::printf("null backend: %.0f cycles in %.3f s (at most %.1f), %llu xruns\n", c,
              static_cast<double>(t1 - t0) / 1e9, most,
              static_cast<unsigned long long>((*b)->xruns()));
  EXPECT_LE(c, most + 1);  // never faster than real time
  if ((*b)->xruns() == 0) {
    // No overrun: every tick ran within a period of its slot on the absolute
    // schedule, so all the ticks due since the first, but the last one or
    // two, have run.
    const double due = static_cast<double>(t1 - rec.info(0).start_ns) / period + 1;
    EXPECT_GE(c, due - 2);
  } else {
    // Each overrun skips the time it lost (re-anchoring, no burst): on a
    // shared VM that can be much; ticks must still be coming.
    EXPECT_GT(c, most * 0.1);
  }
  EXPECT_EQ(rec.calls(), (*b)->cycles());
}

TEST(NullBackend, CycleInfoIsConsistent) {
  auto b = open_null_backend(config_48k_128());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  auto rec_owner = std::make_unique<Recorder>();  // big: not on the stack
  Recorder& rec = *rec_owner;
  ASSERT_TRUE((*b)->start(rec).has_value());
  ASSERT_TRUE(wait_for([&] { return rec.calls() >= 100; }, 5s));
  (*b)->stop();
  const auto n = std::min<std::uint64_t>(rec.calls(), Recorder::kSlots);
  const Nanos period = Nanos{1'000'000'000} * 128 / 48000;
  EXPECT_EQ(rec.info(0).frame_time, 0u);
  std::uint64_t xrun_steps = 0;
  for (std::size_t i = 0; i < n; ++i) {
    SCOPED_TRACE("cycle " + std::to_string(i));
    const auto& in = rec.info(i);
    EXPECT_EQ(in.frames, 128u);
    EXPECT_EQ(in.sample_rate, 48000u);
    EXPECT_EQ(in.period_ns, period);
    EXPECT_GE(in.wake_ns, in.start_ns);  // woken at or after the tick it serves
    EXPECT_TRUE(rec.inputs_silent(i));
    EXPECT_EQ(rec.outputs(i), 1u);
    if (i == 0) continue;
    const auto& prev = rec.info(i - 1);
    EXPECT_EQ(in.frame_time, prev.frame_time + 128);
    const Nanos step = in.start_ns - prev.start_ns;
    if (step > period + 1) {
      ++xrun_steps;  // re-anchored after an overrun: a later start, never an earlier one
    } else {
      EXPECT_NEAR(static_cast<double>(step), static_cast<double>(period), 1.0);  // ns rounding
    }
  }
  // Every jump in the schedule is an overrun the backend counted.
  EXPECT_LE(xrun_steps, (*b)->xruns());
}

TEST(NullBackend, AddOutputWhileRunningShowsUpInALaterCycle) {
  auto b = open_null_backend(config_48k_128());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  auto rec_owner = std::make_unique<Recorder>();  // big: not on the stack
  Recorder& rec = *rec_owner;
  ASSERT_TRUE((*b)->start(rec).has_value());
  ASSERT_TRUE(wait_for([&] { return rec.calls() >= 10; }, 5s));
  auto idx = (*b)->add_output("out_2");
  ASSERT_TRUE(idx.has_value()) << idx.error().message;
  EXPECT_EQ(*idx, 1u);
  const auto added_at = rec.calls();
  auto idx3 = (*b)->add_output("out_3");
  ASSERT_TRUE(idx3.has_value()) << idx3.error().message;
  EXPECT_EQ(*idx3, 2u);
  EXPECT_EQ((*b)->add_output("out_3").error().code, Errc::kInvalidArgument);  // exists
  ASSERT_TRUE(wait_for([&] { return rec.calls() >= added_at + 10; }, 5s));
  (*b)->stop();
  EXPECT_EQ((*b)->output_ports(),
            (std::vector<std::string>{"nulltest:out_1", "nulltest:out_2", "nulltest:out_3"}));
  const auto n = std::min<std::uint64_t>(rec.calls(), Recorder::kSlots);
  EXPECT_EQ(rec.outputs(0), 1u);
  EXPECT_EQ(rec.outputs(n - 1), 3u);
  // Never fewer outputs than before: the count only grows, one array at a time.
  for (std::size_t i = 1; i < n; ++i) EXPECT_GE(rec.outputs(i), rec.outputs(i - 1));
}

TEST(NullBackend, StopIsIdempotentAndProcessIsNotCalledAfterIt) {
  auto b = open_null_backend(config_48k_128());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  (*b)->stop();                                   // before start: harmless
  auto rec_owner = std::make_unique<Recorder>();  // big: not on the stack
  Recorder& rec = *rec_owner;
  ASSERT_TRUE((*b)->start(rec).has_value());
  EXPECT_EQ((*b)->start(rec).error().code, Errc::kInvalidArgument);  // already started
  ASSERT_TRUE(wait_for([&] { return rec.calls() >= 5; }, 5s));
  (*b)->stop();
  const auto calls = rec.calls();
  const auto cycles = (*b)->cycles();
  (*b)->stop();
  std::this_thread::sleep_for(50ms);  // ~19 periods
  EXPECT_EQ(rec.calls(), calls);
  EXPECT_EQ((*b)->cycles(), cycles);

  // Starts again, and frame_time carries on from where it stopped.
  ASSERT_TRUE((*b)->start(rec).has_value());
  ASSERT_TRUE(wait_for([&] { return rec.calls() >= calls + 3; }, 5s));
  (*b)->stop();
  EXPECT_EQ(rec.info(calls).frame_time, rec.info(calls - 1).frame_time + 128);
}

TEST(NullBackend, RunsWithoutRealtimeToo) {
  auto c = config_48k_128();
  c.realtime = false;
  auto b = open_null_backend(c);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  auto rec_owner = std::make_unique<Recorder>();  // big: not on the stack
  Recorder& rec = *rec_owner;
  ASSERT_TRUE((*b)->start(rec).has_value());
  EXPECT_TRUE(wait_for([&] { return rec.calls() >= 20; }, 5s));
  (*b)->stop();
}

}  // namespace
}  // namespace jamnet::engine::io
