// The two concealment baselines PNBTR is measured against, through the same
// Predictor interface: silence, and repetition of the last block.
#include <algorithm>
#include <vector>

#include "jamnet/media/pnbtr/predictor.hpp"

namespace jamnet::media::pnbtr {
namespace {

class ZeroPredictor final : public Predictor {
 public:
  std::string_view name() const noexcept override { return "zero"; }
  void reset() noexcept override {}
  void observe(std::span<const float>) noexcept override {}
  void predict(std::span<float> out) noexcept override { std::fill(out.begin(), out.end(), 0.0f); }
  void peek(std::span<float> out) noexcept override { std::fill(out.begin(), out.end(), 0.0f); }
};

// Repeats the last observed block. When the gap is asked for in blocks of a
// different size, it repeats the last max_block samples cyclically instead.
class RepeatPredictor final : public Predictor {
 public:
  explicit RepeatPredictor(int max_block)
      : max_block_(std::max(max_block, 1)), ring_(static_cast<std::size_t>(max_block_), 0.0f) {}

  std::string_view name() const noexcept override { return "repeat"; }

  void reset() noexcept override {
    std::fill(ring_.begin(), ring_.end(), 0.0f);
    pos_ = 0;
    count_ = 0;
    last_block_ = 0;
    in_gap_ = false;
  }

  void observe(std::span<const float> block) noexcept override {
    in_gap_ = false;
    const int n = static_cast<int>(block.size());
    const int skip = std::max(n - max_block_, 0);
    for (int i = skip; i < n; ++i) {
      ring_[pos_] = block[i];
      if (++pos_ == max_block_) pos_ = 0;
    }
    count_ = std::min(count_ + n, max_block_);
    last_block_ = std::min(n, max_block_);
  }

  void predict(std::span<float> out) noexcept override { phase_ = fill(out); }

  void peek(std::span<float> out) noexcept override { fill(out); }

 private:
  // Writes the continuation from the current phase; returns the phase after it.
  int fill(std::span<float> out) noexcept {
    if (!in_gap_) {
      in_gap_ = true;
      const int asked = static_cast<int>(out.size());
      period_ = asked == last_block_ ? last_block_ : count_;
      // The repeated span ends where the history ends.
      start_ = pos_ - period_;
      if (start_ < 0) start_ += max_block_;
      phase_ = 0;
    }
    if (period_ <= 0) {
      std::fill(out.begin(), out.end(), 0.0f);
      return 0;
    }
    int phase = phase_;
    for (float& y : out) {
      int i = start_ + phase;
      if (i >= max_block_) i -= max_block_;
      y = ring_[i];
      if (++phase == period_) phase = 0;
    }
    return phase;
  }

  int max_block_;
  std::vector<float> ring_;  // the last max_block_ observed samples
  int pos_ = 0;              // next write
  int count_ = 0;            // valid samples in ring_
  int last_block_ = 0;
  bool in_gap_ = false;
  int period_ = 0;
  int start_ = 0;
  int phase_ = 0;
};

}  // namespace

std::unique_ptr<Predictor> make_zero_predictor() {
  return std::make_unique<ZeroPredictor>();
}

std::unique_ptr<Predictor> make_repeat_predictor(int max_block) {
  return std::make_unique<RepeatPredictor>(max_block);
}

}  // namespace jamnet::media::pnbtr
