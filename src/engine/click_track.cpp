#include "jamnet/engine/click_track.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

namespace jamnet::engine {
namespace {

std::vector<float> make_click(std::uint32_t rate, double hz, float gain) {
  const auto n = std::max<std::size_t>(
      1, static_cast<std::size_t>(std::lround(ClickTrack::kClickSeconds * rate)));
  std::vector<float> t(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double s = static_cast<double>(i) / rate;
    const double env = std::exp(-s / ClickTrack::kDecaySeconds) *
                       (1.0 - static_cast<double>(i) / static_cast<double>(n));
    t[i] = static_cast<float>(gain * env * std::sin(2.0 * std::numbers::pi * hz * s));
  }
  return t;
}

// Blocks longer than this are rendered in pieces so offsets fit in 32 bits.
constexpr std::size_t kMaxChunkFrames = std::size_t{1} << 30;

}  // namespace

ClickTrack::ClickTrack(std::uint32_t sample_rate)
    : sample_rate_(std::max<std::uint32_t>(1, sample_rate)),
      accent_(make_click(sample_rate_, kAccentHz, kAccentGain)),
      normal_(make_click(sample_rate_, kNormalHz, kNormalGain)) {}

void ClickTrack::set_tempo(double bpm) noexcept {
  if (std::isnan(bpm)) return;
  bpm_ = std::clamp(bpm, kMinBpm, kMaxBpm);
}

void ClickTrack::set_tempo_at(double bpm, std::uint64_t frame) noexcept {
  if (std::isnan(bpm)) return;
  if (frame > anchor_frame_) {
    // Re-anchor at the next beat of the old grid so its index (and with it
    // the bar position) and its frame stay; the beat before it is the tail.
    const std::uint64_t k0 = first_beat_at_or_after(frame);
    tail_onset_ = beat_frame(k0 - 1);
    tail_downbeat_ = is_downbeat(k0 - 1);
    has_tail_ = true;
    anchor_frame_ = beat_frame(k0);
    anchor_beat_ = k0;
  }
  set_tempo(bpm);
}

void ClickTrack::set_meter(int beats_per_bar) noexcept {
  beats_per_bar_ = std::max(1, beats_per_bar);
}

void ClickTrack::set_origin(std::uint64_t frame) noexcept {
  origin_ = frame;
  anchor_frame_ = frame;
  anchor_beat_ = 0;
  has_tail_ = false;
}

std::uint64_t ClickTrack::beat_frame(std::uint64_t beat_index) const noexcept {
  if (beat_index <= anchor_beat_) return anchor_frame_;
  // k * 60 * rate is an exact integer in a double (below 2^53: hundreds of
  // millions of beats), so the onset is the exact quotient rounded once.
  const double x = static_cast<double>(beat_index - anchor_beat_) * 60.0 *
                   static_cast<double>(sample_rate_) / bpm_;
  return anchor_frame_ + static_cast<std::uint64_t>(std::floor(x + 0.5));
}

std::uint64_t ClickTrack::first_beat_at_or_after(std::uint64_t frame) const noexcept {
  if (frame <= anchor_frame_) return anchor_beat_;
  const double frames_per_beat = 60.0 * static_cast<double>(sample_rate_) / bpm_;
  // The estimate is off by at most one beat through rounding: step to the exact one.
  std::uint64_t k =
      anchor_beat_ + static_cast<std::uint64_t>(
                         std::ceil(static_cast<double>(frame - anchor_frame_) / frames_per_beat));
  while (k > anchor_beat_ && beat_frame(k - 1) >= frame) --k;
  while (beat_frame(k) < frame) ++k;
  return k;
}

bool ClickTrack::last_beat_before(std::uint64_t frame, std::uint64_t* onset,
                                  bool* downbeat) const noexcept {
  if (frame > anchor_frame_) {
    const std::uint64_t k = first_beat_at_or_after(frame) - 1;  // >= anchor_beat_
    *onset = beat_frame(k);
    *downbeat = is_downbeat(k);
    return true;
  }
  if (has_tail_ && tail_onset_ < frame) {
    *onset = tail_onset_;
    *downbeat = tail_downbeat_;
    return true;
  }
  return false;
}

std::size_t ClickTrack::beats_in(std::uint64_t start, std::uint32_t frames,
                                 std::span<ClickEvent> out) const noexcept {
  if (frames == 0 || out.empty()) return 0;
  const std::uint64_t end = start + frames;
  std::uint64_t k = first_beat_at_or_after(start);
  std::size_t n = 0;
  while (n < out.size()) {
    const std::uint64_t f = beat_frame(k);
    if (f >= end) break;
    out[n++] = ClickEvent{static_cast<std::uint32_t>(f - start), k, is_downbeat(k)};
    ++k;
  }
  return n;
}

void ClickTrack::render_chunk(std::uint64_t start, std::span<float> out) const noexcept {
  // The click being played: a table and the position in it.
  std::span<const float> voice;
  std::size_t pos = 0;
  std::size_t at = 0;  // next sample of `out` to render
  auto play_until = [&](std::size_t to) {
    const std::size_t n = std::min(to - at, voice.size() - pos);
    for (std::size_t i = 0; i < n; ++i) out[at + i] += voice[pos + i];
    pos += n;
    at = to;
  };

  std::uint64_t onset = 0;
  bool downbeat = false;
  if (last_beat_before(start, &onset, &downbeat)) {
    const std::span<const float> table = click_samples(downbeat);
    if (start - onset < table.size()) {
      voice = table;
      pos = static_cast<std::size_t>(start - onset);
    }
  }

  std::array<ClickEvent, kEventChunk> events;
  std::size_t from = 0;  // offset the next beats_in call starts at
  while (from < out.size()) {
    const std::size_t n =
        beats_in(start + from, static_cast<std::uint32_t>(out.size() - from), events);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t offset = from + events[i].offset;
      play_until(offset);
      voice = click_samples(events[i].downbeat);  // a new beat cuts the previous click
      pos = 0;
    }
    if (n < events.size()) break;
    from += events[n - 1].offset + 1;
  }
  play_until(out.size());
}

void ClickTrack::render(std::uint64_t block_start_frame, std::span<float> out, bool add) noexcept {
  if (!add) std::fill(out.begin(), out.end(), 0.0f);
  if (!enabled_) return;
  while (!out.empty()) {
    const std::size_t n = std::min(out.size(), kMaxChunkFrames);
    render_chunk(block_start_frame, out.first(n));
    block_start_frame += n;
    out = out.subspan(n);
  }
}

}  // namespace jamnet::engine
