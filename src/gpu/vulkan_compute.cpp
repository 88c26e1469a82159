// Vulkan compute backend (include/jamnet/gpu/compute.hpp, docs/gpu.md).
//
// The loader is dlopen'ed (as in device.cpp), so the library runs on machines
// without Vulkan. The shaders (shaders/gpu/*.comp) are SPIR-V compiled at
// build time and embedded. Each kernel owns three storage buffers in
// host-visible, coherent memory, mapped once and grown on demand; a call
// copies into them, records one dispatch, submits it with a fence and waits.
// VK_EXT_calibrated_timestamps, when the device has it, pairs the device's
// timestamp counter with CLOCK_MONOTONIC (sync::make_gpu_clock fits them).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "jamnet/gpu/compute.hpp"

#if defined(JAMNET_HAVE_VULKAN_HEADERS) && defined(JAMNET_HAVE_SPIRV)

#include <dlfcn.h>

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "shaders/jsonl_spv.h"
#include "shaders/mix_spv.h"
#include "shaders/noop_spv.h"
#include "shaders/pnbtr_spv.h"

#include "env.hpp"

namespace jamnet::gpu {
namespace {

// Every entry point used, loaded through vkGetInstanceProcAddr /
// vkGetDeviceProcAddr.
#define JAMNET_VK_INSTANCE_FNS(X)             \
  X(vkDestroyInstance)                        \
  X(vkEnumeratePhysicalDevices)               \
  X(vkGetPhysicalDeviceProperties)            \
  X(vkGetPhysicalDeviceFeatures)              \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkGetPhysicalDeviceMemoryProperties)      \
  X(vkEnumerateDeviceExtensionProperties)     \
  X(vkCreateDevice)                           \
  X(vkGetDeviceProcAddr)

#define JAMNET_VK_DEVICE_FNS(X)    \
  X(vkDestroyDevice)               \
  X(vkGetDeviceQueue)              \
  X(vkCreateBuffer)                \
  X(vkDestroyBuffer)               \
  X(vkGetBufferMemoryRequirements) \
  X(vkAllocateMemory)              \
  X(vkFreeMemory)                  \
  X(vkBindBufferMemory)            \
  X(vkMapMemory)                   \
  X(vkUnmapMemory)                 \
  X(vkCreateShaderModule)          \
  X(vkDestroyShaderModule)         \
  X(vkCreateDescriptorSetLayout)   \
  X(vkDestroyDescriptorSetLayout)  \
  X(vkCreatePipelineLayout)        \
  X(vkDestroyPipelineLayout)       \
  X(vkCreateComputePipelines)      \
  X(vkDestroyPipeline)             \
  X(vkCreateDescriptorPool)        \
  X(vkDestroyDescriptorPool)       \
  X(vkAllocateDescriptorSets)      \
  X(vkUpdateDescriptorSets)        \
  X(vkCreateCommandPool)           \
  X(vkDestroyCommandPool)          \
  X(vkAllocateCommandBuffers)      \
  X(vkBeginCommandBuffer)          \
  X(vkEndCommandBuffer)            \
  X(vkResetCommandBuffer)          \
  X(vkCmdBindPipeline)             \
  X(vkCmdBindDescriptorSets)       \
  X(vkCmdPushConstants)            \
  X(vkCmdDispatch)                 \
  X(vkCmdPipelineBarrier)          \
  X(vkCreateFence)                 \
  X(vkDestroyFence)                \
  X(vkResetFences)                 \
  X(vkWaitForFences)               \
  X(vkQueueSubmit)                 \
  X(vkDeviceWaitIdle)

std::string vk_error(const char* what, VkResult r) {
  const char* name = nullptr;
  switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      name = "VK_ERROR_OUT_OF_HOST_MEMORY";
      break;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      name = "VK_ERROR_OUT_OF_DEVICE_MEMORY";
      break;
    case VK_ERROR_INITIALIZATION_FAILED:
      name = "VK_ERROR_INITIALIZATION_FAILED";
      break;
    case VK_ERROR_DEVICE_LOST:
      name = "VK_ERROR_DEVICE_LOST";
      break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      name = "VK_ERROR_INCOMPATIBLE_DRIVER (no ICD)";
      break;
    case VK_ERROR_EXTENSION_NOT_PRESENT:
      name = "VK_ERROR_EXTENSION_NOT_PRESENT";
      break;
    case VK_ERROR_FEATURE_NOT_PRESENT:
      name = "VK_ERROR_FEATURE_NOT_PRESENT";
      break;
    case VK_TIMEOUT:
      name = "VK_TIMEOUT";
      break;
    default:
      break;
  }
  return std::string("vulkan: ") + what +
         " failed: " + (name ? name : "VkResult " + std::to_string(static_cast<int>(r)));
}

Error err(std::string m) {
  return Error{Errc::kUnsupported, std::move(m)};
}

constexpr int kBindings = 3;
enum KernelId { kPnbtr, kMix, kJsonl, kNoop, kKernels };
// The longest a dispatch may take before the call reports the device stuck.
constexpr std::uint64_t kFenceTimeoutNs = 20'000'000'000ull;

struct Buffer {
  VkBuffer buf = VK_NULL_HANDLE;
  VkDeviceMemory mem = VK_NULL_HANDLE;
  void* map = nullptr;
  VkDeviceSize size = 0;
};

struct Kernel {
  VkPipeline pipe = VK_NULL_HANDLE;
  VkDescriptorSet set = VK_NULL_HANDLE;
  Buffer bufs[kBindings];
  std::uint32_t local_size = 1;
};

class VulkanCompute final : public Compute {
 public:
  ~VulkanCompute() override { shutdown(); }

  Result<void> init(bool allow_cpu_device);

  Backend backend() const noexcept override { return Backend::kVulkan; }
  std::string device_name() const override {
    return std::string(props_.deviceName) +
           (props_.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? " (CPU device)" : "");
  }
  Result<void> noop() override { return dispatch(kNoop, nullptr, 0, 1); }

  std::optional<DeviceClockSample> sample_clock() override {
    if (!get_calibrated_) return std::nullopt;
    VkCalibratedTimestampInfoEXT info[2]{};
    info[0].sType = VK_STRUCTURE_TYPE_CALIBRATED_TIMESTAMP_INFO_EXT;
    info[0].timeDomain = VK_TIME_DOMAIN_DEVICE_EXT;
    info[1].sType = VK_STRUCTURE_TYPE_CALIBRATED_TIMESTAMP_INFO_EXT;
    info[1].timeDomain = VK_TIME_DOMAIN_CLOCK_MONOTONIC_EXT;
    std::uint64_t ts[2] = {0, 0};
    std::uint64_t dev = 0;
    if (get_calibrated_(device_, 2, info, ts, &dev) != VK_SUCCESS) return std::nullopt;
    DeviceClockSample p;
    p.ticks = ts[0] & ts_mask_;
    p.mono = static_cast<std::int64_t>(ts[1]);
    p.max_deviation_ns = static_cast<std::int64_t>(dev);
    return p;
  }
  double clock_tick_ns() const noexcept override {
    return get_calibrated_ ? double(props_.limits.timestampPeriod) : 0.0;
  }

 protected:
  Result<void> do_pnbtr(const PnbtrShape& s, const float* history, float* out) override {
    const std::size_t hb = std::size_t(s.streams) * s.history * sizeof(float);
    const std::size_t ob = std::size_t(s.streams) * s.frames * sizeof(float);
    if (!fp64_) {  // the shader fits in double
      pnbtr_reference(s, history, out, 0, s.streams);
      return {};
    }
    // Scratch: the Burg fit's two error arrays, in double.
    if (auto r = reserve(kPnbtr, {hb, ob, 4 * hb}); !r) return r;
    std::memcpy(k_[kPnbtr].bufs[0].map, history, hb);
    const std::uint32_t pc[4] = {std::uint32_t(s.streams), std::uint32_t(s.history),
                                 std::uint32_t(s.order), std::uint32_t(s.frames)};
    if (auto r = dispatch(kPnbtr, pc, sizeof pc, std::uint64_t(s.streams)); !r) return r;
    std::memcpy(out, k_[kPnbtr].bufs[1].map, ob);
    return {};
  }

  Result<void> do_mix(const MixShape& s, const float* gains, const float* in, float* out) override {
    const std::size_t gb = std::size_t(s.outputs) * s.inputs * sizeof(float);
    const std::size_t ib = std::size_t(s.inputs) * s.frames * sizeof(float);
    const std::size_t ob = std::size_t(s.outputs) * s.frames * sizeof(float);
    if (auto r = reserve(kMix, {gb, ib, ob}); !r) return r;
    std::memcpy(k_[kMix].bufs[0].map, gains, gb);
    std::memcpy(k_[kMix].bufs[1].map, in, ib);
    const std::uint32_t pc[3] = {std::uint32_t(s.inputs), std::uint32_t(s.outputs),
                                 std::uint32_t(s.frames)};
    if (auto r = dispatch(kMix, pc, sizeof pc, std::uint64_t(s.outputs) * s.frames); !r) return r;
    std::memcpy(out, k_[kMix].bufs[2].map, ob);
    return {};
  }

  Result<void> do_jsonl(std::string_view blob, std::span<const std::uint32_t> offsets,
                        std::span<JsonlFields> out) override {
    if (!int64_) {  // the shader needs 64-bit integers
      jsonl_reference(blob, offsets, out);
      return {};
    }
    const std::size_t bb = (blob.size() + 4) & ~std::size_t{3};
    const std::size_t offb = offsets.size() * sizeof(std::uint32_t);
    const std::size_t ob = out.size() * sizeof(JsonlFields);
    if (auto r = reserve(kJsonl, {bb, offb, ob}); !r) return r;
    auto* dst = static_cast<char*>(k_[kJsonl].bufs[0].map);
    std::memcpy(dst, blob.data(), blob.size());
    std::memset(dst + blob.size(), 0, bb - blob.size());
    std::memcpy(k_[kJsonl].bufs[1].map, offsets.data(), offb);
    const std::uint32_t pc[2] = {std::uint32_t(out.size()), std::uint32_t(blob.size())};
    if (auto r = dispatch(kJsonl, pc, sizeof pc, out.size()); !r) return r;
    std::memcpy(out.data(), k_[kJsonl].bufs[2].map, ob);
    return {};
  }

 private:
#define JAMNET_VK_MEMBER(name) PFN_##name name = nullptr;
  JAMNET_VK_INSTANCE_FNS(JAMNET_VK_MEMBER)
  JAMNET_VK_DEVICE_FNS(JAMNET_VK_MEMBER)
#undef JAMNET_VK_MEMBER
  PFN_vkGetCalibratedTimestampsEXT get_calibrated_ = nullptr;

  void* lib_ = nullptr;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkPhysicalDevice phys_ = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties props_{};
  VkPhysicalDeviceMemoryProperties mem_props_{};
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::uint32_t family_ = 0;
  std::uint32_t memory_type_ = 0;
  bool int64_ = false;  // shaderInt64: the jsonl shader
  bool fp64_ = false;   // shaderFloat64: the pnbtr shader
  std::uint64_t ts_mask_ = ~std::uint64_t{0};
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  VkCommandPool cmd_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  Kernel k_[kKernels];

  Result<void> pick_device(bool allow_cpu_device, std::uint32_t& family);
  Result<void> create_device(std::uint32_t family);
  Result<void> create_pipelines();
  Result<void> make_buffer(Buffer& b, VkDeviceSize size);
  void free_buffer(Buffer& b);
  Result<void> reserve(KernelId k, std::initializer_list<std::size_t> bytes);
  Result<void> dispatch(KernelId k, const void* push, std::uint32_t push_bytes,
                        std::uint64_t invocations);
  void shutdown();
};

Result<void> VulkanCompute::init(bool allow_cpu_device) {
  if (env_is_one("JAMNET_DISABLE_VULKAN"))
    return std::unexpected(err("vulkan: disabled by JAMNET_DISABLE_VULKAN"));
  const char* env_path = std::getenv("JAMNET_VULKAN_LOADER");
  const std::string path = (env_path && *env_path) ? env_path : "libvulkan.so.1";
  dlerror();
  lib_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib_) {
    const char* e = dlerror();
    return std::unexpected(
        err("vulkan: no Vulkan loader (" + path + "): " + (e ? e : "dlopen failed")));
  }
  auto gipa = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib_, "vkGetInstanceProcAddr"));
  if (!gipa) return std::unexpected(err("vulkan: no vkGetInstanceProcAddr in " + path));
  auto create = reinterpret_cast<PFN_vkCreateInstance>(gipa(VK_NULL_HANDLE, "vkCreateInstance"));
  if (!create) return std::unexpected(err("vulkan: no vkCreateInstance in " + path));
  VkApplicationInfo app{};
  app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
  app.pApplicationName = "jamnet";
  app.pEngineName = "jamnet";
  app.apiVersion = VK_API_VERSION_1_1;
  VkInstanceCreateInfo ci{};
  ci.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
  ci.pApplicationInfo = &app;
  if (VkResult r = create(&ci, nullptr, &instance_); r != VK_SUCCESS) {
    instance_ = VK_NULL_HANDLE;
    return std::unexpected(err(vk_error("vkCreateInstance", r)));
  }
#define JAMNET_VK_LOAD(name)                                   \
  name = reinterpret_cast<PFN_##name>(gipa(instance_, #name)); \
  if (!name) return std::unexpected(err("vulkan: the loader has no " #name));
  JAMNET_VK_INSTANCE_FNS(JAMNET_VK_LOAD)
#undef JAMNET_VK_LOAD
  std::uint32_t family = 0;
  if (auto r = pick_device(allow_cpu_device, family); !r) return r;
  if (auto r = create_device(family); !r) return r;
  return create_pipelines();
}

Result<void> VulkanCompute::pick_device(bool allow_cpu_device, std::uint32_t& family) {
  std::uint32_t n = 0;
  if (VkResult r = vkEnumeratePhysicalDevices(instance_, &n, nullptr); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkEnumeratePhysicalDevices", r)));
  std::vector<VkPhysicalDevice> devs(n);
  if (n) vkEnumeratePhysicalDevices(instance_, &n, devs.data());
  devs.resize(n);
  auto rank = [](VkPhysicalDeviceType t) {
    switch (t) {
      case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 0;
      case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 1;
      case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
      case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 4;
      default:
        return 3;
    }
  };
  int best_rank = 99;
  int skipped_cpu = 0;
  for (VkPhysicalDevice d : devs) {
    VkPhysicalDeviceProperties p{};
    vkGetPhysicalDeviceProperties(d, &p);
    if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU && !allow_cpu_device) {
      ++skipped_cpu;
      continue;
    }
    std::uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d, &nq, nullptr);
    std::vector<VkQueueFamilyProperties> qs(nq);
    vkGetPhysicalDeviceQueueFamilyProperties(d, &nq, qs.data());
    for (std::uint32_t q = 0; q < nq; ++q) {
      if (!(qs[q].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
      if (rank(p.deviceType) < best_rank) {
        best_rank = rank(p.deviceType);
        phys_ = d;
        props_ = p;
        family = q;
        ts_mask_ = qs[q].timestampValidBits >= 64
                       ? ~std::uint64_t{0}
                       : (std::uint64_t{1} << qs[q].timestampValidBits) - 1;
      }
      break;
    }
  }
  if (phys_ == VK_NULL_HANDLE) {
    if (skipped_cpu)
      return std::unexpected(err("vulkan: no GPU with a compute queue (" +
                                 std::to_string(skipped_cpu) +
                                 " CPU-type device(s), such as lavapipe, not used)"));
    return std::unexpected(err("vulkan: no device with a compute queue"));
  }
  return {};
}

Result<void> VulkanCompute::create_device(std::uint32_t family) {
  family_ = family;
  vkGetPhysicalDeviceMemoryProperties(phys_, &mem_props_);
  VkPhysicalDeviceFeatures have{};
  vkGetPhysicalDeviceFeatures(phys_, &have);
  VkPhysicalDeviceFeatures want{};
  want.shaderInt64 = have.shaderInt64;
  want.shaderFloat64 = have.shaderFloat64;
  int64_ = have.shaderInt64 == VK_TRUE;
  fp64_ = have.shaderFloat64 == VK_TRUE;

  std::uint32_t ne = 0;
  vkEnumerateDeviceExtensionProperties(phys_, nullptr, &ne, nullptr);
  std::vector<VkExtensionProperties> exts(ne);
  if (ne) vkEnumerateDeviceExtensionProperties(phys_, nullptr, &ne, exts.data());
  exts.resize(ne);
  bool calibrated = false;
  for (const auto& e : exts) {
    if (std::strcmp(e.extensionName, VK_EXT_CALIBRATED_TIMESTAMPS_EXTENSION_NAME) == 0)
      calibrated = true;
  }
  if (calibrated) {
    auto domains = reinterpret_cast<PFN_vkGetPhysicalDeviceCalibrateableTimeDomainsEXT>(
        reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(lib_, "vkGetInstanceProcAddr"))(
            instance_, "vkGetPhysicalDeviceCalibrateableTimeDomainsEXT"));
    bool dev = false, mono = false;
    if (domains) {
      std::uint32_t nd = 0;
      domains(phys_, &nd, nullptr);
      std::vector<VkTimeDomainEXT> ds(nd);
      if (nd) domains(phys_, &nd, ds.data());
      ds.resize(nd);
      for (auto d : ds) {
        dev |= d == VK_TIME_DOMAIN_DEVICE_EXT;
        mono |= d == VK_TIME_DOMAIN_CLOCK_MONOTONIC_EXT;
      }
    }
    calibrated = dev && mono;
  }

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qci{};
  qci.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
  qci.queueFamilyIndex = family;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;
  const char* ext_names[] = {VK_EXT_CALIBRATED_TIMESTAMPS_EXTENSION_NAME};
  VkDeviceCreateInfo dci{};
  dci.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.pEnabledFeatures = &want;
  dci.enabledExtensionCount = calibrated ? 1 : 0;
  dci.ppEnabledExtensionNames = ext_names;
  if (VkResult r = vkCreateDevice(phys_, &dci, nullptr, &device_); r != VK_SUCCESS) {
    device_ = VK_NULL_HANDLE;
    return std::unexpected(err(vk_error("vkCreateDevice", r)));
  }
#define JAMNET_VK_LOAD(name)                                                \
  name = reinterpret_cast<PFN_##name>(vkGetDeviceProcAddr(device_, #name)); \
  if (!name) return std::unexpected(err("vulkan: the driver has no " #name));
  JAMNET_VK_DEVICE_FNS(JAMNET_VK_LOAD)
#undef JAMNET_VK_LOAD
  if (calibrated) {
    get_calibrated_ = reinterpret_cast<PFN_vkGetCalibratedTimestampsEXT>(
        vkGetDeviceProcAddr(device_, "vkGetCalibratedTimestampsEXT"));
  }
  vkGetDeviceQueue(device_, family, 0, &queue_);

  // Host-visible and coherent; device-local too when the device offers it
  // (resizable BAR, unified memory, CPU devices).
  int best = -1, best_score = -1;
  for (std::uint32_t i = 0; i < mem_props_.memoryTypeCount; ++i) {
    const auto f = mem_props_.memoryTypes[i].propertyFlags;
    const auto need = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if ((f & need) != need) continue;
    const int score = (f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) ? 2 : 1;
    if (score > best_score) best = int(i), best_score = score;
  }
  if (best < 0) return std::unexpected(err("vulkan: no host-visible coherent memory type"));
  memory_type_ = std::uint32_t(best);

  VkCommandPoolCreateInfo pci{};
  pci.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = family;
  if (VkResult r = vkCreateCommandPool(device_, &pci, nullptr, &cmd_pool_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkCreateCommandPool", r)));
  VkCommandBufferAllocateInfo cai{};
  cai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  cai.commandPool = cmd_pool_;
  cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  cai.commandBufferCount = 1;
  if (VkResult r = vkAllocateCommandBuffers(device_, &cai, &cmd_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkAllocateCommandBuffers", r)));
  VkFenceCreateInfo fci{};
  fci.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
  if (VkResult r = vkCreateFence(device_, &fci, nullptr, &fence_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkCreateFence", r)));
  return {};
}

Result<void> VulkanCompute::create_pipelines() {
  VkDescriptorSetLayoutBinding b[kBindings]{};
  for (int i = 0; i < kBindings; ++i) {
    b[i].binding = std::uint32_t(i);
    b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    b[i].descriptorCount = 1;
    b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo lci{};
  lci.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
  lci.bindingCount = kBindings;
  lci.pBindings = b;
  if (VkResult r = vkCreateDescriptorSetLayout(device_, &lci, nullptr, &set_layout_);
      r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkCreateDescriptorSetLayout", r)));
  VkPushConstantRange range{};
  range.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  range.size = 16;
  VkPipelineLayoutCreateInfo plci{};
  plci.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
  plci.setLayoutCount = 1;
  plci.pSetLayouts = &set_layout_;
  plci.pushConstantRangeCount = 1;
  plci.pPushConstantRanges = &range;
  if (VkResult r = vkCreatePipelineLayout(device_, &plci, nullptr, &layout_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkCreatePipelineLayout", r)));

  VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kBindings * kKernels};
  VkDescriptorPoolCreateInfo dpci{};
  dpci.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
  dpci.maxSets = kKernels;
  dpci.poolSizeCount = 1;
  dpci.pPoolSizes = &ps;
  if (VkResult r = vkCreateDescriptorPool(device_, &dpci, nullptr, &pool_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkCreateDescriptorPool", r)));

  struct Src {
    const std::uint32_t* code;
    std::size_t bytes;
    std::uint32_t local_size;
  };
  const Src srcs[kKernels] = {{k_pnbtr_spv, sizeof k_pnbtr_spv, 32},
                              {k_mix_spv, sizeof k_mix_spv, 64},
                              {k_jsonl_spv, sizeof k_jsonl_spv, 64},
                              {k_noop_spv, sizeof k_noop_spv, 1}};
  for (int k = 0; k < kKernels; ++k) {
    // Without the feature a kernel runs on the CPU instead (do_jsonl, do_pnbtr).
    if ((k == kJsonl && !int64_) || (k == kPnbtr && !fp64_)) continue;
    VkShaderModuleCreateInfo smci{};
    smci.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    smci.codeSize = srcs[k].bytes;
    smci.pCode = srcs[k].code;
    VkShaderModule mod = VK_NULL_HANDLE;
    if (VkResult r = vkCreateShaderModule(device_, &smci, nullptr, &mod); r != VK_SUCCESS)
      return std::unexpected(err(vk_error("vkCreateShaderModule", r)));
    VkComputePipelineCreateInfo cpci{};
    cpci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    cpci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpci.stage.module = mod;
    cpci.stage.pName = "main";
    cpci.layout = layout_;
    const VkResult r =
        vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &cpci, nullptr, &k_[k].pipe);
    vkDestroyShaderModule(device_, mod, nullptr);
    if (r != VK_SUCCESS) {
      k_[k].pipe = VK_NULL_HANDLE;
      return std::unexpected(err(vk_error("vkCreateComputePipelines", r)));
    }
    k_[k].local_size = srcs[k].local_size;
    if (k == kNoop) continue;
    VkDescriptorSetAllocateInfo dsai{};
    dsai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    dsai.descriptorPool = pool_;
    dsai.descriptorSetCount = 1;
    dsai.pSetLayouts = &set_layout_;
    if (VkResult r2 = vkAllocateDescriptorSets(device_, &dsai, &k_[k].set); r2 != VK_SUCCESS)
      return std::unexpected(err(vk_error("vkAllocateDescriptorSets", r2)));
  }
  return {};
}

Result<void> VulkanCompute::make_buffer(Buffer& b, VkDeviceSize size) {
  VkBufferCreateInfo bci{};
  bci.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  bci.size = size;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  if (VkResult r = vkCreateBuffer(device_, &bci, nullptr, &b.buf); r != VK_SUCCESS) {
    b.buf = VK_NULL_HANDLE;
    return std::unexpected(err(vk_error("vkCreateBuffer", r)));
  }
  VkMemoryRequirements req{};
  vkGetBufferMemoryRequirements(device_, b.buf, &req);
  if (!(req.memoryTypeBits & (1u << memory_type_))) {
    free_buffer(b);
    return std::unexpected(err("vulkan: storage buffers cannot use host-visible memory here"));
  }
  VkMemoryAllocateInfo mai{};
  mai.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
  mai.allocationSize = req.size;
  mai.memoryTypeIndex = memory_type_;
  if (VkResult r = vkAllocateMemory(device_, &mai, nullptr, &b.mem); r != VK_SUCCESS) {
    b.mem = VK_NULL_HANDLE;
    free_buffer(b);
    return std::unexpected(err(vk_error("vkAllocateMemory", r)));
  }
  vkBindBufferMemory(device_, b.buf, b.mem, 0);
  if (VkResult r = vkMapMemory(device_, b.mem, 0, VK_WHOLE_SIZE, 0, &b.map); r != VK_SUCCESS) {
    b.map = nullptr;
    free_buffer(b);
    return std::unexpected(err(vk_error("vkMapMemory", r)));
  }
  b.size = size;
  return {};
}

void VulkanCompute::free_buffer(Buffer& b) {
  if (b.map) vkUnmapMemory(device_, b.mem);
  if (b.buf) vkDestroyBuffer(device_, b.buf, nullptr);
  if (b.mem) vkFreeMemory(device_, b.mem, nullptr);
  b = Buffer{};
}

Result<void> VulkanCompute::reserve(KernelId k, std::initializer_list<std::size_t> bytes) {
  Kernel& kern = k_[k];
  int i = 0;
  for (std::size_t want : bytes) {
    Buffer& b = kern.bufs[i];
    want = std::max<std::size_t>(want, 256);
    if (b.size < want) {
      free_buffer(b);
      // Grow by at least half again, so a rising batch size does not
      // reallocate on every call.
      const VkDeviceSize size = std::max<VkDeviceSize>(want, b.size + b.size / 2);
      if (size > props_.limits.maxStorageBufferRange)
        return std::unexpected(
            Error{Errc::kTooLarge, "vulkan: a buffer of " + std::to_string(size) +
                                       " bytes exceeds the device's storage buffer range (" +
                                       std::to_string(props_.limits.maxStorageBufferRange) + ")"});
      if (auto r = make_buffer(b, size); !r) return r;
      VkDescriptorBufferInfo info{b.buf, 0, VK_WHOLE_SIZE};
      VkWriteDescriptorSet w{};
      w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
      w.dstSet = kern.set;
      w.dstBinding = std::uint32_t(i);
      w.descriptorCount = 1;
      w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w.pBufferInfo = &info;
      vkUpdateDescriptorSets(device_, 1, &w, 0, nullptr);
    }
    ++i;
  }
  return {};
}

Result<void> VulkanCompute::dispatch(KernelId k, const void* push, std::uint32_t push_bytes,
                                     std::uint64_t invocations) {
  const Kernel& kern = k_[k];
  const std::uint64_t groups = (invocations + kern.local_size - 1) / kern.local_size;
  const std::uint64_t max_x = props_.limits.maxComputeWorkGroupCount[0];
  const std::uint64_t gx = std::min<std::uint64_t>(groups, max_x);
  const std::uint64_t gy = (groups + gx - 1) / gx;
  if (gy > props_.limits.maxComputeWorkGroupCount[1])
    return std::unexpected(Error{Errc::kTooLarge, "vulkan: dispatch too large for the device"});

  vkResetCommandBuffer(cmd_, 0);
  VkCommandBufferBeginInfo bi{};
  bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  if (VkResult r = vkBeginCommandBuffer(cmd_, &bi); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkBeginCommandBuffer", r)));
  vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, kern.pipe);
  if (kern.set)
    vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, layout_, 0, 1, &kern.set, 0,
                            nullptr);
  if (push_bytes)
    vkCmdPushConstants(cmd_, layout_, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
  vkCmdDispatch(cmd_, std::uint32_t(gx), std::uint32_t(gy), 1);
  // The results become visible to the host's reads after the fence.
  VkMemoryBarrier mb{};
  mb.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                       &mb, 0, nullptr, 0, nullptr);
  if (VkResult r = vkEndCommandBuffer(cmd_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkEndCommandBuffer", r)));
  vkResetFences(device_, 1, &fence_);
  VkSubmitInfo si{};
  si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd_;
  if (VkResult r = vkQueueSubmit(queue_, 1, &si, fence_); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkQueueSubmit", r)));
  if (VkResult r = vkWaitForFences(device_, 1, &fence_, VK_TRUE, kFenceTimeoutNs); r != VK_SUCCESS)
    return std::unexpected(err(vk_error("vkWaitForFences", r)));
  return {};
}

void VulkanCompute::shutdown() {
  if (device_ && vkDestroyDevice) {
    if (vkDeviceWaitIdle) vkDeviceWaitIdle(device_);
    for (auto& k : k_) {
      for (auto& b : k.bufs) {
        if (b.buf || b.mem) free_buffer(b);
      }
      if (k.pipe) vkDestroyPipeline(device_, k.pipe, nullptr);
      k.pipe = VK_NULL_HANDLE;
    }
    if (fence_) vkDestroyFence(device_, fence_, nullptr);
    if (cmd_pool_) vkDestroyCommandPool(device_, cmd_pool_, nullptr);
    if (pool_) vkDestroyDescriptorPool(device_, pool_, nullptr);
    if (layout_) vkDestroyPipelineLayout(device_, layout_, nullptr);
    if (set_layout_) vkDestroyDescriptorSetLayout(device_, set_layout_, nullptr);
    vkDestroyDevice(device_, nullptr);
    device_ = VK_NULL_HANDLE;
  }
  if (instance_ && vkDestroyInstance) vkDestroyInstance(instance_, nullptr);
  instance_ = VK_NULL_HANDLE;
  if (lib_) dlclose(lib_);
  lib_ = nullptr;
}

}  // namespace

Result<std::unique_ptr<Compute>> make_vulkan_compute(bool allow_cpu_device) {
  auto c = std::make_unique<VulkanCompute>();
  if (auto r = c->init(allow_cpu_device); !r) return std::unexpected(r.error());
  return std::unique_ptr<Compute>(std::move(c));
}

}  // namespace jamnet::gpu

#else  // built without the Vulkan headers or glslangValidator

namespace jamnet::gpu {
Result<std::unique_ptr<Compute>> make_vulkan_compute(bool) {
  return std::unexpected(Error{Errc::kUnsupported,
                               "vulkan: built without compute shaders (glslangValidator or the "
                               "Vulkan headers were missing when configured)"});
}
}  // namespace jamnet::gpu

#endif
