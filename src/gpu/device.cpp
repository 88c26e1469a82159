// GPU detection (Vulkan and CUDA, both dlopen'ed), tiers, adaptive
// configuration, environment overrides, VRAM accounting and the JSON report.
#include "jamnet/gpu/device.hpp"

#include <dlfcn.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(JAMNET_HAVE_VULKAN_HEADERS)
#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>
#endif

#include "env.hpp"

namespace jamnet::gpu {

std::string_view to_string(Backend b) noexcept {
  switch (b) {
    case Backend::kCpu:
      return "cpu";
    case Backend::kVulkan:
      return "vulkan";
    case Backend::kCuda:
      return "cuda";
  }
  return "unknown";
}

std::string_view to_string(DeviceType t) noexcept {
  switch (t) {
    case DeviceType::kDiscrete:
      return "discrete";
    case DeviceType::kIntegrated:
      return "integrated";
    case DeviceType::kVirtual:
      return "virtual";
    case DeviceType::kCpu:
      return "cpu";
    case DeviceType::kOther:
      return "other";
  }
  return "other";
}

std::string_view to_string(Tier t) noexcept {
  switch (t) {
    case Tier::kHighEnd:
      return "high_end";
    case Tier::kMidRange:
      return "mid_range";
    case Tier::kModest:
      return "modest";
    case Tier::kLowEnd:
      return "low_end";
    case Tier::kCpuOnly:
      return "cpu_only";
  }
  return "cpu_only";
}

std::string_view to_string(Profile p) noexcept {
  switch (p) {
    case Profile::kAuto:
      return "auto";
    case Profile::kHighPerformance:
      return "high_performance";
    case Profile::kBalanced:
      return "balanced";
    case Profile::kModest:
      return "modest";
  }
  return "auto";
}

std::optional<Profile> profile_from(std::string_view s) noexcept {
  if (s == "auto") return Profile::kAuto;
  if (s == "high_performance") return Profile::kHighPerformance;
  if (s == "balanced") return Profile::kBalanced;
  if (s == "modest") return Profile::kModest;
  return std::nullopt;
}

// ---------------------------------------------------------------- detection

namespace {

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown error";
}

#if defined(JAMNET_HAVE_VULKAN_HEADERS)

std::string vk_result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS:
      return "VK_SUCCESS";
    case VK_INCOMPLETE:
      return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
      return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT:
      return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
      return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      return "VK_ERROR_INCOMPATIBLE_DRIVER (no ICD)";
    default:
      return "VkResult " + std::to_string(static_cast<int>(r));
  }
}

DeviceType from_vk(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return DeviceType::kDiscrete;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return DeviceType::kIntegrated;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return DeviceType::kVirtual;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return DeviceType::kCpu;
    default:
      return DeviceType::kOther;
  }
}

std::string vulkan_probe(std::vector<DeviceInfo>& out) {
  if (env_is_one("JAMNET_DISABLE_VULKAN")) return "disabled by JAMNET_DISABLE_VULKAN";
  const char* env_path = std::getenv("JAMNET_VULKAN_LOADER");
  const std::string path = (env_path && *env_path) ? env_path : "libvulkan.so.1";
  dlerror();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return "no Vulkan loader (" + path + "): " + dl_error();

  std::string status;
  auto gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib, "vkGetInstanceProcAddr"));
  if (!gipa) {
    status = "no vkGetInstanceProcAddr in " + path;
    dlclose(lib);
    return status;
  }
  auto create = reinterpret_cast<PFN_vkCreateInstance>(gipa(VK_NULL_HANDLE, "vkCreateInstance"));
  if (!create) {
    dlclose(lib);
    return "no vkCreateInstance in " + path;
  }
  VkApplicationInfo app{};
  app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
  app.pApplicationName = "jamnet";
  app.applicationVersion = 1;
  app.pEngineName = "jamnet";
  app.engineVersion = 1;
  app.apiVersion = VK_API_VERSION_1_1;
  VkInstanceCreateInfo ci{};
  ci.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
  ci.pApplicationInfo = &app;
  VkInstance inst = VK_NULL_HANDLE;
  const VkResult r = create(&ci, nullptr, &inst);
  if (r != VK_SUCCESS || inst == VK_NULL_HANDLE) {
    dlclose(lib);
    return "vkCreateInstance failed: " + vk_result_name(r);
  }
  auto destroy = reinterpret_cast<PFN_vkDestroyInstance>(gipa(inst, "vkDestroyInstance"));
  auto enumerate =
      reinterpret_cast<PFN_vkEnumeratePhysicalDevices>(gipa(inst, "vkEnumeratePhysicalDevices"));
  auto props = reinterpret_cast<PFN_vkGetPhysicalDeviceProperties>(
      gipa(inst, "vkGetPhysicalDeviceProperties"));
  auto mem = reinterpret_cast<PFN_vkGetPhysicalDeviceMemoryProperties>(
      gipa(inst, "vkGetPhysicalDeviceMemoryProperties"));
  if (!enumerate || !props || !mem) {
    status = "Vulkan loader lacks core 1.0 functions";
  } else {
    std::uint32_t n = 0;
    VkResult er = enumerate(inst, &n, nullptr);
    std::vector<VkPhysicalDevice> phys(n);
    if (er == VK_SUCCESS && n > 0) er = enumerate(inst, &n, phys.data());
    if (er != VK_SUCCESS && er != VK_INCOMPLETE) {
      status = "vkEnumeratePhysicalDevices failed: " + vk_result_name(er);
    } else {
      phys.resize(n);
      for (VkPhysicalDevice pd : phys) {
        VkPhysicalDeviceProperties p{};
        props(pd, &p);
        VkPhysicalDeviceMemoryProperties m{};
        mem(pd, &m);
        DeviceInfo d;
        d.backend = Backend::kVulkan;
        d.name = std::string(p.deviceName, strnlen(p.deviceName, sizeof p.deviceName));
        d.type = from_vk(p.deviceType);
        for (std::uint32_t i = 0; i < m.memoryHeapCount && i < VK_MAX_MEMORY_HEAPS; ++i) {
          if (m.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            d.vram_bytes = std::max<std::uint64_t>(d.vram_bytes, m.memoryHeaps[i].size);
        }
        d.compute_capability = std::to_string(VK_API_VERSION_MAJOR(p.apiVersion)) + "." +
                               std::to_string(VK_API_VERSION_MINOR(p.apiVersion)) + "." +
                               std::to_string(VK_API_VERSION_PATCH(p.apiVersion));
        d.driver = std::to_string(p.driverVersion);
        d.vendor_id = p.vendorID;
        d.device_id = p.deviceID;
        out.push_back(std::move(d));
      }
      status =
          n == 0 ? "no devices" : "ok: " + std::to_string(n) + (n == 1 ? " device" : " devices");
    }
  }
  if (destroy) destroy(inst, nullptr);
  dlclose(lib);
  return status;
}

#else

std::string vulkan_probe(std::vector<DeviceInfo>&) {
  if (env_is_one("JAMNET_DISABLE_VULKAN")) return "disabled by JAMNET_DISABLE_VULKAN";
  return "built without Vulkan headers";
}

#endif

// The few CUDA driver API entry points used, declared here (no CUDA headers).
using CUresult = int;
using CUdevice = int;
using FnInit = CUresult (*)(unsigned int);
using FnDriverGetVersion = CUresult (*)(int*);
using FnDeviceGetCount = CUresult (*)(int*);
using FnDeviceGet = CUresult (*)(CUdevice*, int);
using FnDeviceGetName = CUresult (*)(char*, int, CUdevice);
using FnDeviceTotalMem = CUresult (*)(std::size_t*, CUdevice);
using FnDeviceGetAttribute = CUresult (*)(int*, int, CUdevice);
constexpr int kCcMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
constexpr int kCcMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR

std::string cuda_probe(std::vector<DeviceInfo>& out) {
  if (env_is_one("JAMNET_DISABLE_CUDA")) return "disabled by JAMNET_DISABLE_CUDA";
  dlerror();
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return "no CUDA driver (libcuda.so.1): " + dl_error();
  auto sym = [&](const char* n) { return dlsym(lib, n); };
  auto init = reinterpret_cast<FnInit>(sym("cuInit"));
  auto version = reinterpret_cast<FnDriverGetVersion>(sym("cuDriverGetVersion"));
  auto count = reinterpret_cast<FnDeviceGetCount>(sym("cuDeviceGetCount"));
  auto get = reinterpret_cast<FnDeviceGet>(sym("cuDeviceGet"));
  auto name = reinterpret_cast<FnDeviceGetName>(sym("cuDeviceGetName"));
  auto total = reinterpret_cast<FnDeviceTotalMem>(sym("cuDeviceTotalMem_v2"));
  auto attr = reinterpret_cast<FnDeviceGetAttribute>(sym("cuDeviceGetAttribute"));
  std::string status;
  if (!init || !version || !count || !get || !name || !total || !attr) {
    status = "CUDA driver (libcuda.so.1) lacks driver API functions";
  } else if (CUresult r = init(0); r != 0) {
    status = "cuInit failed: CUresult " + std::to_string(r);
  } else {
    int drv = 0;
    (void)version(&drv);
    int n = 0;
    if (CUresult cr = count(&n); cr != 0) {
      status = "cuDeviceGetCount failed: CUresult " + std::to_string(cr);
    } else {
      int found = 0;
      for (int i = 0; i < n; ++i) {
        CUdevice dev = 0;
        if (get(&dev, i) != 0) continue;
        DeviceInfo d;
        d.backend = Backend::kCuda;
        d.type = DeviceType::kDiscrete;
        char buf[256] = {};
        if (name(buf, static_cast<int>(sizeof buf - 1), dev) == 0) d.name = buf;
        std::size_t bytes = 0;
        if (total(&bytes, dev) == 0) d.vram_bytes = bytes;
        int major = 0, minor = 0;
        (void)attr(&major, kCcMajor, dev);
        (void)attr(&minor, kCcMinor, dev);
        d.compute_capability = std::to_string(major) + "." + std::to_string(minor);
        d.driver = std::to_string(drv);
        out.push_back(std::move(d));
        ++found;
      }
      status = found == 0 ? "no devices"
                          : "ok: " + std::to_string(found) + (found == 1 ? " device" : " devices");
    }
  }
  dlclose(lib);
  return status;
}

}  // namespace

Detection detect() {
  Detection d;
  try {
    d.vulkan_status = vulkan_probe(d.devices);
  } catch (const std::exception& e) {
    d.vulkan_status = std::string("Vulkan probe failed: ") + e.what();
  }
  try {
    d.cuda_status = cuda_probe(d.devices);
  } catch (const std::exception& e) {
    d.cuda_status = std::string("CUDA probe failed: ") + e.what();
  }
  return d;
}

// -------------------------------------------------------------------- tiers

Tier classify(const DeviceInfo& d) noexcept {
  if (d.is_cpu()) return Tier::kCpuOnly;
  constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;
  Tier t = d.vram_bytes >= 16 * kGiB  ? Tier::kHighEnd
           : d.vram_bytes >= 8 * kGiB ? Tier::kMidRange
           : d.vram_bytes >= 4 * kGiB ? Tier::kModest
                                      : Tier::kLowEnd;
  if (d.backend == Backend::kCuda && !d.compute_capability.empty()) {
    double cc = 0;
    const char* b = d.compute_capability.c_str();
    char* end = nullptr;
    cc = std::strtod(b, &end);
    if (end != b && cc < 6.0 && t != Tier::kLowEnd) t = static_cast<Tier>(static_cast<int>(t) + 1);
  }
  return t;
}

std::optional<DeviceInfo> best_device(const Detection& d) {
  const DeviceInfo* best = nullptr;
  for (const auto& dev : d.devices) {
    if (dev.is_cpu()) continue;
    if (!best) {
      best = &dev;
      continue;
    }
    const Tier a = classify(dev), b = classify(*best);
    if (a < b || (a == b && dev.vram_bytes > best->vram_bytes)) best = &dev;
  }
  if (!best) return std::nullopt;
  return *best;
}

// ------------------------------------------------------------ configuration

namespace {
struct TierRow {
  int streams;
  double vram_fraction;
  double util_balanced, util_high, util_modest;
  double prebuffer_s;
};
constexpr TierRow kRows[] = {
    {3, 0.90, 0.90, 0.95, 0.80, 0.5},  // high_end
    {2, 0.80, 0.70, 0.80, 0.60, 1.0},  // mid_range
    {1, 0.70, 0.50, 0.60, 0.40, 2.0},  // modest
    {0, 0.60, 0.40, 0.50, 0.30, 3.0},  // low_end
};
}  // namespace

GpuConfig make_config(const std::optional<DeviceInfo>& device, Profile profile) {
  GpuConfig c;
  c.profile = profile;
  c.tier = device ? classify(*device) : Tier::kCpuOnly;
  if (c.tier == Tier::kCpuOnly) {
    c.backend = Backend::kCpu;
    c.parallel_streams = 0;
    c.vram_limit_bytes = 0;
    c.utilization_target = 0;
    c.prebuffer_s = 3.0;
    return c;
  }
  const TierRow& row = kRows[static_cast<int>(c.tier)];
  c.backend = device->backend;
  c.vram_limit_bytes =
      static_cast<std::uint64_t>(static_cast<long double>(device->vram_bytes) * row.vram_fraction);
  switch (profile) {
    case Profile::kHighPerformance:
      c.parallel_streams = std::min(row.streams + 1, 3);
      c.utilization_target = row.util_high;
      c.prebuffer_s = std::max(row.prebuffer_s * 0.5, 0.5);
      break;
    case Profile::kModest:
      c.parallel_streams = std::max(row.streams - 1, 0);
      c.utilization_target = row.util_modest;
      c.prebuffer_s = std::min(row.prebuffer_s * 1.5, 3.0);
      break;
    case Profile::kAuto:
    case Profile::kBalanced:
      c.parallel_streams = row.streams;
      c.utilization_target = row.util_balanced;
      c.prebuffer_s = row.prebuffer_s;
      break;
  }
  return c;
}

namespace {
bool parse_double(std::string_view s, double& out) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s.front()))) return false;
  const std::string text(s);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v)) return false;
  out = v;
  return true;
}
template <class T>
bool parse_int(std::string_view s, T& out) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return false;
  out = v;
  return true;
}
}  // namespace

Result<GpuConfig> apply_env(GpuConfig c, const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* name) -> std::optional<std::string_view> {
    const char* v = getenv ? getenv(name) : nullptr;
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string_view(v);
  };
  if (auto v = get("JAMNET_GPU_PROFILE")) {
    if (!profile_from(*v))
      return make_error(Errc::kInvalidArgument,
                        "JAMNET_GPU_PROFILE='" + std::string(*v) +
                            "': expected auto, high_performance, balanced or modest");
  }
  if (auto v = get("JAMNET_GPU_PARALLEL_STREAMS")) {
    int n = 0;
    if (!parse_int(*v, n) || n < 0 || n > 3)
      return make_error(Errc::kInvalidArgument, "JAMNET_GPU_PARALLEL_STREAMS='" + std::string(*v) +
                                                    "': expected an integer 0..3");
    c.parallel_streams = n;
  }
  if (auto v = get("JAMNET_GPU_VRAM_LIMIT_MB")) {
    std::uint64_t mb = 0;
    constexpr std::uint64_t kMiB = 1024ull * 1024;
    if (!parse_int(*v, mb) || mb > UINT64_MAX / kMiB)
      return make_error(Errc::kInvalidArgument, "JAMNET_GPU_VRAM_LIMIT_MB='" + std::string(*v) +
                                                    "': expected a whole number of MiB >= 0");
    c.vram_limit_bytes = mb * kMiB;
  }
  if (auto v = get("JAMNET_GPU_UTILIZATION")) {
    double u = 0;
    if (!parse_double(*v, u) || u < 0 || u > 1)
      return make_error(Errc::kInvalidArgument,
                        "JAMNET_GPU_UTILIZATION='" + std::string(*v) + "': expected a number 0..1");
    c.utilization_target = u;
  }
  if (auto v = get("JAMNET_GPU_PREBUFFER_S")) {
    double s = 0;
    if (!parse_double(*v, s) || s < 0.05 || s > 30)
      return make_error(Errc::kInvalidArgument, "JAMNET_GPU_PREBUFFER_S='" + std::string(*v) +
                                                    "': expected seconds 0.05..30");
    c.prebuffer_s = s;
  }
  return c;
}

// ---------------------------------------------------------------- VRAM use

VramTracker::VramTracker(std::uint64_t limit_bytes, double pressure_fraction) noexcept
    : limit_(limit_bytes),
      pressure_at_(static_cast<std::uint64_t>(
          static_cast<long double>(limit_bytes) *
          std::clamp(std::isfinite(pressure_fraction) ? pressure_fraction : 0.9, 0.0, 1.0))) {}

bool VramTracker::try_allocate(std::uint64_t bytes) noexcept {
  std::uint64_t cur = used_.load(std::memory_order_relaxed);
  std::uint64_t next = 0;
  do {
    if (bytes > limit_ || cur > limit_ - bytes) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    next = cur + bytes;
  } while (!used_.compare_exchange_weak(cur, next, std::memory_order_relaxed));
  std::uint64_t pk = peak_.load(std::memory_order_relaxed);
  while (next > pk && !peak_.compare_exchange_weak(pk, next, std::memory_order_relaxed)) {
  }
  return true;
}

void VramTracker::release(std::uint64_t bytes) noexcept {
  std::uint64_t cur = used_.load(std::memory_order_relaxed);
  std::uint64_t next = 0;
  do {
    next = bytes >= cur ? 0 : cur - bytes;
  } while (!used_.compare_exchange_weak(cur, next, std::memory_order_relaxed));
}

bool VramTracker::under_pressure() const noexcept {
  return limit_ > 0 && used() >= pressure_at_;
}

// -------------------------------------------------------------------- JSON

std::string to_json(const Detection& d, const GpuConfig& c) {
  using nlohmann::json;
  json devices = json::array();
  for (const auto& dev : d.devices) {
    devices.push_back({{"backend", to_string(dev.backend)},
                       {"name", dev.name},
                       {"type", to_string(dev.type)},
                       {"is_cpu", dev.is_cpu()},
                       {"vram_bytes", dev.vram_bytes},
                       {"compute_capability", dev.compute_capability},
                       {"driver", dev.driver},
                       {"vendor_id", dev.vendor_id},
                       {"device_id", dev.device_id},
                       {"tier", to_string(classify(dev))}});
  }
  json j;
  j["vulkan_status"] = d.vulkan_status;
  j["cuda_status"] = d.cuda_status;
  j["devices"] = devices;
  const auto best = best_device(d);
  j["best_device"] = best ? json(best->name) : json(nullptr);
  j["config"] = {{"tier", to_string(c.tier)},
                 {"profile", to_string(c.profile)},
                 {"backend", to_string(c.backend)},
                 {"parallel_streams", c.parallel_streams},
                 {"vram_limit_bytes", c.vram_limit_bytes},
                 {"utilization_target", c.utilization_target},
                 {"prebuffer_s", c.prebuffer_s}};
  return j.dump(2);
}

}  // namespace jamnet::gpu
