#include "jamnet/engine/io/null_backend.hpp"

#include <atomic>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "jamnet/platform/realtime.hpp"

namespace jamnet::engine::io {
namespace {

// The output pointer array the audio thread reads. add_output publishes a new
// one instead of growing this one, so the audio thread never sees a vector
// being reallocated under it.
struct NullOutputSet {
  std::vector<float*> buffers;
};

class NullBackend final : public AudioBackend {
 public:
  explicit NullBackend(const BackendConfig& config)
      : config_(config), silence_(config.frames, 0.0f) {
    input_ptrs_.assign(config_.inputs.size(), silence_.data());
    for (const auto& n : config_.inputs) input_names_.push_back(config_.client_name + ":" + n);
    auto set = std::make_unique<NullOutputSet>();
    for (const auto& n : config_.outputs) {
      output_buffers_.emplace_back(config_.frames, 0.0f);
      set->buffers.push_back(output_buffers_.back().data());
      output_names_.push_back(config_.client_name + ":" + n);
    }
    outputs_.store(set.get(), std::memory_order_release);
    sets_.push_back(std::move(set));
  }

  ~NullBackend() override { stop(); }

  Result<void> start(AudioCallback& cb) override {
    std::lock_guard lock(mutex_);
    if (thread_.joinable())
      return make_error(Errc::kInvalidArgument, "null backend already started");
    running_.store(true, std::memory_order_release);
    try {
      thread_ = std::thread([this, cb_ptr = &cb] { run(*cb_ptr); });
    } catch (const std::system_error& e) {
      running_.store(false);
      return make_error(Errc::kIo,
                        std::string("cannot start the null backend's thread: ") + e.what());
    }
    return {};
  }

  void stop() override {
    std::lock_guard lock(mutex_);
    running_.store(false, std::memory_order_release);
    // The thread notices within one period (it sleeps to the next tick).
    if (thread_.joinable()) thread_.join();
    // Nothing reads the retired pointer arrays any more.
    if (sets_.size() > 1) sets_.erase(sets_.begin(), sets_.end() - 1);
    retired_at_.clear();
  }

  std::string kind() const override { return "null"; }
  std::string client_name() const override { return config_.client_name; }
  std::uint32_t sample_rate() const override { return config_.sample_rate; }
  std::uint32_t buffer_size() const override { return config_.frames; }
  std::uint64_t xruns() const override { return xruns_.load(std::memory_order_relaxed); }
  std::uint64_t cycles() const override { return cycles_.load(std::memory_order_relaxed); }

  Result<std::size_t> add_output(const std::string& name) override {
    std::lock_guard lock(mutex_);
    if (name.empty()) return make_error(Errc::kInvalidArgument, "a port name is empty");
    const std::string full = config_.client_name + ":" + name;
    for (const auto* names : {&input_names_, &output_names_}) {
      for (const auto& n : *names) {
        if (n == full) return make_error(Errc::kInvalidArgument, "port '" + full + "' exists");
      }
    }
    // All allocation here, on the control thread; the audio thread only
    // swaps to the new array at its next cycle. A removed port's index (and
    // buffer) is reused first.
    auto set = std::make_unique<NullOutputSet>(*sets_.back());
    std::size_t index = 0;
    while (index < output_names_.size() && !output_names_[index].empty()) ++index;
    if (index == output_names_.size()) {
      output_buffers_.emplace_back(config_.frames, 0.0f);  // moving inner vectors keeps their data
      set->buffers.push_back(output_buffers_.back().data());
      output_names_.push_back(full);
    } else {
      output_names_[index] = full;
    }
    publish(std::move(set));
    return index;
  }

  Result<void> remove_output(std::size_t index) override {
    std::lock_guard lock(mutex_);
    if (index < config_.outputs.size() || index >= output_names_.size() ||
        output_names_[index].empty())
      return make_error(Errc::kInvalidArgument,
                        "output " + std::to_string(index) + " was not added by add_output");
    // The buffer stays (a removed port's samples go nowhere); its name goes.
    output_names_[index].clear();
    publish(std::make_unique<NullOutputSet>(*sets_.back()));
    return {};
  }

  std::vector<std::string> input_ports() const override {
    std::lock_guard lock(mutex_);
    return input_names_;
  }
  std::vector<std::string> output_ports() const override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names;
    for (const auto& n : output_names_)
      if (!n.empty()) names.push_back(n);
    return names;
  }

 private:
  // Makes `set` current. Arrays retired two cycles ago or more are no longer
  // read by the audio thread (it loads the array once per cycle): freed, so
  // peers coming and going do not grow memory.
  void publish(std::unique_ptr<NullOutputSet> set) {
    outputs_.store(set.get(), std::memory_order_release);
    const std::uint64_t now = cycles_.load(std::memory_order_acquire);
    if (!sets_.empty()) retired_at_.push_back(now);
    sets_.push_back(std::move(set));
    if (!thread_.joinable()) {
      sets_.erase(sets_.begin(), sets_.end() - 1);
      retired_at_.clear();
      return;
    }
    std::size_t drop = 0;
    while (drop < retired_at_.size() && now >= retired_at_[drop] + 2) ++drop;
    sets_.erase(sets_.begin(), sets_.begin() + static_cast<std::ptrdiff_t>(drop));
    retired_at_.erase(retired_at_.begin(), retired_at_.begin() + static_cast<std::ptrdiff_t>(drop));
  }

  // Frames since the schedule's anchor -> ns, exact and without overflow for
  // any run length (whole seconds first, then the remainder).
  Nanos offset_ns(std::uint64_t frames) const noexcept {
    const std::uint64_t rate = config_.sample_rate;
    return static_cast<Nanos>(frames / rate) * 1'000'000'000 +
           static_cast<Nanos>((frames % rate) * 1'000'000'000 / rate);
  }

  // ---- the audio thread: no allocation, locks or logging in the loop ----
  void run(AudioCallback& cb) noexcept {
    if (config_.realtime) {
      // Refused (not root, JAMNET_NO_REALTIME=1): a normal thread still ticks.
      (void)platform::make_current_thread_realtime(config_.rt_priority);
    }
    const Nanos period = offset_ns(config_.frames);
    Nanos anchor = monotonic_ns();
    std::uint64_t since_anchor = 0;  // frames
    while (running_.load(std::memory_order_acquire)) {
      Nanos due = anchor + offset_ns(since_anchor);
      sleep_until_ns(due);
      if (!running_.load(std::memory_order_acquire)) break;
      const Nanos wake = monotonic_ns();
      if (wake - due > period) {
        // Too late to catch up honestly: count it and start the schedule
        // again from now rather than run the missed cycles back to back.
        xruns_.fetch_add(1, std::memory_order_relaxed);
        anchor = wake;
        since_anchor = 0;
        due = wake;
      }
      const NullOutputSet* outs = outputs_.load(std::memory_order_acquire);
      AudioBlock block;
      block.inputs = {input_ptrs_.data(), input_ptrs_.size()};
      block.outputs = {outs->buffers.data(), outs->buffers.size()};
      block.info.frame_time = frame_time_;
      block.info.start_ns = due;
      block.info.wake_ns = wake;
      block.info.period_ns = period;
      block.info.frames = config_.frames;
      block.info.sample_rate = config_.sample_rate;
      cb.process(block);
      cycles_.fetch_add(1, std::memory_order_relaxed);
      frame_time_ += config_.frames;
      since_anchor += config_.frames;
    }
  }

  const BackendConfig config_;
  const std::vector<float> silence_;      // every input reads this
  std::vector<const float*> input_ptrs_;  // fixed at open

  mutable std::mutex mutex_;  // control threads only; the audio thread never takes it
  std::vector<std::vector<float>> output_buffers_;
  std::vector<std::unique_ptr<NullOutputSet>> sets_;  // back() is current; the rest retired
  std::vector<std::uint64_t> retired_at_;             // cycles_ when sets_[i] was retired
  std::atomic<const NullOutputSet*> outputs_{nullptr};
  std::vector<std::string> input_names_, output_names_;
  std::thread thread_;

  std::atomic<bool> running_{false};
  std::atomic<std::uint64_t> cycles_{0};
  std::atomic<std::uint64_t> xruns_{0};
  std::uint64_t frame_time_ = 0;  // audio thread (and across restarts: joined in between)
};

}  // namespace

Result<std::unique_ptr<AudioBackend>> open_null_backend(const BackendConfig& config) {
  if (config.sample_rate == 0) return make_error(Errc::kInvalidArgument, "sample rate is 0");
  if (config.frames == 0 || config.frames > kMaxBackendFrames) {
    return make_error(Errc::kInvalidArgument, "period of " + std::to_string(config.frames) +
                                                  " frames is out of range (1.." +
                                                  std::to_string(kMaxBackendFrames) + ")");
  }
  if (auto ok = check_port_names(config); !ok) return std::unexpected(ok.error());
  return std::unique_ptr<AudioBackend>(new NullBackend(config));
}

}  // namespace jamnet::engine::io
