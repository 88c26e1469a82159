// The null backend: audio cycles from a timer thread, for machines and tests
// without a sound server. Inputs are silence, outputs are discarded.
//
// A thread sleeps to absolute deadlines (clock_nanosleep, so pacing never
// accumulates drift) every config.frames / config.sample_rate and runs one
// cycle. With config.realtime it asks for SCHED_FIFO at config.rt_priority
// (falls back to normal scheduling, silently, when refused or when
// JAMNET_NO_REALTIME=1). A cycle that wakes more than a period late counts as
// an xrun and the schedule restarts from that wake-up instead of bursting
// through the missed cycles; frame_time stays contiguous (it counts frames
// processed, not wall time).
#pragma once

#include <memory>

#include "jamnet/core/result.hpp"
#include "jamnet/engine/io/audio_backend.hpp"

namespace jamnet::engine::io {

// Uses config.client_name, inputs, outputs (ports are reported as
// "<client_name>:<name>", as JACK would), sample_rate, frames, realtime and
// rt_priority. kInvalidArgument for a zero rate or period.
Result<std::unique_ptr<AudioBackend>> open_null_backend(const BackendConfig& config);

}  // namespace jamnet::engine::io
