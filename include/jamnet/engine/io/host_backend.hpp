// The host-driven backend: the application's own audio thread drives the
// cycles (a DAW plugin's process(), a speech pipeline). Each call to
// process() is one cycle of any size from 1 to config.frames frames (the
// largest block the host will use), varying from call to call.
//
// Inputs and outputs are the host's buffers, non-interleaved; an input
// pointer may be null (silence). Outputs are fixed at open (config.outputs):
// add_output/remove_output are kUnsupported, so an AudioBridge on this
// backend mixes every source into them (AudioBridgeConfig::mix_outputs).
//
// process() is real-time safe (no allocation, lock, log or syscall beyond
// reading the clock when host_time is 0). stop() waits for a process() that
// is running to return; after it, process() only writes silence.
#pragma once

#include <memory>

#include "jamnet/core/result.hpp"
#include "jamnet/engine/io/audio_backend.hpp"

namespace jamnet::engine::io {

class HostBackend final : public AudioBackend {
 public:
  // Uses client_name, inputs, outputs, sample_rate and frames (the largest
  // block, 1..65536). kInvalidArgument for a zero rate or frames.
  static Result<std::unique_ptr<HostBackend>> open(const BackendConfig& config);
  ~HostBackend() override;

  // One cycle, from the host's audio thread. inputs: inputs().size()
  // pointers (null: silence); outputs: outputs().size() pointers, every
  // frame written. host_time: CLOCK_MONOTONIC ns of the block's first frame
  // (0: now). False (outputs silent, counted) when not started or frames is
  // 0 or larger than the configured largest block.
  bool process(const float* const* inputs, float* const* outputs, std::uint32_t frames,
               Nanos host_time = 0) noexcept;
  std::uint64_t refused_blocks() const noexcept;  // process() calls answered with silence

  Result<void> start(AudioCallback& cb) override;
  void stop() override;
  std::string kind() const override { return "host"; }
  std::string client_name() const override;
  std::uint32_t sample_rate() const override;
  std::uint32_t buffer_size() const override;  // the largest block
  std::uint64_t xruns() const override { return 0; }
  std::uint64_t cycles() const override;
  Result<std::size_t> add_output(const std::string& name) override;
  Result<void> remove_output(std::size_t index) override;
  std::vector<std::string> input_ports() const override;
  std::vector<std::string> output_ports() const override;

 private:
  explicit HostBackend(const BackendConfig& config);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamnet::engine::io
