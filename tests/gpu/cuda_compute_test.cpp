// The CUDA compute backend (src/gpu/cuda_compute.cpp, src/gpu/cuda/kernels.cu):
// its fallbacks when it cannot start, and bit-for-bit agreement with the CPU
// reference (kernels_cpu.cpp): on a device when there is one (never in CI),
// and wherever the backend is built on the host emulation of the same kernel
// code (cuda_api.h host_*), which checks the port's logic and operation order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "jamnet/gpu/compute.hpp"
#include "jamnet/gpu/kernels.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::gpu {

// Test hook defined in src/gpu/cuda_compute.cpp: the CUDA kernels' code run
// on the host; fails when built without CUDA.
Result<std::unique_ptr<Compute>> make_cuda_host_emulation();

namespace {

namespace jmid = protocol::jmid;

// Sets (or unsets) an environment variable for one scope.
class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~EnvGuard() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Bit-for-bit equality, reporting the first few differences.
::testing::AssertionResult same_bits(const std::vector<float>& got, const std::vector<float>& want,
                                     std::size_t row) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << want.size();
  if (std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0)
    return ::testing::AssertionSuccess();
  auto fail = ::testing::AssertionFailure();
  std::size_t diffs = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (bits(got[i]) == bits(want[i])) continue;
    if (++diffs <= 5)
      fail << "\n  [" << i / row << "][" << i % row << "] got " << got[i] << " (0x" << std::hex
           << bits(got[i]) << ") want " << want[i] << " (0x" << bits(want[i]) << std::dec << ")";
  }
  return fail << "\n  " << diffs << " of " << got.size() << " values differ";
}

// ------------------------------------------------------------------ PNBTR

// Streams of all kinds: noise, sines, silence, very quiet ones (around the
// fit's power floor, float denormals), a square wave, and a few with a NaN or
// an infinity (the clamp turns those into 0 or ±1).
std::vector<float> histories(int streams, int history, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> h(std::size_t(streams) * history);
  for (int s = 0; s < streams; ++s) {
    float* x = h.data() + std::size_t(s) * history;
    const int kind = s % 8;
    const float f0 = 0.003f + 0.2f * float(s % 97) / 97.0f;
    const float amp = 0.1f + 0.8f * float((s * 37) % 101) / 101.0f;
    for (int t = 0; t < history; ++t) {
      const float sine = amp * std::sin(6.2831853f * f0 * float(t) + 0.1f * float(s));
      switch (kind) {
        case 0:
        case 1:
          x[t] = u(rng);
          break;
        case 2:
        case 3:
          x[t] = sine;
          break;
        case 4:
          x[t] = sine + 0.01f * u(rng);
          break;
        case 5: {  // silence, and quiet streams around the fit's power floor
          const float scale[4] = {0.0f, 1e-19f, 1e-15f, 1e-39f};  // the last: float denormals
          x[t] = scale[(s / 8) % 4] * sine;
          break;
        }
        case 6:
          x[t] = 0.5f * sine + 0.5f * std::sin(6.2831853f * 3.1f * f0 * float(t));
          break;
        default:
          x[t] = 0.999f * (sine > 0 ? 1.0f : -1.0f);  // square wave
          break;
      }
    }
    if (s % 64 == 63) x[history / 2] = std::numeric_limits<float>::quiet_NaN();
    if (s % 64 == 62) x[history - 3] = std::numeric_limits<float>::infinity();
  }
  return h;
}

void expect_pnbtr_matches(Compute& c, const PnbtrShape& s, std::uint32_t seed) {
  SCOPED_TRACE("pnbtr streams=" + std::to_string(s.streams) +
               " history=" + std::to_string(s.history) + " order=" + std::to_string(s.order) +
               " frames=" + std::to_string(s.frames));
  const auto h = histories(s.streams, s.history, seed);
  std::vector<float> want(std::size_t(s.streams) * s.frames, 7.0f);
  std::vector<float> got(want.size(), -7.0f);
  pnbtr_reference(s, h.data(), want.data(), 0, s.streams);
  auto r = c.pnbtr(s, h, got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(same_bits(got, want, std::size_t(s.frames)));
}

void expect_pnbtr_all(Compute& c) {
  for (int streams : {1, 16, 256, 1024}) {
    expect_pnbtr_matches(c, {.streams = streams, .history = 256, .order = 32, .frames = 128},
                         std::uint32_t(streams));
  }
  // Shrinking again (buffers are reused), and the shape limits: the lowest
  // history for an order, order 1, one frame, more frames than history.
  expect_pnbtr_matches(c, {.streams = 16, .history = 256, .order = 32, .frames = 128}, 99);
  expect_pnbtr_matches(c, {.streams = 33, .history = 34, .order = 32, .frames = 1}, 5);
  expect_pnbtr_matches(c, {.streams = 70, .history = 3, .order = 1, .frames = 9}, 6);
  expect_pnbtr_matches(c, {.streams = 65, .history = 1024, .order = 16, .frames = 4096}, 7);
}

// -------------------------------------------------------------------- mix

void expect_mix_matches(Compute& c, const MixShape& s, std::uint32_t seed) {
  SCOPED_TRACE("mix inputs=" + std::to_string(s.inputs) + " outputs=" + std::to_string(s.outputs) +
               " frames=" + std::to_string(s.frames));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> sample(-1.0f, 1.0f), gain(-2.0f, 2.0f);
  std::vector<float> gains(std::size_t(s.outputs) * s.inputs), in(std::size_t(s.inputs) * s.frames);
  for (auto& g : gains) g = gain(rng);
  for (auto& x : in) x = sample(rng);
  if (!gains.empty()) gains[0] = 0.0f;
  if (in.size() > 1) in[1] = 1e-40f;  // denormal
  std::vector<float> want(std::size_t(s.outputs) * s.frames, 7.0f);
  std::vector<float> got(want.size(), -7.0f);
  mix_reference(s, gains.data(), in.data(), want.data());
  auto r = c.mix(s, gains, in, got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(same_bits(got, want, std::size_t(s.frames)));
}

void expect_mix_all(Compute& c) {
  for (int n : {1, 16, 256, 1024})
    expect_mix_matches(c, {.inputs = n, .outputs = 16, .frames = 128}, std::uint32_t(n));
  expect_mix_matches(c, {.inputs = 3, .outputs = 5, .frames = 1}, 11);
  expect_mix_matches(c, {.inputs = 7, .outputs = 300, .frames = 333}, 12);
}

// ------------------------------------------------------------------ JSONL

jmid::Event random_event(std::mt19937_64& rng) {
  jmid::Event e;
  e.kind = static_cast<jmid::Kind>(rng() % 17);  // every kind but SysEx
  e.channel = std::uint8_t(rng() % 16);
  e.data1 = std::uint8_t(rng() % 128);
  e.data2 = std::uint8_t(rng() % 128);
  if (e.kind == jmid::Kind::kPitchBend)
    e.value14 = std::int16_t(int(rng() % 16384) - 8192);
  else if (e.kind == jmid::Kind::kSongPosition)
    e.value14 = std::int16_t(rng() % 16384);
  switch (rng() % 4) {  // small, negative, full range (19 digits fall back), zero
    case 0:
      e.ts_ns = std::int64_t(rng() % 100000000000ull);
      break;
    case 1:
      e.ts_ns = -std::int64_t(rng() % 1000000000000ull);
      break;
    case 2:
      e.ts_ns = std::int64_t(rng());
      break;
    default:
      e.ts_ns = 0;
      break;
  }
  e.seq = (rng() % 2) ? rng() % 1000000 : rng();
  return e;
}

std::vector<std::string> jsonl_lines(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> lines;
  const std::vector<std::string> odd = {
      "",
      " ",
      "{}",
      "{\"t\":\"n+\"}",
      "{\"t\": \"n+\",\"c\":1,\"n\":60,\"v\":100}",
      " {\"t\":\"clk\"}",
      "{\"t\":\"clk\"} ",
      "{\"t\":\"clk\"}\r",
      "{\"t\":\"clk\"}",
      "{\"t\":\"start\",\"ts\":-1,\"seq\":18446744073709551615}",
      "{\"t\":\"stop\",\"seq\":18446744073709551616}",
      "{\"t\":\"stop\",\"seq\":-1}",
      "{\"t\":\"cont\",\"ts\":-0}",
      "{\"t\":\"cont\",\"ts\":00}",
      "{\"t\":\"cont\",\"ts\":999999999999999999}",
      "{\"t\":\"cont\",\"ts\":-999999999999999999}",
      "{\"t\":\"cont\",\"ts\":1000000000000000000}",
      "{\"t\":\"n+\",\"c\":01,\"n\":60,\"v\":100}",
      "{\"t\":\"n+\",\"c\":0,\"n\":60,\"v\":100}",
      "{\"t\":\"n+\",\"c\":17,\"n\":60,\"v\":100}",
      "{\"t\":\"n+\",\"c\":16,\"n\":128,\"v\":100}",
      "{\"t\":\"n+\",\"c\":16,\"n\":127,\"v\":128}",
      "{\"t\":\"n+\",\"c\":16,\"n\":-1,\"v\":1}",
      "{\"c\":3,\"v\":5,\"t\":\"n-\",\"n\":9}",
      "{\"t\":\"n+\",\"t\":\"n+\",\"c\":1,\"n\":60,\"v\":100}",
      "{\"t\":\"n+\",\"c\":1,\"n\":60,\"v\":100,\"x\":1}",
      "{\"t\":\"pb\",\"c\":1,\"v\":-8192}",
      "{\"t\":\"pb\",\"c\":1,\"v\":-8193}",
      "{\"t\":\"pb\",\"c\":1,\"v\":8192}",
      "{\"t\":\"spp\",\"v\":16383}",
      "{\"t\":\"spp\",\"v\":16384}",
      "{\"t\":\"spp\",\"v\":-5}",
      "{\"t\":\"mtc\",\"v\":127}",
      "{\"t\":\"ss\",\"v\":128}",
      "{\"t\":\"pc\",\"c\":2,\"v\":5,\"n\":3}",
      "{\"t\":\"cp\",\"c\":2}",
      "{\"t\":\"tr\",\"c\":2}",
      "{\"t\":\"sx\",\"i\":0,\"l\":1,\"d\":\"7F\"}",
      "{\"t\":\"n\\u002b\",\"c\":1,\"n\":60,\"v\":100}",
      "{\"t\":\"\",\"c\":1}",
      "{\"t\":\"startx\"}",
      "{\"t\":\"rst\",\"seqq\":1}",
      "{\"t\":\"as\",\"c\":123456789}",
      "{\"t\":\"as\",\"c\":1234567890}",
      "{\"t\":\"as\",}",
      "{\"t\":\"as\"",
      "\"t\":\"as\"}",
      "{\"t\":\"as\"}}",
      "{\"t\":\"as\",\"ts\":1,}",
      std::string("{\"t\":\"n+\xC3\xA9\"}"),
      std::string("{\"t\0\":\"clk\"}", 12),  // a NUL in a key
      std::string("{\"t\":\"clk\",\"s\0q\":1}", 19),
      "{\"t\x01\":\"clk\"}",
      "{\"t\xC3\":\"clk\"}",
      "{\"t\\\":\"clk\"}",
      std::string(300, 'x'),
      "{\"t\":\"clk\",\"ts\":1" + std::string(238, '0') + "}",  // 256 bytes, too many digits
  };
  while (lines.size() < count) {
    const auto pick = rng() % 100;
    if (pick < 70) {
      lines.push_back(jmid::to_line(random_event(rng)));
    } else if (pick < 80) {
      lines.push_back(odd[rng() % odd.size()]);
    } else if (pick < 85) {  // SysEx chunks
      jmid::Event e;
      e.kind = jmid::Kind::kSysEx;
      e.sysex_index = std::uint16_t(rng() % 5);
      e.sysex_last = rng() % 2;
      e.sysex_len = std::uint16_t(rng() % 40);
      for (std::size_t k = 0; k < e.sysex_len; ++k) e.sysex[k] = std::uint8_t(rng() % 128);
      lines.push_back(jmid::to_line(e));
    } else {  // a valid line with one byte changed, deleted or inserted
      std::string l = jmid::to_line(random_event(rng));
      const std::size_t at = rng() % l.size();
      static constexpr char kBytes[] = "{}\":,-0123456789 tcnvsq\t\x01\x80";  // and its NUL
      const char ch = kBytes[rng() % sizeof kBytes];
      switch (rng() % 3) {
        case 0:
          l[at] = ch;
          break;
        case 1:
          l.erase(at, 1);
          break;
        default:
          l.insert(at, 1, ch);
          break;
      }
      if (l.find('\n') == std::string::npos) lines.push_back(l);
    }
  }
  return lines;
}

void expect_jsonl_matches(Compute& c, std::size_t count, std::uint64_t seed, bool final_newline) {
  SCOPED_TRACE("jsonl lines=" + std::to_string(count));
  const auto lines = jsonl_lines(count, seed);
  std::string blob;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    blob += lines[i];
    if (i + 1 < lines.size() || final_newline) blob += '\n';
  }
  auto offsets = split_lines(blob);
  ASSERT_TRUE(offsets) << offsets.error().message;
  ASSERT_EQ(offsets->size(), lines.size() + 1);
  std::vector<JsonlFields> want(lines.size()), got(lines.size());
  for (auto& g : got) g = JsonlFields{.status = 77, .kind = 77};
  jsonl_reference(blob, *offsets, want);
  auto r = c.jsonl(blob, *offsets, got);
  ASSERT_TRUE(r) << r.error().message;
  std::size_t ok = 0, diffs = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    ok += want[i].status == kJsonlOk;
    if (std::memcmp(&got[i], &want[i], sizeof(JsonlFields)) == 0) continue;
    if (++diffs <= 5) {
      ADD_FAILURE() << "line " << i << " '" << lines[i] << "': got status " << got[i].status
                    << " kind " << got[i].kind << " ch " << got[i].channel << " d1 " << got[i].data1
                    << " d2 " << got[i].data2 << " v14 " << got[i].value14 << " ts "
                    << got[i].ts_ns() << " seq " << got[i].seq() << "; want status "
                    << want[i].status << " kind " << want[i].kind << " ch " << want[i].channel
                    << " d1 " << want[i].data1 << " d2 " << want[i].data2 << " v14 "
                    << want[i].value14 << " ts " << want[i].ts_ns() << " seq " << want[i].seq();
    }
  }
  EXPECT_EQ(diffs, 0u) << "of " << lines.size() << " lines";
  // The mix of lines exercises both outcomes.
  EXPECT_GT(ok, lines.size() / 3);
  EXPECT_LT(ok, lines.size());
}

void expect_jsonl_all(Compute& c) {
  expect_jsonl_matches(c, 10000, 1, true);
  expect_jsonl_matches(c, 777, 2, false);
  expect_jsonl_matches(c, 10000, 3, false);
}

// A backend that works: a small PNBTR and mix agree with the reference
// (within the tolerance of compute.hpp, for a non-IEEE Vulkan driver).
void expect_working(Compute& c) {
  ASSERT_TRUE(c.noop());
  const PnbtrShape ps{.streams = 4, .history = 64, .order = 8, .frames = 16};
  const auto h = histories(ps.streams, ps.history, 42);
  std::vector<float> want(std::size_t(ps.streams) * ps.frames), got(want.size());
  pnbtr_reference(ps, h.data(), want.data(), 0, ps.streams);
  auto r = c.pnbtr(ps, h, got);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LE(max_rel_err(got, want), 1e-6);
}

// ------------------------------------------------------------------ tests

TEST(CudaCompute, UnavailableSaysWhyAndAutoFallsBack) {
  auto cuda = make_cuda_compute();
  auto any = make_compute({.want = Want::kAuto});
  ASSERT_TRUE(any) << any.error().message;
  ASSERT_NE(*any, nullptr);
  if (cuda) {
    EXPECT_EQ((*cuda)->backend(), Backend::kCuda);
    EXPECT_EQ((*any)->backend(), Backend::kCuda) << "auto must prefer CUDA";
    expect_working(**any);
    return;
  }
  std::cout << "[ info     ] make_cuda_compute: " << cuda.error().message << "\n";
  EXPECT_FALSE(cuda.error().message.empty());
  EXPECT_NE((*any)->backend(), Backend::kCuda);
  EXPECT_NE((*any)->fallback_reason().find("cuda: " + cuda.error().message), std::string::npos)
      << (*any)->fallback_reason();
  expect_working(**any);
  // Asked for explicitly, CUDA is an error with the same reason.
  auto explicit_cuda = make_compute({.want = Want::kCuda});
  ASSERT_FALSE(explicit_cuda);
  EXPECT_EQ(explicit_cuda.error().message, cuda.error().message);
}

TEST(CudaCompute, DisabledByEnvironment) {
  {
    EnvGuard env("JAMNET_DISABLE_CUDA", "1");
    auto cuda = make_cuda_compute();
    ASSERT_FALSE(cuda);
    EXPECT_NE(cuda.error().message.find("JAMNET_DISABLE_CUDA"), std::string::npos)
        << cuda.error().message;
    auto any = make_compute({.want = Want::kAuto});
    ASSERT_TRUE(any) << any.error().message;
    EXPECT_NE((*any)->backend(), Backend::kCuda);
    EXPECT_NE((*any)->fallback_reason().find("JAMNET_DISABLE_CUDA"), std::string::npos)
        << (*any)->fallback_reason();
  }
  // Only "1" disables.
  EnvGuard env("JAMNET_DISABLE_CUDA", "0");
  auto cuda = make_cuda_compute();
  if (!cuda) {
    EXPECT_EQ(cuda.error().message.find("JAMNET_DISABLE_CUDA"), std::string::npos)
        << cuda.error().message;
  }
}

// On a CUDA device (none in CI): every kernel equals the reference bit for bit.
class CudaDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = make_cuda_compute();
    if (!c) GTEST_SKIP() << "no CUDA backend here: " << c.error().message;
    compute_ = std::move(*c);
    ASSERT_EQ(compute_->backend(), Backend::kCuda);
  }
  std::unique_ptr<Compute> compute_;
};

TEST_F(CudaDevice, NameAndNoop) {
  const std::string name = compute_->device_name();
  std::cout << "[ info     ] device: " << name << "\n";
  EXPECT_NE(name.find(" (sm_"), std::string::npos) << name;
  for (int i = 0; i < 3; ++i) {
    auto r = compute_->noop();
    ASSERT_TRUE(r) << r.error().message;
  }
}

TEST_F(CudaDevice, PnbtrBitExact) {
  expect_pnbtr_all(*compute_);
}

TEST_F(CudaDevice, MixBitExact) {
  expect_mix_all(*compute_);
}

TEST_F(CudaDevice, JsonlBitExact) {
  expect_jsonl_all(*compute_);
}

TEST_F(CudaDevice, EmptyAndInvalidCalls) {
  std::vector<float> none;
  EXPECT_TRUE(compute_->pnbtr({.streams = 0}, none, none));
  EXPECT_FALSE(compute_->pnbtr({.streams = 1, .order = 0}, none, none));
  // An empty line in an empty blob.
  std::vector<std::uint32_t> off = {0, 0};
  std::vector<JsonlFields> out(1);
  ASSERT_TRUE(compute_->jsonl("", off, out));
  EXPECT_EQ(out[0].status, kJsonlFallback);
  // Still usable afterwards.
  expect_mix_matches(*compute_, {.inputs = 2, .outputs = 2, .frames = 8}, 3);
}

// The same kernel code on the host: runs wherever the backend is built.
class CudaKernelsOnHost : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = make_cuda_host_emulation();
    if (!c) GTEST_SKIP() << c.error().message;
    compute_ = std::move(*c);
  }
  std::unique_ptr<Compute> compute_;
};

TEST_F(CudaKernelsOnHost, PnbtrBitExact) {
  expect_pnbtr_all(*compute_);
}

TEST_F(CudaKernelsOnHost, MixBitExact) {
  expect_mix_all(*compute_);
}

TEST_F(CudaKernelsOnHost, JsonlBitExact) {
  expect_jsonl_all(*compute_);
}

}  // namespace
}  // namespace jamnet::gpu
