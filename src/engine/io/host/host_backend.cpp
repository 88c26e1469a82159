#include "jamnet/engine/io/host_backend.hpp"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace jamnet::engine::io {

namespace {}

struct HostBackend::Impl {
  BackendConfig config;
  std::vector<float> silence;         // for null inputs
  std::vector<const float*> in_ptrs;  // this call's inputs (audio thread)
  std::vector<float*> out_ptrs;       // this call's outputs (audio thread)
  std::vector<std::string> input_names, output_names;
  std::atomic<AudioCallback*> cb{nullptr};
  std::atomic<int> busy{0};
  std::atomic<std::uint64_t> cycles{0}, refused{0};
  std::uint64_t frame_time = 0;  // audio thread
};

Result<std::unique_ptr<HostBackend>> HostBackend::open(const BackendConfig& config) {
  if (config.sample_rate == 0 || config.frames == 0 || config.frames > kMaxBackendFrames)
    return make_error(Errc::kInvalidArgument,
                      "host backend: the rate must be above 0 and the largest block 1.." +
                          std::to_string(kMaxBackendFrames) + " frames");
  return std::unique_ptr<HostBackend>(new HostBackend(config));
}

HostBackend::HostBackend(const BackendConfig& config) : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->silence.assign(config.frames, 0.0f);
  impl_->in_ptrs.assign(config.inputs.size(), nullptr);
  impl_->out_ptrs.assign(config.outputs.size(), nullptr);
  for (const auto& n : config.inputs) impl_->input_names.push_back(config.client_name + ":" + n);
  for (const auto& n : config.outputs) impl_->output_names.push_back(config.client_name + ":" + n);
}

HostBackend::~HostBackend() {
  stop();
}

bool HostBackend::process(const float* const* inputs, float* const* outputs, std::uint32_t frames,
                          Nanos host_time) noexcept {
  Impl& m = *impl_;
  auto silent = [&] {
    if (outputs != nullptr && frames <= kMaxBackendFrames)
      for (std::size_t o = 0; o < m.out_ptrs.size(); ++o)
        if (outputs[o] != nullptr) std::fill(outputs[o], outputs[o] + frames, 0.0f);
    m.refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  };
  if (frames == 0 || frames > m.config.frames || (outputs == nullptr && !m.out_ptrs.empty()))
    return silent();
  m.busy.fetch_add(1, std::memory_order_seq_cst);
  AudioCallback* cb = m.cb.load(std::memory_order_seq_cst);
  if (cb == nullptr) {
    m.busy.fetch_sub(1, std::memory_order_seq_cst);
    return silent();
  }
  for (std::size_t i = 0; i < m.in_ptrs.size(); ++i)
    m.in_ptrs[i] = inputs != nullptr && inputs[i] != nullptr ? inputs[i] : m.silence.data();
  for (std::size_t o = 0; o < m.out_ptrs.size(); ++o) m.out_ptrs[o] = outputs[o];
  const Nanos now = monotonic_ns();
  AudioBlock b{std::span<const float* const>(m.in_ptrs.data(), m.in_ptrs.size()),
               std::span<float* const>(m.out_ptrs.data(), m.out_ptrs.size()),
               {}};
  b.info.frame_time = m.frame_time;
  b.info.start_ns = host_time != 0 ? host_time : now;
  b.info.wake_ns = now;
  b.info.frames = frames;
  b.info.sample_rate = m.config.sample_rate;
  b.info.period_ns = static_cast<Nanos>(frames) * 1'000'000'000 / m.config.sample_rate;
  cb->process(b);
  m.frame_time += frames;
  m.cycles.fetch_add(1, std::memory_order_relaxed);
  m.busy.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

std::uint64_t HostBackend::refused_blocks() const noexcept {
  return impl_->refused.load(std::memory_order_relaxed);
}

Result<void> HostBackend::start(AudioCallback& cb) {
  AudioCallback* expected = nullptr;
  if (!impl_->cb.compare_exchange_strong(expected, &cb))
    return make_error(Errc::kInvalidArgument, "host backend already started");
  return {};
}

void HostBackend::stop() {
  impl_->cb.store(nullptr, std::memory_order_seq_cst);
  // A process() that saw the callback may still be in it: wait it out.
  while (impl_->busy.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

std::string HostBackend::client_name() const {
  return impl_->config.client_name;
}
std::uint32_t HostBackend::sample_rate() const {
  return impl_->config.sample_rate;
}
std::uint32_t HostBackend::buffer_size() const {
  return impl_->config.frames;
}
std::uint64_t HostBackend::cycles() const {
  return impl_->cycles.load(std::memory_order_relaxed);
}
Result<std::size_t> HostBackend::add_output(const std::string&) {
  return make_error(Errc::kUnsupported,
                    "the host-driven backend has the outputs the host gives it: mix sources into "
                    "them");
}
Result<void> HostBackend::remove_output(std::size_t) {
  return make_error(Errc::kUnsupported, "the host-driven backend's outputs are fixed");
}
std::vector<std::string> HostBackend::input_ports() const {
  return impl_->input_names;
}
std::vector<std::string> HostBackend::output_ports() const {
  return impl_->output_names;
}

}  // namespace jamnet::engine::io
