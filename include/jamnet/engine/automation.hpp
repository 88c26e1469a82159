// Automation lanes: a parameter's value over the timeline as breakpoints, read
// on the audio thread once per sample or per block.
//
// 003 "Steady Pulse" phase 4: the lookup used to scan every point per tick, so
// a dense lane cost O(n) each cycle. Here a lane is an immutable sorted array
// (built on a control thread, handed to the audio thread whole, e.g. through a
// TripleBuffer of pointers) with an O(log n) binary-search value_at, and the
// audio thread reads it through an AutomationCursor that remembers where it
// was, so a playhead moving forward costs amortised O(1) per sample. Loops,
// seeks and lanes swapped under the cursor fall back to the binary search.
//
// Interpolation is that of the point a segment starts at: kLinear ramps to the
// next point's value, kStep holds its own value until the next point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace jamnet::engine {

enum class Curve : std::uint8_t {
  kLinear,  // ramp from this point's value to the next point's value
  kStep,    // hold this point's value until the next point
};

struct AutomationPoint {
  std::uint64_t frame = 0;
  float value = 0.0f;
  Curve curve = Curve::kLinear;  // interpolation from this point to the next
};

// A loop on the timeline: when the playhead reaches `end` (exclusive) it jumps
// back to `start`. A playhead already at or past `end` is not looped (a DAW
// only loops a playhead that crosses the end). Ignored unless enabled and
// start < end.
struct LoopRegion {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  bool enabled = false;

  constexpr bool active() const noexcept { return enabled && start < end; }
};

class AutomationLane {
 public:
  // "No point at or before this frame": the segment index before the first point.
  static constexpr std::size_t kBeforeFirst = static_cast<std::size_t>(-1);

  // An empty lane: value_at is `default_value` everywhere.
  explicit AutomationLane(float default_value = 0.0f) : default_value_(default_value) {}
  // Sorts the points by frame; of several points on one frame the last given
  // wins. Allocates: build lanes on a control thread.
  explicit AutomationLane(std::vector<AutomationPoint> points, float default_value = 0.0f);

  // O(log n). Before the first point: the first value; from the last point
  // on: the last value; empty lane: default_value().
  float value_at(std::uint64_t frame) const noexcept;

  // Index of the last point with point.frame <= frame, or kBeforeFirst. A
  // plain binary search; `probes` (optional) receives the number of point
  // comparisons it made, so tests can check the O(log n) bound without clocks.
  std::size_t segment_index(std::uint64_t frame, std::size_t* probes = nullptr) const noexcept;

  // The value of segment `index` (as returned by segment_index) at `frame`.
  float value_in_segment(std::size_t index, std::uint64_t frame) const noexcept;

  // The interpolation between two consecutive points at a frame in
  // [a.frame, b.frame): the one formula every lookup path shares.
  static float interpolate(const AutomationPoint& a, const AutomationPoint& b,
                           std::uint64_t frame) noexcept;

  std::span<const AutomationPoint> points() const noexcept { return points_; }
  std::size_t size() const noexcept { return points_.size(); }
  bool empty() const noexcept { return points_.empty(); }
  float default_value() const noexcept { return default_value_; }

 private:
  std::vector<AutomationPoint> points_;  // sorted by frame, frames unique
  float default_value_ = 0.0f;
};

// Audio-thread reader of one lane. Holds a pointer to the lane (which must
// outlive it or be replaced with set_lane) and the segment the playhead was in
// last time; never allocates, locks or throws.
class AutomationCursor {
 public:
  // How many points next() walks over one by one before it gives up and binary
  // searches the rest: a playhead that jumps far ahead pays O(log n), not O(n).
  static constexpr std::size_t kMaxLinearSteps = 4;

  AutomationCursor() = default;
  explicit AutomationCursor(const AutomationLane* lane) noexcept : lane_(lane) {}

  // Points the cursor at another lane (or none: next() then returns 0).
  void set_lane(const AutomationLane* lane) noexcept;
  // Forgets the position: the next call binary searches.
  void reset() noexcept { valid_ = false; }

  // The lane's value at `frame`: equal to lane.value_at(frame), amortised O(1)
  // when frames do not decrease; a backward or far jump binary searches.
  float next(std::uint64_t frame) noexcept;

  // Writes one value per sample for a block whose playhead starts at
  // `start_frame` and advances one frame per sample, wrapping from loop.end
  // back to loop.start (possibly several times in one block when the loop is
  // shorter than the block). Returns the playhead after the block, i.e. where
  // the next block starts.
  std::uint64_t fill(std::uint64_t start_frame, std::span<float> out,
                     LoopRegion loop = {}) noexcept;

  const AutomationLane* lane() const noexcept { return lane_; }
  // Diagnostics for tests: points walked over linearly, and binary searches.
  std::uint64_t linear_steps() const noexcept { return linear_steps_; }
  std::uint64_t searches() const noexcept { return searches_; }

 private:
  void seek(std::uint64_t frame, std::size_t from) noexcept;

  const AutomationLane* lane_ = nullptr;
  // Number of points with frame <= the last frame asked (0..n): the current
  // segment is [next_ - 1, next_).
  std::size_t next_ = 0;
  bool valid_ = false;
  std::uint64_t linear_steps_ = 0;
  std::uint64_t searches_ = 0;
};

}  // namespace jamnet::engine
