#include "jamnet/engine/automation.hpp"

#include <algorithm>
#include <utility>

namespace jamnet::engine {

AutomationLane::AutomationLane(std::vector<AutomationPoint> points, float default_value)
    : points_(std::move(points)), default_value_(default_value) {
  // Stable, so among points on one frame the input order survives and the
  // last one given can win below.
  std::stable_sort(
      points_.begin(), points_.end(),
      [](const AutomationPoint& a, const AutomationPoint& b) { return a.frame < b.frame; });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < points_.size(); ++i) {
    if (kept > 0 && points_[kept - 1].frame == points_[i].frame) {
      points_[kept - 1] = points_[i];
    } else {
      points_[kept++] = points_[i];
    }
  }
  points_.resize(kept);
}

float AutomationLane::interpolate(const AutomationPoint& a, const AutomationPoint& b,
                                  std::uint64_t frame) noexcept {
  if (a.curve == Curve::kStep || frame <= a.frame || b.frame <= a.frame) return a.value;
  if (frame >= b.frame) return b.value;
  // Double: frame distances may exceed float's 24-bit mantissa on long sessions.
  const double t = static_cast<double>(frame - a.frame) / static_cast<double>(b.frame - a.frame);
  const double va = a.value;
  return static_cast<float>(va + (static_cast<double>(b.value) - va) * t);
}

std::size_t AutomationLane::segment_index(std::uint64_t frame, std::size_t* probes) const noexcept {
  // Upper bound by hand (not std::upper_bound) so the probes can be counted.
  std::size_t lo = 0;
  std::size_t count = points_.size();
  std::size_t n = 0;
  while (count > 0) {
    const std::size_t half = count / 2;
    ++n;
    if (points_[lo + half].frame <= frame) {
      lo += half + 1;
      count -= half + 1;
    } else {
      count = half;
    }
  }
  if (probes != nullptr) *probes = n;
  return lo == 0 ? kBeforeFirst : lo - 1;
}

float AutomationLane::value_in_segment(std::size_t index, std::uint64_t frame) const noexcept {
  if (points_.empty()) return default_value_;
  if (index == kBeforeFirst) return points_.front().value;
  if (index + 1 >= points_.size()) return points_.back().value;
  return interpolate(points_[index], points_[index + 1], frame);
}

float AutomationLane::value_at(std::uint64_t frame) const noexcept {
  return value_in_segment(segment_index(frame), frame);
}

void AutomationCursor::set_lane(const AutomationLane* lane) noexcept {
  lane_ = lane;
  valid_ = false;
  next_ = 0;
}

void AutomationCursor::seek(std::uint64_t frame, std::size_t from) noexcept {
  // Binary search of the first point after `frame` among points [from, n).
  const auto pts = lane_->points();
  std::size_t lo = from;
  std::size_t count = pts.size() - from;
  while (count > 0) {
    const std::size_t half = count / 2;
    if (pts[lo + half].frame <= frame) {
      lo += half + 1;
      count -= half + 1;
    } else {
      count = half;
    }
  }
  next_ = lo;
  ++searches_;
}

float AutomationCursor::next(std::uint64_t frame) noexcept {
  if (lane_ == nullptr) return 0.0f;
  const auto pts = lane_->points();
  if (pts.empty()) return lane_->default_value();

  if (!valid_ || (next_ > 0 && pts[next_ - 1].frame > frame)) {
    // First use or the playhead went back before the current segment (a loop
    // wrap or a seek): nothing before it is known, search everything.
    seek(frame, 0);
    valid_ = true;
  } else {
    std::size_t steps = 0;
    while (next_ < pts.size() && pts[next_].frame <= frame) {
      if (steps == kMaxLinearSteps) {
        seek(frame, next_);  // far ahead: everything before next_ is behind us
        break;
      }
      ++next_;
      ++steps;
    }
    linear_steps_ += steps;
  }
  return lane_->value_in_segment(next_ == 0 ? AutomationLane::kBeforeFirst : next_ - 1, frame);
}

std::uint64_t AutomationCursor::fill(std::uint64_t start_frame, std::span<float> out,
                                     LoopRegion loop) noexcept {
  const bool looping = loop.active() && start_frame < loop.end;
  std::uint64_t playhead = start_frame;
  for (float& v : out) {
    v = next(playhead);
    ++playhead;
    if (looping && playhead == loop.end) playhead = loop.start;
  }
  return playhead;
}

}  // namespace jamnet::engine
