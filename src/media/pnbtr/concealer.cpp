#include "jamnet/media/pnbtr/concealer.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace jamnet::media::pnbtr {

namespace {

ConcealerConfig sanitise(ConcealerConfig c) {
  c.max_block = std::max(c.max_block, 1);
  c.crossfade = std::clamp(c.crossfade, 0, c.max_block);
  c.min_crossfade = std::clamp(c.min_crossfade, 0, c.crossfade);
  if (!(c.splice_step > 0)) c.splice_step = 0;  // 0 (or NaN): always the full crossfade
  c.fade_after = std::max(c.fade_after, 0);
  c.fade_length = std::max(c.fade_length, 0);
  return c;
}

// Raised cosine from 0 (before i = 0) to 1 (after i = n - 1), never reaching
// either end inside the ramp: the first and last samples already move.
double rise(int i, int n) {
  return 0.5 - 0.5 * std::cos(std::numbers::pi * (i + 1) / (n + 1));
}

}  // namespace

Concealer::Concealer(std::unique_ptr<Predictor> predictor, const ConcealerConfig& config)
    : predictor_(std::move(predictor)), config_(sanitise(config)) {
  scratch_.assign(static_cast<std::size_t>(std::max(config_.crossfade, 1)), 0.0f);
  // One raised-cosine ramp per length 1..crossfade, stored back to back.
  const int c = config_.crossfade;
  xfade_.assign(static_cast<std::size_t>(c) * (c + 1) / 2, 0.0f);
  for (int len = 1; len <= c; ++len) {
    float* w = xfade_.data() + static_cast<std::size_t>(len) * (len - 1) / 2;
    for (int i = 0; i < len; ++i) w[i] = static_cast<float>(rise(i, len));
  }
  fade_.assign(static_cast<std::size_t>(config_.fade_length), 0.0f);
  for (int i = 0; i < config_.fade_length; ++i) {
    fade_[i] = static_cast<float>(1.0 - rise(i, config_.fade_length));
  }
}

float Concealer::gain_at(std::int64_t n) const noexcept {
  if (n < config_.fade_after) return 1.0f;
  n -= config_.fade_after;
  if (n < config_.fade_length) return fade_[static_cast<std::size_t>(n)];
  return 0.0f;
}

// The shortest crossfade (between min_crossfade and xf_max) that keeps the
// splice smooth. A raised cosine over L samples bridging a mismatch d between
// prediction and real signal adds at most about pi/2 * d / (L + 1) to any
// sample-to-sample step; that is held to splice_step times the real block's
// own RMS step. A short crossfade keeps the prediction's error out of the
// real audio; a long one is only needed where the mismatch is big.
int Concealer::crossfade_length(std::span<const float> in, int xf_max) const noexcept {
  if (xf_max <= 0) return 0;
  const int min_len = std::min(config_.min_crossfade, xf_max);
  if (config_.splice_step <= 0) return xf_max;
  const int n = static_cast<int>(in.size());
  double steps = 0;
  for (int i = 1; i < n; ++i) {
    const double d = static_cast<double>(in[i]) - in[i - 1];
    steps += d * d;
  }
  const double step = n > 1 ? std::sqrt(steps / (n - 1)) : 0.0;
  const double mismatch = std::abs(static_cast<double>(scratch_[0]) - in[0]);
  const double want =
      std::numbers::pi / 2 * mismatch / std::max(config_.splice_step * step, 1e-30) - 1.0;
  if (!(want < xf_max)) return xf_max;
  return std::clamp(static_cast<int>(std::ceil(want)), min_len, xf_max);
}

void Concealer::conceal(float* out, int n) noexcept {
  const std::int64_t silent_from =
      static_cast<std::int64_t>(config_.fade_after) + config_.fade_length;
  int done = 0;
  while (done < n) {
    const int chunk = std::min(n - done, config_.max_block);
    if (gap_samples_ >= silent_from) {
      // Faded out: the predictor need not run any more.
      std::fill(out + done, out + n, 0.0f);
      gap_samples_ += n - done;
      return;
    }
    predictor_->predict(std::span<float>(out + done, static_cast<std::size_t>(chunk)));
    if (gap_samples_ + chunk > config_.fade_after) {
      for (int i = 0; i < chunk; ++i) out[done + i] *= gain_at(gap_samples_ + i);
    }
    gap_samples_ += chunk;
    done += chunk;
  }
}

void Concealer::peek(float* out, int n) noexcept {
  if (n <= 0) return;
  if (gap_samples_ >= static_cast<std::int64_t>(config_.fade_after) + config_.fade_length) {
    std::fill(out, out + n, 0.0f);
    return;
  }
  predictor_->peek(std::span<float>(out, static_cast<std::size_t>(n)));
  for (int i = 0; i < n; ++i) out[i] *= gain_at(gap_samples_ + i);
}

void Concealer::good(std::span<const float> in, std::span<float> out) noexcept {
  const int n = static_cast<int>(std::min(in.size(), out.size()));
  ++stats_.blocks;
  if (!in_gap_) {
    predictor_->observe(in.first(static_cast<std::size_t>(n)));
    if (out.data() != in.data()) std::copy(in.begin(), in.begin() + n, out.begin());
    return;
  }
  // First block after a gap: the prediction runs on into this block and is
  // crossfaded into the real signal. It is peeked at (it covers the same time
  // as this block, so it must not enter the predictor's history) before
  // observe(), which ends the predictor's gap.
  const int xf_max = std::min(config_.crossfade, n);
  peek(scratch_.data(), xf_max);
  predictor_->observe(in.first(static_cast<std::size_t>(n)));
  const int xf = crossfade_length(in.first(static_cast<std::size_t>(n)), xf_max);
  const float* w = xfade_.data() + static_cast<std::size_t>(xf) * (xf - 1) / 2;
  for (int i = 0; i < n; ++i) {
    const float x = in[i];
    out[i] = i < xf ? scratch_[i] + w[i] * (x - scratch_[i]) : x;
  }
  in_gap_ = false;
  gap_samples_ = 0;
}

void Concealer::lost(std::span<float> out) noexcept {
  ++stats_.blocks;
  ++stats_.concealed_blocks;
  if (!in_gap_) {
    in_gap_ = true;
    gap_samples_ = 0;
    ++stats_.gaps;
  }
  const std::int64_t silent_from =
      static_cast<std::int64_t>(config_.fade_after) + config_.fade_length;
  if (gap_samples_ >= silent_from) ++stats_.silent_blocks;
  conceal(out.data(), static_cast<int>(out.size()));
}

}  // namespace jamnet::media::pnbtr
