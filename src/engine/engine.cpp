#include "jamnet/engine/engine.hpp"

#include <algorithm>
#include <cmath>

#include "jamnet/core/rt_scope.hpp"
#include "jamnet/engine/midi_schedule.hpp"

namespace jamnet::engine {

namespace {

// Gains move to their target within one block, linearly: no zipper noise, and
// a new value is fully there by the next cycle.
void ramp(float* out, std::uint32_t frames, float from, float to) noexcept {
  if (from == to) {
    if (to == 1.0f) return;
    for (std::uint32_t i = 0; i < frames; ++i) out[i] *= to;
    return;
  }
  const float step = (to - from) / static_cast<float>(frames);
  for (std::uint32_t i = 0; i < frames; ++i) out[i] *= from + step * static_cast<float>(i + 1);
}

Nanos nominal_period(const io::AudioBackend& b) {
  const auto rate = b.sample_rate();
  return rate == 0 ? 0 : static_cast<Nanos>(b.buffer_size()) * 1'000'000'000 / rate;
}

}  // namespace

Engine::Engine(std::unique_ptr<io::AudioBackend> backend, const EngineConfig& config)
    : backend_(std::move(backend)),
      config_(config),
      queues_(config.priority_capacity, config.normal_capacity),
      telemetry_(nominal_period(*backend_), config.telemetry_window_ns),
      click_(backend_->sample_rate()) {
  gain_target_.fill(1.0f);
  gain_now_.fill(1.0f);
  for (auto& p : params_) p.store(0.0f, std::memory_order_relaxed);
  click_.set_tempo(config.bpm);
  click_.set_meter(config.beats_per_bar);
  click_.set_enabled(config.click);
}

Engine::~Engine() {
  stop();
}

Result<void> Engine::start(AudioProcessor* processor) {
  if (started_) return make_error(Errc::kInvalidArgument, "engine already started");
  processor_ = processor;
  // The largest block any backend hands us: JACK may change its buffer size
  // later, up to 8192 frames; keep room for that, never resize on the cycle.
  automation_buf_.assign(std::max<std::size_t>(8192, backend_->buffer_size()), 1.0f);
  auto r = backend_->start(*this);
  if (!r) return r;
  started_ = true;
  return {};
}

void Engine::stop() {
  if (!started_) return;
  backend_->stop();
  started_ = false;
}

EngineCounters Engine::counters() const noexcept {
  EngineCounters c;
  c.cycles = cycles_.load(std::memory_order_relaxed);
  c.notes = notes_.load(std::memory_order_relaxed);
  c.late_notes = late_notes_.load(std::memory_order_relaxed);
  c.live_params = live_params_.load(std::memory_order_relaxed);
  c.normal = normal_.load(std::memory_order_relaxed);
  c.coalesced = coalesced_.load(std::memory_order_relaxed);
  c.state_syncs = state_syncs_.load(std::memory_order_relaxed);
  return c;
}

float Engine::live_param(std::uint16_t id) const noexcept {
  return id < kMaxParams ? params_[id].load(std::memory_order_relaxed) : 0.0f;
}

void Engine::set_master_automation(std::shared_ptr<const AutomationLane> lane,
                                   LoopRegion loop) noexcept {
  auto slot = std::make_unique<AutomationSlot>();
  slot->lane = lane.get();
  slot->loop = loop;
  automation_.store(slot.get(), std::memory_order_release);
  // Old lanes and slots stay alive: the audio thread may still be reading one.
  if (lane) lanes_keepalive_.push_back(std::move(lane));
  slots_keepalive_.push_back(std::move(slot));
}

void Engine::apply(const Command& c) noexcept {
  switch (c.kind) {
    case CommandKind::kNoteOn:
    case CommandKind::kNoteOff:
    case CommandKind::kHit: {
      const auto& info = current_->info;
      bool late = false;
      const std::uint32_t offset =
          c.at_ns == 0
              ? 0
              : sample_offset_for(c.at_ns, info.start_ns, info.sample_rate, info.frames, &late);
      if (late) late_notes_.fetch_add(1, std::memory_order_relaxed);
      notes_.fetch_add(1, std::memory_order_relaxed);
      if (processor_) processor_->on_command(c, offset);
      break;
    }
    case CommandKind::kLiveParam:
      if (c.target < kMaxParams) params_[c.target].store(c.value, std::memory_order_relaxed);
      live_params_.fetch_add(1, std::memory_order_relaxed);
      if (processor_) processor_->on_command(c, 0);
      break;
    case CommandKind::kGain:
      if (c.target == kMasterTarget)
        master_target_ = c.value;
      else if (c.target < kMaxGains)
        gain_target_[c.target] = c.value;
      break;
    case CommandKind::kClickOn:
      click_.set_enabled(c.value != 0.0f);
      break;
    case CommandKind::kTempo:
      if (c.value > 0.0f) click_.set_tempo(c.value);
      break;
    case CommandKind::kStateSync:
      state_syncs_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      if (processor_) processor_->on_command(c, 0);
      break;
  }
}

void Engine::process(const io::AudioBlock& block) noexcept {
  const rt::Scope scope(rt::Work::kAudioCycle);
  const Nanos wake = block.info.wake_ns != 0 ? block.info.wake_ns : monotonic_ns();
  const std::uint32_t frames = block.info.frames;
  current_ = &block;

  const DrainStats drained =
      queues_.drain(*this, config_.budget, wake, &telemetry_.priority_latency());
  normal_.fetch_add(drained.normal, std::memory_order_relaxed);
  coalesced_.fetch_add(drained.coalesced, std::memory_order_relaxed);

  if (processor_) {
    processor_->process(block);
  } else {
    for (float* out : block.outputs) std::fill(out, out + frames, 0.0f);
  }

  for (std::size_t i = 0; i < block.outputs.size(); ++i) {
    if (i < kMaxGains) {
      ramp(block.outputs[i], frames, gain_now_[i], gain_target_[i]);
      gain_now_[i] = gain_target_[i];
    }
  }

  // Master: the command gain times the automation lane, sample by sample.
  const AutomationSlot* slot = automation_.load(std::memory_order_acquire);
  const bool automated =
      slot != nullptr && slot->lane != nullptr && frames <= automation_buf_.size();
  if (automated) {
    if (cursor_lane_ != slot->lane) {
      cursor_.set_lane(slot->lane);
      cursor_lane_ = slot->lane;
    }
    std::span<float> env(automation_buf_.data(), frames);
    cursor_.fill(timeline_frame_, env, slot->loop);
    const float step = (master_target_ - master_now_) / static_cast<float>(frames);
    for (float* out : block.outputs) {
      for (std::uint32_t f = 0; f < frames; ++f)
        out[f] *= env[f] * (master_now_ + step * static_cast<float>(f + 1));
    }
  } else {
    for (float* out : block.outputs) ramp(out, frames, master_now_, master_target_);
  }
  master_now_ = master_target_;

  if (config_.click_output && *config_.click_output < block.outputs.size()) {
    click_.render(timeline_frame_, std::span<float>(block.outputs[*config_.click_output], frames),
                  true);
  }
  timeline_frame_ += frames;
  current_ = nullptr;
  cycles_.fetch_add(1, std::memory_order_relaxed);
  telemetry_.record_cycle(wake, monotonic_ns(), drained, queues_.priority_depth(),
                          queues_.normal_depth(), backend_->xruns());
}

}  // namespace jamnet::engine
