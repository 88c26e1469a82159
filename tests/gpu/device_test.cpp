#include "jamnet/gpu/device.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace jamnet::gpu {
namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;
constexpr std::uint64_t kMiB = 1024ull * 1024;

DeviceInfo gpu_with(std::uint64_t vram, Backend b = Backend::kVulkan, std::string cc = "1.3.0",
                    DeviceType t = DeviceType::kDiscrete) {
  DeviceInfo d;
  d.backend = b;
  d.name = "test gpu";
  d.type = t;
  d.vram_bytes = vram;
  d.compute_capability = std::move(cc);
  return d;
}

TEST(GpuClassify, TierBoundaries) {
  EXPECT_EQ(classify(gpu_with(16 * kGiB)), Tier::kHighEnd);
  EXPECT_EQ(classify(gpu_with(80 * kGiB)), Tier::kHighEnd);
  EXPECT_EQ(classify(gpu_with(16 * kGiB - 1)), Tier::kMidRange);
  EXPECT_EQ(classify(gpu_with(8 * kGiB)), Tier::kMidRange);
  EXPECT_EQ(classify(gpu_with(8 * kGiB - 1)), Tier::kModest);
  EXPECT_EQ(classify(gpu_with(4 * kGiB)), Tier::kModest);
  EXPECT_EQ(classify(gpu_with(4 * kGiB - 1)), Tier::kLowEnd);
  EXPECT_EQ(classify(gpu_with(0)), Tier::kLowEnd);
}

TEST(GpuClassify, CpuTypeIsCpuOnly) {
  auto d = gpu_with(64 * kGiB, Backend::kVulkan, "1.3.0", DeviceType::kCpu);
  EXPECT_TRUE(d.is_cpu());
  EXPECT_EQ(classify(d), Tier::kCpuOnly);
}

TEST(GpuClassify, LowCudaCapabilityDropsOneTier) {
  EXPECT_EQ(classify(gpu_with(24 * kGiB, Backend::kCuda, "9.0")), Tier::kHighEnd);
  EXPECT_EQ(classify(gpu_with(24 * kGiB, Backend::kCuda, "6.0")), Tier::kHighEnd);
  EXPECT_EQ(classify(gpu_with(24 * kGiB, Backend::kCuda, "5.2")), Tier::kMidRange);
  EXPECT_EQ(classify(gpu_with(8 * kGiB, Backend::kCuda, "3.5")), Tier::kModest);
  EXPECT_EQ(classify(gpu_with(4 * kGiB, Backend::kCuda, "3.5")), Tier::kLowEnd);
  EXPECT_EQ(classify(gpu_with(1 * kGiB, Backend::kCuda, "3.5")), Tier::kLowEnd);
  // A Vulkan API version "1.3" is not a compute capability.
  EXPECT_EQ(classify(gpu_with(24 * kGiB, Backend::kVulkan, "1.3.255")), Tier::kHighEnd);
}

TEST(GpuBestDevice, IgnoresCpuDevicesAndPicksBestTierThenVram) {
  Detection det;
  EXPECT_FALSE(best_device(det).has_value());
  auto cpu = gpu_with(512 * kGiB, Backend::kVulkan, "1.3.0", DeviceType::kCpu);
  cpu.name = "llvmpipe";
  det.devices.push_back(cpu);
  EXPECT_FALSE(best_device(det).has_value());

  auto small = gpu_with(6 * kGiB);
  small.name = "small";
  auto big_old = gpu_with(20 * kGiB, Backend::kCuda, "5.0");  // mid_range after the drop
  big_old.name = "big_old";
  auto mid1 = gpu_with(10 * kGiB, Backend::kCuda, "8.6");
  mid1.name = "mid1";
  auto mid2 = gpu_with(12 * kGiB, Backend::kVulkan);
  mid2.name = "mid2";
  det.devices.push_back(small);
  det.devices.push_back(mid1);
  auto b = best_device(det);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "mid1");
  det.devices.push_back(mid2);
  det.devices.push_back(big_old);  // same tier as mid*, most VRAM of them
  b = best_device(det);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "big_old");
  auto high = gpu_with(16 * kGiB);
  high.name = "high";
  det.devices.push_back(high);
  EXPECT_EQ(best_device(det)->name, "high");
}

struct Expect {
  int streams;
  double fraction, util;
  double prebuffer;
};

void check_config(Tier tier, std::uint64_t vram, Profile p, const Expect& e) {
  SCOPED_TRACE(std::string(to_string(tier)) + "/" + std::string(to_string(p)));
  const auto d = gpu_with(vram, Backend::kCuda, "9.0");
  ASSERT_EQ(classify(d), tier);
  const GpuConfig c = make_config(d, p);
  EXPECT_EQ(c.tier, tier);
  EXPECT_EQ(c.profile, p);
  EXPECT_EQ(c.backend, Backend::kCuda);
  EXPECT_EQ(c.parallel_streams, e.streams);
  EXPECT_NEAR(static_cast<double>(c.vram_limit_bytes), e.fraction * static_cast<double>(vram), 2.0);
  EXPECT_DOUBLE_EQ(c.utilization_target, e.util);
  EXPECT_DOUBLE_EQ(c.prebuffer_s, e.prebuffer);
}

TEST(GpuMakeConfig, TableForEveryTierAndProfile) {
  const std::uint64_t high = 24 * kGiB, mid = 12 * kGiB, modest = 6 * kGiB, low = 2 * kGiB;
  for (Profile p : {Profile::kAuto, Profile::kBalanced}) {
    check_config(Tier::kHighEnd, high, p, {3, 0.9, 0.90, 0.5});
    check_config(Tier::kMidRange, mid, p, {2, 0.8, 0.70, 1.0});
    check_config(Tier::kModest, modest, p, {1, 0.7, 0.50, 2.0});
    check_config(Tier::kLowEnd, low, p, {0, 0.6, 0.40, 3.0});
  }
  const Profile hp = Profile::kHighPerformance;
  check_config(Tier::kHighEnd, high, hp, {3, 0.9, 0.95, 0.5});
  check_config(Tier::kMidRange, mid, hp, {3, 0.8, 0.80, 0.5});
  check_config(Tier::kModest, modest, hp, {2, 0.7, 0.60, 1.0});
  check_config(Tier::kLowEnd, low, hp, {1, 0.6, 0.50, 1.5});
  const Profile mo = Profile::kModest;
  check_config(Tier::kHighEnd, high, mo, {2, 0.9, 0.80, 0.75});
  check_config(Tier::kMidRange, mid, mo, {1, 0.8, 0.60, 1.5});
  check_config(Tier::kModest, modest, mo, {0, 0.7, 0.40, 3.0});
  check_config(Tier::kLowEnd, low, mo, {0, 0.6, 0.30, 3.0});
}

TEST(GpuMakeConfig, CpuOnly) {
  for (Profile p :
       {Profile::kAuto, Profile::kHighPerformance, Profile::kBalanced, Profile::kModest}) {
    for (const std::optional<DeviceInfo>& d :
         {std::optional<DeviceInfo>{},
          std::optional<DeviceInfo>{
              gpu_with(32 * kGiB, Backend::kVulkan, "1.3.0", DeviceType::kCpu)}}) {
      const GpuConfig c = make_config(d, p);
      EXPECT_EQ(c.tier, Tier::kCpuOnly);
      EXPECT_EQ(c.backend, Backend::kCpu);
      EXPECT_EQ(c.profile, p);
      EXPECT_EQ(c.parallel_streams, 0);
      EXPECT_EQ(c.vram_limit_bytes, 0u);
      EXPECT_EQ(c.utilization_target, 0.0);
      EXPECT_EQ(c.prebuffer_s, 3.0);
    }
  }
}

TEST(GpuProfile, ParsesNames) {
  for (Profile p :
       {Profile::kAuto, Profile::kHighPerformance, Profile::kBalanced, Profile::kModest}) {
    EXPECT_EQ(profile_from(to_string(p)), p);
  }
  EXPECT_FALSE(profile_from("").has_value());
  EXPECT_FALSE(profile_from("fast").has_value());
  EXPECT_FALSE(profile_from("Balanced").has_value());
  EXPECT_FALSE(profile_from("balanced ").has_value());
}

using Env = std::map<std::string, std::string>;
std::function<const char*(const char*)> fake_env(const Env& env) {
  return [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

TEST(GpuApplyEnv, NoOverridesKeepsConfig) {
  const GpuConfig base = make_config(gpu_with(12 * kGiB), Profile::kAuto);
  Env env;
  auto r = apply_env(base, fake_env(env));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->parallel_streams, base.parallel_streams);
  EXPECT_EQ(r->vram_limit_bytes, base.vram_limit_bytes);
  EXPECT_EQ(r->utilization_target, base.utilization_target);
  EXPECT_EQ(r->prebuffer_s, base.prebuffer_s);
}

TEST(GpuApplyEnv, AppliesEachOverride) {
  const GpuConfig base = make_config(gpu_with(12 * kGiB), Profile::kAuto);
  Env env{{"JAMNET_GPU_PARALLEL_STREAMS", "3"},
          {"JAMNET_GPU_VRAM_LIMIT_MB", "512"},
          {"JAMNET_GPU_UTILIZATION", "0.25"},
          {"JAMNET_GPU_PREBUFFER_S", "0.05"},
          {"JAMNET_GPU_PROFILE", "modest"}};
  auto r = apply_env(base, fake_env(env));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->parallel_streams, 3);
  EXPECT_EQ(r->vram_limit_bytes, 512 * kMiB);
  EXPECT_DOUBLE_EQ(r->utilization_target, 0.25);
  EXPECT_DOUBLE_EQ(r->prebuffer_s, 0.05);
  EXPECT_EQ(r->tier, base.tier);

  Env one{{"JAMNET_GPU_PARALLEL_STREAMS", "0"}, {"JAMNET_GPU_VRAM_LIMIT_MB", "0"}};
  r = apply_env(base, fake_env(one));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->parallel_streams, 0);
  EXPECT_EQ(r->vram_limit_bytes, 0u);
  EXPECT_EQ(r->utilization_target, base.utilization_target);  // untouched
  EXPECT_EQ(r->prebuffer_s, base.prebuffer_s);

  Env bounds{{"JAMNET_GPU_UTILIZATION", "1"}, {"JAMNET_GPU_PREBUFFER_S", "30"}};
  r = apply_env(base, fake_env(bounds));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->utilization_target, 1.0);
  EXPECT_EQ(r->prebuffer_s, 30.0);
}

TEST(GpuApplyEnv, InvalidValuesNameTheVariable) {
  const GpuConfig base = make_config(std::nullopt, Profile::kAuto);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"JAMNET_GPU_PARALLEL_STREAMS", "4"},  {"JAMNET_GPU_PARALLEL_STREAMS", "-1"},
      {"JAMNET_GPU_PARALLEL_STREAMS", "2x"}, {"JAMNET_GPU_PARALLEL_STREAMS", "1.5"},
      {"JAMNET_GPU_VRAM_LIMIT_MB", "-5"},    {"JAMNET_GPU_VRAM_LIMIT_MB", "lots"},
      {"JAMNET_GPU_VRAM_LIMIT_MB", "12 "},   {"JAMNET_GPU_UTILIZATION", "1.01"},
      {"JAMNET_GPU_UTILIZATION", "-0.1"},    {"JAMNET_GPU_UTILIZATION", "nan"},
      {"JAMNET_GPU_UTILIZATION", "0.5abc"},  {"JAMNET_GPU_PREBUFFER_S", "0.01"},
      {"JAMNET_GPU_PREBUFFER_S", "31"},      {"JAMNET_GPU_PREBUFFER_S", "inf"},
      {"JAMNET_GPU_PROFILE", "turbo"},       {"JAMNET_GPU_PROFILE", "Auto"},
  };
  for (const auto& [name, value] : bad) {
    Env env{{name, value}};
    auto r = apply_env(base, fake_env(env));
    ASSERT_FALSE(r.has_value()) << name << "=" << value;
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  }
}

TEST(GpuVramTracker, AllocatesWithinLimitRefusesOverIt) {
  VramTracker t(1000, 0.9);
  EXPECT_EQ(t.limit(), 1000u);
  EXPECT_TRUE(t.try_allocate(600));
  EXPECT_EQ(t.used(), 600u);
  EXPECT_FALSE(t.under_pressure());
  EXPECT_FALSE(t.try_allocate(401));
  EXPECT_EQ(t.refused(), 1u);
  EXPECT_EQ(t.used(), 600u);
  EXPECT_TRUE(t.try_allocate(299));
  EXPECT_EQ(t.used(), 899u);
  EXPECT_FALSE(t.under_pressure());
  EXPECT_TRUE(t.try_allocate(1));
  EXPECT_TRUE(t.under_pressure());  // 900 >= 1000 * 0.9
  EXPECT_TRUE(t.try_allocate(100));
  EXPECT_EQ(t.used(), 1000u);
  EXPECT_FALSE(t.try_allocate(1));
  EXPECT_FALSE(t.try_allocate(UINT64_MAX));
  EXPECT_EQ(t.refused(), 3u);
  EXPECT_EQ(t.peak(), 1000u);
  t.release(700);
  EXPECT_EQ(t.used(), 300u);
  EXPECT_FALSE(t.under_pressure());
  EXPECT_EQ(t.peak(), 1000u);
  t.release(5000);  // clamps
  EXPECT_EQ(t.used(), 0u);
  EXPECT_EQ(t.peak(), 1000u);
}

TEST(GpuVramTracker, ZeroLimitRefusesEverythingButEmptyRequests) {
  VramTracker t(0);
  EXPECT_FALSE(t.try_allocate(1));
  EXPECT_EQ(t.refused(), 1u);
  EXPECT_FALSE(t.under_pressure());
}

TEST(GpuVramTracker, ConcurrentAllocateReleaseBalances) {
  VramTracker t(64 * kMiB, 0.9);
  std::vector<std::thread> threads;
  std::atomic<std::uint64_t> granted{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      const std::uint64_t size = (static_cast<std::uint64_t>(i) + 1) * 3 * kMiB;
      for (int k = 0; k < 20000; ++k) {
        if (t.try_allocate(size)) {
          granted.fetch_add(1, std::memory_order_relaxed);
          EXPECT_LE(t.used(), t.limit());
          t.release(size);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(t.used(), 0u);
  EXPECT_GT(granted.load(), 0u);
  EXPECT_LE(t.peak(), t.limit());
  EXPECT_GE(t.peak(), 3 * kMiB);
}

// ------------------------------------------------ detection on this machine

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::size_t count_backend(const Detection& d, Backend b) {
  std::size_t n = 0;
  for (const auto& dev : d.devices) n += dev.backend == b;
  return n;
}

TEST(GpuDetect, RealMachineHasOnlyCpuDevices) {
  const Detection det = detect();
  SCOPED_TRACE("vulkan: " + det.vulkan_status + "; cuda: " + det.cuda_status);
  EXPECT_FALSE(det.vulkan_status.empty());
  EXPECT_FALSE(det.cuda_status.empty());
  // This machine: mesa's lavapipe, no NVIDIA driver.
  EXPECT_GE(count_backend(det, Backend::kVulkan), 1u);
  EXPECT_EQ(det.vulkan_status.rfind("ok: ", 0), 0u);
  for (const auto& d : det.devices) {
    EXPECT_FALSE(d.name.empty());
    if (d.name.find("llvmpipe") != std::string::npos) {
      EXPECT_TRUE(d.is_cpu()) << d.name;
      EXPECT_EQ(classify(d), Tier::kCpuOnly);
      EXPECT_EQ(d.compute_capability.rfind("1.", 0), 0u) << d.compute_capability;
    }
  }
  EXPECT_EQ(count_backend(det, Backend::kCuda), 0u);
  EXPECT_FALSE(best_device(det).has_value());
  const GpuConfig c = make_config(best_device(det), Profile::kAuto);
  EXPECT_EQ(c.tier, Tier::kCpuOnly);
  EXPECT_EQ(c.backend, Backend::kCpu);
  // Safe to call again.
  const Detection again = detect();
  EXPECT_EQ(again.devices.size(), det.devices.size());
}

TEST(GpuDetect, MissingLoaderFallsBackToCpu) {
  ScopedEnv env("JAMNET_VULKAN_LOADER", "/nonexistent/libvulkan.so.1");
  const Detection det = detect();
  EXPECT_EQ(count_backend(det, Backend::kVulkan), 0u);
  EXPECT_NE(det.vulkan_status.find("loader"), std::string::npos) << det.vulkan_status;
  EXPECT_NE(det.vulkan_status.find("/nonexistent/libvulkan.so.1"), std::string::npos);
  const GpuConfig c = make_config(best_device(det), Profile::kHighPerformance);
  EXPECT_EQ(c.tier, Tier::kCpuOnly);
  EXPECT_EQ(c.backend, Backend::kCpu);
}

TEST(GpuDetect, DisabledVulkanAndCuda) {
  {
    ScopedEnv env("JAMNET_DISABLE_VULKAN", "1");
    const Detection det = detect();
    EXPECT_EQ(count_backend(det, Backend::kVulkan), 0u);
    EXPECT_EQ(det.vulkan_status, "disabled by JAMNET_DISABLE_VULKAN");
    EXPECT_EQ(make_config(best_device(det), Profile::kAuto).backend, Backend::kCpu);
  }
  {
    ScopedEnv env("JAMNET_DISABLE_CUDA", "1");
    const Detection det = detect();
    EXPECT_EQ(count_backend(det, Backend::kCuda), 0u);
    EXPECT_EQ(det.cuda_status, "disabled by JAMNET_DISABLE_CUDA");
  }
}

TEST(GpuDetect, NoCudaDriverHere) {
  const Detection det = detect();
  EXPECT_EQ(count_backend(det, Backend::kCuda), 0u);
  EXPECT_FALSE(det.cuda_status.empty());
  EXPECT_NE(det.cuda_status.find("libcuda.so.1"), std::string::npos) << det.cuda_status;
}

TEST(GpuJson, ParsesBackWithKeys) {
  Detection det;
  det.vulkan_status = "ok: 2 devices";
  det.cuda_status = "no CUDA driver (libcuda.so.1): not found";
  auto cpu = gpu_with(2 * kGiB, Backend::kVulkan, "1.3.255", DeviceType::kCpu);
  cpu.name = "llvmpipe (LLVM 15.0.6, 256 bits)";
  det.devices.push_back(cpu);
  auto g = gpu_with(12 * kGiB);
  g.name = "Some \"quoted\" GPU";
  det.devices.push_back(g);
  const GpuConfig c = make_config(best_device(det), Profile::kBalanced);
  const auto j = nlohmann::json::parse(to_json(det, c));
  EXPECT_EQ(j.at("vulkan_status"), "ok: 2 devices");
  EXPECT_EQ(j.at("cuda_status"), det.cuda_status);
  ASSERT_EQ(j.at("devices").size(), 2u);
  EXPECT_EQ(j["devices"][0].at("name"), cpu.name);
  EXPECT_EQ(j["devices"][0].at("type"), "cpu");
  EXPECT_EQ(j["devices"][0].at("is_cpu"), true);
  EXPECT_EQ(j["devices"][0].at("tier"), "cpu_only");
  EXPECT_EQ(j["devices"][1].at("name"), g.name);
  EXPECT_EQ(j["devices"][1].at("vram_bytes"), 12 * kGiB);
  EXPECT_EQ(j["devices"][1].at("backend"), "vulkan");
  EXPECT_EQ(j["devices"][1].at("tier"), "mid_range");
  for (const char* k : {"compute_capability", "driver", "vendor_id", "device_id"})
    EXPECT_TRUE(j["devices"][1].contains(k)) << k;
  EXPECT_EQ(j.at("best_device"), g.name);
  const auto& cj = j.at("config");
  EXPECT_EQ(cj.at("tier"), "mid_range");
  EXPECT_EQ(cj.at("profile"), "balanced");
  EXPECT_EQ(cj.at("backend"), "vulkan");
  EXPECT_EQ(cj.at("parallel_streams"), 2);
  EXPECT_EQ(cj.at("vram_limit_bytes"), c.vram_limit_bytes);
  EXPECT_DOUBLE_EQ(cj.at("utilization_target").get<double>(), 0.7);
  EXPECT_DOUBLE_EQ(cj.at("prebuffer_s").get<double>(), 1.0);

  const auto empty = nlohmann::json::parse(to_json(Detection{}, make_config({}, Profile::kAuto)));
  EXPECT_TRUE(empty.at("best_device").is_null());
  EXPECT_EQ(empty.at("config").at("backend"), "cpu");
}

}  // namespace
}  // namespace jamnet::gpu
