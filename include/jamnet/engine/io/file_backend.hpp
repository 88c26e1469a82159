// The file backend: audio cycles from a file (or silence) into a file, as
// fast as the CPU goes. For offline processing, tests and benchmarks: the
// same engine callback that runs under JACK runs here without a sound server
// and without real time.
//
// - Input: config.input_path through libsndfile (WAV, FLAC, ...). A mono file
//   feeds every input; an N-channel file feeds input i from channel i; any
//   other channel count is an error. Empty: silence, and config.max_frames
//   says how long. The file's rate must equal config.sample_rate (no
//   resampling here).
// - Output: config.output_path, one channel per output: ".wav" = 32-bit float
//   WAV (bit-exact), ".flac" = 24-bit FLAC. Empty: outputs are discarded.
// - Length: config.max_frames when non-zero (input past its end is silence),
//   else the input's length. The last cycle may be shorter than
//   config.frames, so the output has exactly that many frames.
// - Time: a virtual clock starting at 0: CycleInfo::start_ns = wake_ns =
//   frame_time * 1e9 / rate. Nothing waits for it.
//
// start() returns at once; a worker thread runs the cycles and does the file
// I/O between them (in chunks of several cycles). finished() turns true when
// every frame has been processed and the output file is closed (or when a
// file error stopped the run: failure() then says what). stop() ends early,
// closing the output with what was written, and joins. One run per backend:
// start() after a run and add_output() after start() are kUnsupported.
#pragma once

#include <memory>

#include "jamnet/core/result.hpp"
#include "jamnet/engine/io/audio_backend.hpp"

namespace jamnet::engine::io {

// Opens and checks the input now (kNotFound: no such file; kInvalidArgument:
// channel count or rate that does not fit, no input and no max_frames, an
// output name that is neither .wav nor .flac). The output file is created by
// start(), once the outputs are known.
Result<std::unique_ptr<AudioBackend>> open_file_backend(const BackendConfig& config);

}  // namespace jamnet::engine::io
