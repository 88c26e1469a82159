// PNBTR: predicts the audio of blocks that never arrived (docs/pnbtr.md).
// A Predictor continues one mono signal from its history; the Concealer
// (concealer.hpp) decides when to ask it, crossfades back into real audio and
// fades long gaps to silence. Other predictors (GPU, learned models) plug in
// by implementing this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace jamnet::media::pnbtr {

class Predictor {
 public:
  virtual ~Predictor() = default;
  virtual std::string_view name() const noexcept = 0;
  // Forget all history.
  virtual void reset() noexcept = 0;
  // A real block (received or recovered), in order. Real-time safe.
  virtual void observe(std::span<const float> block) noexcept = 0;
  // The samples that follow everything observed and predicted so far: the
  // first call after observe() starts a gap, later calls continue it.
  // Real-time safe: no allocation, no locks; out.size() <= max_block given at
  // construction.
  virtual void predict(std::span<float> out) noexcept = 0;
  // The samples the next predict() would return, without moving on: the
  // Concealer crossfades them into the first real block after a gap, which
  // covers the same time, so they must not enter the history. Real-time safe;
  // out.size() <= max_block.
  virtual void peek(std::span<float> out) noexcept = 0;
};

// Burg-method linear prediction plus pitch-period extension (docs/pnbtr.md).
struct LpcConfig {
  int max_block = 512;   // largest block predict() is asked for
  int history = 4608;    // samples kept (96 ms; raised to what the fit and the search need)
  int order = 64;        // LPC order
  int fit_window = 384;  // samples the Burg fit uses (the newest, before the backtest block)
  // Repetition lags searched for the pitch continuation, in samples: 1200 Hz
  // down to 12 Hz at 48 kHz. Lags beyond one pitch period also catch the
  // common period of a chord and repeated figures.
  int min_pitch = 40;
  int max_pitch = 4000;
};
std::unique_ptr<Predictor> make_lpc_predictor(const LpcConfig& config = {});

// Baselines for comparison, through the same interface.
std::unique_ptr<Predictor> make_zero_predictor();  // silence
// Repeats the last observed block; asked for blocks of another size, repeats
// the last max_block samples cyclically.
std::unique_ptr<Predictor> make_repeat_predictor(int max_block);

}  // namespace jamnet::media::pnbtr
