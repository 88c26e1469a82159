// The batch kernels (CPU reference) and the Vulkan backend on whatever device
// the machine has (lavapipe in CI): results equal the reference bit for bit.
#include "jamnet/gpu/compute.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "jamnet/protocol/jmid.hpp"
#include "jamnet/sync/clock_source.hpp"

namespace jamnet::gpu {
namespace {

namespace jmid = protocol::jmid;

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::vector<float> random_signal(std::size_t n, std::uint32_t seed, float amp = 0.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Histories: even streams a sum of two sines (predictable), odd streams noise.
std::vector<float> histories(const PnbtrShape& s, std::uint32_t seed) {
  std::vector<float> h = random_signal(std::size_t(s.streams) * s.history, seed, 0.3f);
  for (int st = 0; st < s.streams; st += 2) {
    const double f1 = 110.0 + 7.0 * st, f2 = 2.5 * f1;
    for (int t = 0; t < s.history; ++t) {
      const double w = 2 * std::numbers::pi * t / 48000.0;
      h[std::size_t(st) * s.history + t] =
          float(0.4 * std::sin(w * f1 + st) + 0.2 * std::sin(w * f2));
    }
  }
  return h;
}

std::string sizes(int n) {
  return std::to_string(n);
}

// ------------------------------------------------------------- reference

TEST(GpuKernels, MixMatchesHandComputedSums) {
  const MixShape s{.inputs = 3, .outputs = 2, .frames = 4};
  const std::vector<float> gains = {1.0f, 0.5f, 0.0f, 0.0f, 2.0f, -1.0f};
  const std::vector<float> in = {1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 300, 400};
  std::vector<float> out(8, -7.0f);
  auto cpu = make_cpu_compute();
  ASSERT_TRUE(cpu->mix(s, gains, in, out));
  const std::vector<float> want = {6, 12, 18, 24, -80, -160, -240, -320};
  EXPECT_EQ(out, want);
}

TEST(GpuKernels, MixChecksSizes) {
  auto cpu = make_cpu_compute();
  std::vector<float> g(6), in(12), out(8);
  auto r = cpu->mix({.inputs = 3, .outputs = 2, .frames = 4}, std::span(g).first(5), in, out);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("gains holds 5 values, 6 expected"), std::string::npos)
      << r.error().message;
  r = cpu->mix({.inputs = 3, .outputs = 2, .frames = 0}, g, in, out);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("frames"), std::string::npos);
  // No inputs: silence.
  std::vector<float> silent(8, 1.0f);
  ASSERT_TRUE(cpu->mix({.inputs = 0, .outputs = 2, .frames = 4}, {}, {}, silent));
  EXPECT_EQ(silent, std::vector<float>(8, 0.0f));
}

TEST(GpuKernels, PnbtrContinuesASineAndStaysBounded) {
  const PnbtrShape s{.streams = 3, .history = 256, .order = 32, .frames = 128};
  std::vector<float> h(std::size_t(s.streams) * s.history);
  std::vector<float> truth(s.frames);
  for (int t = 0; t < s.history + s.frames; ++t) {
    const float v = float(0.5 * std::sin(2 * std::numbers::pi * 440.0 * t / 48000.0));
    if (t < s.history)
      h[t] = v;
    else
      truth[t - s.history] = v;
  }
  const auto noise = random_signal(s.history, 7, 1.0f);  // stream 1: full-scale noise
  std::copy(noise.begin(), noise.end(), h.begin() + s.history);
  // stream 2: silence
  std::vector<float> out(std::size_t(s.streams) * s.frames, 9.0f);
  ASSERT_TRUE(make_cpu_compute()->pnbtr(s, h, out));
  double err = 0, sig = 0;
  for (int i = 0; i < s.frames; ++i) {
    err += (out[i] - truth[i]) * (out[i] - truth[i]);
    sig += truth[i] * truth[i];
  }
  EXPECT_GT(10 * std::log10(sig / std::max(err, 1e-30)), 30.0) << "sine continuation SNR";
  for (int i = 0; i < s.frames; ++i) {
    EXPECT_TRUE(std::isfinite(out[s.frames + i]));
    EXPECT_LE(std::abs(out[s.frames + i]), 1.0f);
    EXPECT_EQ(out[2 * s.frames + i], 0.0f);
  }
}

TEST(GpuKernels, PnbtrRejectsBadShapes) {
  auto cpu = make_cpu_compute();
  std::vector<float> h(256), o(128);
  for (auto [order, history, frames, what] :
       {std::tuple{0, 256, 128, "order"}, std::tuple{33, 256, 128, "order"},
        std::tuple{32, 33, 128, "history"}, std::tuple{32, 2000, 128, "history"},
        std::tuple{32, 256, 0, "frames"}}) {
    auto r = cpu->pnbtr({.streams = 1, .history = history, .order = order, .frames = frames}, h, o);
    ASSERT_FALSE(r) << what;
    EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
  }
  auto r = cpu->pnbtr({.streams = 2, .history = 256, .order = 32, .frames = 128}, h, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("history holds 256 values, 512 expected"), std::string::npos);
}

TEST(GpuKernels, SplitLines) {
  EXPECT_EQ(*split_lines(""), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(*split_lines("ab"), (std::vector<std::uint32_t>{0, 2}));
  EXPECT_EQ(*split_lines("ab\n"), (std::vector<std::uint32_t>{0, 3}));
  EXPECT_EQ(*split_lines("ab\ncd"), (std::vector<std::uint32_t>{0, 3, 5}));
  EXPECT_EQ(*split_lines("\n\n"), (std::vector<std::uint32_t>{0, 1, 2}));
}

// Random valid events of every non-SysEx kind, as canonical lines.
jmid::Event random_event(std::mt19937_64& rng) {
  jmid::Event e;
  e.kind = static_cast<jmid::Kind>(rng() % 17);  // not kSysEx
  e.channel = rng() % 16;
  e.data1 = rng() % 128;
  e.data2 = rng() % 128;
  using K = jmid::Kind;
  if (e.kind == K::kPitchBend) e.value14 = std::int16_t(int(rng() % 16384) - 8192);
  if (e.kind == K::kSongPosition) e.value14 = std::int16_t(rng() % 16384);
  e.ts_ns = std::int64_t(rng()) >> (rng() % 40);
  e.seq = rng() >> (rng() % 64);
  // What the line carries of a kind without those fields is not parsed back.
  const auto round = jmid::parse_line(jmid::to_line(e));
  return round ? *round : e;
}

void expect_fields_equal(const JsonlFields& f, const jmid::Event& e, const std::string& line) {
  ASSERT_EQ(f.status, kJsonlOk) << line;
  EXPECT_EQ(f.kind, std::uint32_t(e.kind)) << line;
  EXPECT_EQ(f.channel, e.channel) << line;
  EXPECT_EQ(f.data1, e.data1) << line;
  EXPECT_EQ(f.data2, e.data2) << line;
  EXPECT_EQ(f.value14, e.value14) << line;
  EXPECT_EQ(f.ts_ns(), e.ts_ns) << line;
  EXPECT_EQ(f.seq(), e.seq) << line;
}

TEST(GpuKernels, JsonlExtractsWhatTheParserReads) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 3000; ++i) {
    const jmid::Event e = random_event(rng);
    const std::string line = jmid::to_line(e);
    auto parsed = jmid::parse_line(line);
    ASSERT_TRUE(parsed) << line;
    expect_fields_equal(jsonl_extract_line(line), *parsed, line);
  }
  // Other key orders and extra known keys are still the compact form.
  for (const char* line :
       {R"({"seq":1,"ts":-5,"v":100,"n":60,"c":16,"t":"n+"})", R"({"t":"clk","c":99,"ts":1})",
        R"({"t":"pb","c":1,"v":-8192})", R"({"t":"spp","v":16383,"seq":18446744073709551615})",
        R"({"t":"ss","v":0,"ts":-9223372036854775808})",
        R"({"t":"ss","v":0,"ts":9223372036854775807})", R"({"t":"tr"})"}) {
    auto parsed = jmid::parse_line(line);
    ASSERT_TRUE(parsed) << line;
    expect_fields_equal(jsonl_extract_line(line), *parsed, line);
  }
}

TEST(GpuKernels, JsonlLeavesEverythingElseToTheParser) {
  for (const char* line :
       {R"({"t": "n+","c":1,"n":60,"v":100})",                            // whitespace
        R"({"t":"n+","c":1,"n":60,"v":100} )",                            // trailing space
        R"({"t":"sx","i":0,"l":1,"d":"7E7F"})",                           // SysEx
        R"({"t":"n+","c":0,"n":60,"v":100})",                             // channel out of range
        R"({"t":"n+","c":1,"n":128,"v":100})",                            // note out of range
        R"({"t":"pb","c":1,"v":8192})",                                   // bend out of range
        R"({"t":"n+","c":1,"v":100})",                                    // missing n
        R"({"c":1,"n":60,"v":100})",                                      // missing t
        R"({"t":"n+","c":01,"n":60,"v":100})",                            // leading zero
        R"({"t":"cc","c":1,"n":-0,"v":1})",                               // -0
        R"({"t":"n+","t":"n-","c":1,"n":60,"v":100})",                    // duplicate key
        R"({"t":"n+","c":1,"n":60,"v":100,"x":1})",                       // unknown key
        R"({"t":"zz","c":1})",                                            // unknown type
        R"({"t":"n+","c":1,"n":60,"v":1.5})",                             // not an integer
        R"({"t":"n+","c":1,"n":60,"v":100,"ts":9223372036854775808})",    // ts > int64
        R"({"t":"n+","c":1,"n":60,"v":100,"seq":18446744073709551616})",  // seq > uint64
        R"({"t":"n+","c":1,"n":60,"v":100,"seq":-1})",                    // negative seq
        R"({"t":"n\u002b","c":1,"n":60,"v":100})",                        // escape
        "{}",
        "{",
        "",
        "[1]",
        R"({"t":"n+","c":1,"n":60,"v":100,})"}) {
    EXPECT_EQ(jsonl_extract_line(line).status, kJsonlFallback) << line;
  }
  // A NUL inside a key must not make "c\0" read as "c" (found by the fuzzer).
  const std::string nul = std::string(R"({"t":"pc","c)") + '\0' + R"(":1,"v":5})";
  EXPECT_EQ(jsonl_extract_line(nul).status, kJsonlFallback);
  EXPECT_FALSE(jmid::parse_line(nul));
}

// --------------------------------------------------------------- backends

// The Vulkan backend on the machine's device; CPU-type devices (lavapipe)
// included. CI installs lavapipe, so a missing device fails the test unless
// JAMNET_ALLOW_NO_VULKAN=1 says this machine has none.
std::unique_ptr<Compute> vulkan_or_fail() {
  auto vk = make_vulkan_compute(true);
  if (!vk) {
    const char* allow = std::getenv("JAMNET_ALLOW_NO_VULKAN");
    if (allow && std::string_view(allow) == "1") return nullptr;
    ADD_FAILURE() << "no Vulkan device: " << vk.error().message
                  << " (set JAMNET_ALLOW_NO_VULKAN=1 on a machine without lavapipe)";
    return nullptr;
  }
  return std::move(*vk);
}

TEST(GpuVulkan, PnbtrBitExactWithTheReference) {
  auto vk = vulkan_or_fail();
  if (!vk) {
    GTEST_SKIP() << "no Vulkan device";
  }
  auto cpu = make_cpu_compute();
  for (int n : {1, 16, 256, 1024}) {
    const PnbtrShape s{.streams = n, .history = 256, .order = 32, .frames = 128};
    const auto h = histories(s, 100 + n);
    std::vector<float> a(std::size_t(n) * s.frames), b(a.size(), 5.0f);
    ASSERT_TRUE(cpu->pnbtr(s, h, a));
    auto r = vk->pnbtr(s, h, b);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
        << "streams " << sizes(n) << ", max rel err " << max_rel_err(b, a);
    EXPECT_LE(max_rel_err(b, a), 1e-6);
  }
  // Other shapes through the same (grown) buffers.
  const PnbtrShape s{.streams = 5, .history = 100, .order = 7, .frames = 300};
  const auto h = histories(s, 9);
  std::vector<float> a(std::size_t(s.streams) * s.frames), b(a.size());
  ASSERT_TRUE(cpu->pnbtr(s, h, a));
  ASSERT_TRUE(vk->pnbtr(s, h, b));
  EXPECT_EQ(a, b);
}

TEST(GpuVulkan, MixBitExactWithTheReference) {
  auto vk = vulkan_or_fail();
  if (!vk) {
    GTEST_SKIP() << "no Vulkan device";
  }
  auto cpu = make_cpu_compute();
  for (int n : {1, 16, 256, 1024}) {
    const MixShape s{.inputs = n, .outputs = 16, .frames = 128};
    const auto gains = random_signal(std::size_t(s.outputs) * n, 3 + n, 1.0f);
    const auto in = random_signal(std::size_t(n) * s.frames, 4 + n, 1.0f);
    std::vector<float> a(std::size_t(s.outputs) * s.frames), b(a.size(), 5.0f);
    ASSERT_TRUE(cpu->mix(s, gains, in, a));
    auto r = vk->mix(s, gains, in, b);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(a, b) << "inputs " << n << ", max rel err " << max_rel_err(b, a);
  }
}

std::string jsonl_batch(int lines, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string blob;
  for (int i = 0; i < lines; ++i) {
    switch (i % 10) {
      case 7:
        blob += R"({"t": "cc","c":1,"n":7,"v":100})";  // whitespace: CPU
        break;
      case 8:
        blob += R"({"t":"sx","i":0,"l":1,"d":"7E7F09"})";
        break;
      case 9:
        blob += R"({"t":"n+","c":17,"n":60,"v":100})";  // invalid
        break;
      default:
        blob += jmid::to_line(random_event(rng));
    }
    blob += '\n';
  }
  return blob;
}

TEST(GpuVulkan, JsonlBatchEqualsTheReference) {
  auto vk = vulkan_or_fail();
  if (!vk) {
    GTEST_SKIP() << "no Vulkan device";
  }
  for (int lines : {1, 10000}) {
    std::string blob = jsonl_batch(lines, 11);
    if (lines == 1) blob.pop_back();  // a last line without newline
    const auto off = *split_lines(blob);
    ASSERT_EQ(off.size(), std::size_t(lines) + 1);
    std::vector<JsonlFields> a(lines), b(lines);
    jsonl_reference(blob, off, a);
    auto r = vk->jsonl(blob, off, b);
    ASSERT_TRUE(r) << r.error().message;
    int ok = 0;
    for (int i = 0; i < lines; ++i) {
      ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(JsonlFields)), 0) << "line " << i;
      ok += a[i].status == kJsonlOk;
    }
    if (lines == 10000) {
      EXPECT_EQ(ok, 7000);
    }
  }
}

TEST(GpuVulkan, NoopDispatchAndDeviceName) {
  auto vk = vulkan_or_fail();
  if (!vk) {
    GTEST_SKIP() << "no Vulkan device";
  }
  EXPECT_EQ(vk->backend(), Backend::kVulkan);
  EXPECT_FALSE(vk->device_name().empty());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(vk->noop());
}

TEST(GpuVulkan, CalibratedTimestampsGiveASyncClock) {
  auto vk = vulkan_or_fail();
  if (!vk) {
    GTEST_SKIP() << "no Vulkan device";
  }
  auto clock = sync::make_gpu_clock(*vk);
  if (!clock) {
    GTEST_SKIP() << vk->device_name() << " has no VK_EXT_calibrated_timestamps";
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(clock->calibrate());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // A fresh pair: the fitted clock maps its monotonic time onto its counter
  // time within the pair's own uncertainty (plus 20 µs for a preempted read).
  for (int i = 0; i < 5; ++i) {
    const auto p = vk->sample_clock();
    ASSERT_TRUE(p);
    const std::int64_t gpu_ns = clock->ticks_to_ns(p->ticks);
    const std::int64_t mapped = clock->from_monotonic(p->mono);
    EXPECT_LE(std::llabs(mapped - gpu_ns), 2 * p->max_deviation_ns + 20'000)
        << "deviation " << p->max_deviation_ns << " ns";
    EXPECT_LE(std::llabs(clock->to_monotonic(mapped) - p->mono), 2);
  }
}

// ------------------------------------------------------------- fallbacks

TEST(GpuFallback, NoVulkanDriverFallsBackToTheCpu) {
  ScopedEnv loader("JAMNET_VULKAN_LOADER", "/nonexistent/libvulkan.so.1");
  auto vk = make_vulkan_compute(true);
  ASSERT_FALSE(vk);
  EXPECT_NE(vk.error().message.find("no Vulkan loader"), std::string::npos) << vk.error().message;
  // Asked for explicitly: an error, never a silent CPU.
  auto want = make_compute({.want = Want::kVulkan, .allow_cpu_device = true});
  ASSERT_FALSE(want);
  // Asked for "auto": a working backend that says why Vulkan was passed over.
  ScopedEnv no_cuda("JAMNET_DISABLE_CUDA", "1");
  auto any = make_compute({.want = Want::kAuto, .allow_cpu_device = true});
  ASSERT_TRUE(any);
  EXPECT_EQ((*any)->backend(), Backend::kCpu);
  EXPECT_NE((*any)->fallback_reason().find("no Vulkan loader"), std::string::npos)
      << (*any)->fallback_reason();
  std::vector<float> g = {0.5f}, in = {1, 2}, out(2);
  ASSERT_TRUE((*any)->mix({.inputs = 1, .outputs = 1, .frames = 2}, g, in, out));
  EXPECT_EQ(out, (std::vector<float>{0.5f, 1.0f}));
  // Detection agrees.
  const Detection d = detect();
  for (const auto& dev : d.devices) EXPECT_NE(dev.backend, Backend::kVulkan);
}

TEST(GpuFallback, DisabledVulkanAndTheEnvironmentChoice) {
  {
    ScopedEnv off("JAMNET_DISABLE_VULKAN", "1");
    auto vk = make_vulkan_compute(true);
    ASSERT_FALSE(vk);
    EXPECT_NE(vk.error().message.find("JAMNET_DISABLE_VULKAN"), std::string::npos);
  }
  {
    ScopedEnv pick("JAMNET_COMPUTE", "cpu");
    auto c = make_compute_from_env();
    ASSERT_TRUE(c);
    EXPECT_EQ((*c)->backend(), Backend::kCpu);
  }
  {
    ScopedEnv pick("JAMNET_COMPUTE", "metal");
    auto c = make_compute_from_env();
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("JAMNET_COMPUTE must be auto, cpu, vulkan or cuda"),
              std::string::npos);
  }
  // "auto" never takes a CPU-type Vulkan device: it would only be slower.
  ScopedEnv no_cuda("JAMNET_DISABLE_CUDA", "1");
  auto c = make_compute({.want = Want::kAuto, .allow_cpu_device = false});
  ASSERT_TRUE(c);
  if ((*c)->backend() == Backend::kCpu) {
    EXPECT_FALSE((*c)->fallback_reason().empty());
  }
}

}  // namespace
}  // namespace jamnet::gpu
