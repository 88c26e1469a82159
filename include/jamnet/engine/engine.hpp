// Engine: the real-time audio cycle. An AudioBackend (JACK, null, file) calls
// Engine::process once per period; the engine drains the command queues
// (priority first, within a count and time budget), runs the application's
// AudioProcessor (for a peer: capture to the network, network to playback),
// applies per-output gains (ramped, no zipper noise) and the master automation
// lane, renders the click, and records telemetry, published once a second.
//
// The cycle never allocates, locks, logs or blocks (source 003 "Steady Pulse").
// Each cycle is an rt::Scope (core/rt_scope.hpp): a test traps malloc, free
// and locks inside it (tests/engine/engine_rt_safety_test.cpp).
//
// Threads: start/stop/push/telemetry/set_* from control threads (push from any
// number of them: the queues are multi-producer); telemetry() from one reader.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/engine/automation.hpp"
#include "jamnet/engine/click_track.hpp"
#include "jamnet/engine/command.hpp"
#include "jamnet/engine/io/audio_backend.hpp"
#include "jamnet/engine/telemetry.hpp"

namespace jamnet::engine {

// The application's part of the cycle. Runs on the audio thread: real-time safe.
class AudioProcessor {
 public:
  virtual ~AudioProcessor() = default;
  // Write every output frame (the engine applies gains and the click after).
  virtual void process(const io::AudioBlock& block) noexcept = 0;
  // A note, hit or live parameter, at its sample offset in this cycle's block
  // (from the command's at_ns; 0 when it was due already). Called before process().
  virtual void on_command(const Command& c, std::uint32_t sample_offset) noexcept {
    (void)c;
    (void)sample_offset;
  }
};

struct EngineConfig {
  DrainBudget budget;
  Nanos telemetry_window_ns = 1'000'000'000;
  bool click = false;  // click track on at start (kClickOn toggles it)
  double bpm = 120.0;
  int beats_per_bar = 4;
  std::optional<std::size_t> click_output;  // output index the click is added to; none: no click
  std::size_t priority_capacity = 8192;
  std::size_t normal_capacity = 16384;
};

struct EngineCounters {
  std::uint64_t cycles = 0;
  std::uint64_t notes = 0;        // note on/off and hits handed to the processor
  std::uint64_t late_notes = 0;   // ... whose at_ns was before the cycle they were drained in
  std::uint64_t live_params = 0;  // live parameter moves applied
  std::uint64_t normal = 0;       // normal commands applied (after coalescing)
  std::uint64_t coalesced = 0;
  std::uint64_t state_syncs = 0;
};

class Engine final : public io::AudioCallback, private CommandSink {
 public:
  static constexpr std::size_t kMaxGains = 256;   // per-output gain slots (kGain targets)
  static constexpr std::size_t kMaxParams = 256;  // live parameter slots (kLiveParam targets)
  static constexpr std::uint16_t kMasterTarget = 0xFFFF;

  Engine(std::unique_ptr<io::AudioBackend> backend, const EngineConfig& config = {});
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts the backend's cycles with `processor` (may be null: silence + click).
  // The processor must outlive stop().
  Result<void> start(AudioProcessor* processor);
  void stop();  // idempotent; process() is not running when it returns

  // Control threads: false when the queue is full (counted in the telemetry).
  bool push(const Command& c) noexcept { return queues_.push(c); }
  // The last published telemetry window (seq 0: none yet). One reader thread.
  const TelemetrySnapshot& telemetry() noexcept { return telemetry_.latest(); }
  // The whole-run histograms start again (from the next cycle): a benchmark
  // measures a window without the start-up in it.
  void reset_telemetry_totals() noexcept { telemetry_.reset_totals(); }
  EngineCounters counters() const noexcept;
  float live_param(std::uint16_t id) const noexcept;  // last applied value (any thread)

  // Master gain automation over the engine's frame timeline (frames since
  // start), with an optional loop. The lane is kept alive until the engine is
  // destroyed; switching lanes is lock-free for the audio thread.
  void set_master_automation(std::shared_ptr<const AutomationLane> lane,
                             LoopRegion loop = {}) noexcept;

  io::AudioBackend& backend() noexcept { return *backend_; }

  // io::AudioCallback (the backend's audio thread).
  void process(const io::AudioBlock& block) noexcept override;

 private:
  void apply(const Command& c) noexcept override;  // CommandSink (audio thread)

  std::unique_ptr<io::AudioBackend> backend_;
  EngineConfig config_;
  CommandQueues queues_;
  TelemetryRecorder telemetry_;
  ClickTrack click_;
  AudioProcessor* processor_ = nullptr;
  bool started_ = false;

  // audio-thread state
  const io::AudioBlock* current_ = nullptr;  // the block being processed (for on_command offsets)
  std::array<float, kMaxGains> gain_target_{};
  std::array<float, kMaxGains> gain_now_{};
  float master_target_ = 1.0f, master_now_ = 1.0f;
  std::uint64_t timeline_frame_ = 0;
  std::vector<float> automation_buf_;  // sized at start for the largest block
  AutomationCursor cursor_;
  const AutomationLane* cursor_lane_ = nullptr;

  // published by the audio thread
  std::array<std::atomic<float>, kMaxParams> params_{};
  std::atomic<std::uint64_t> cycles_{0}, notes_{0}, late_notes_{0}, live_params_{0}, normal_{0},
      coalesced_{0}, state_syncs_{0};

  // automation hand-over: control thread stores, audio thread loads
  struct AutomationSlot {
    const AutomationLane* lane = nullptr;
    LoopRegion loop;
  };
  std::atomic<const AutomationSlot*> automation_{nullptr};
  std::vector<std::shared_ptr<const AutomationLane>> lanes_keepalive_;  // control thread
  std::vector<std::unique_ptr<AutomationSlot>> slots_keepalive_;        // control thread
};

}  // namespace jamnet::engine
