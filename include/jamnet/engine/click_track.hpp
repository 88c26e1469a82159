// ClickTrack: the metronome, rendered sample-exactly on the audio thread.
//
// 003 "Steady Pulse" phase 1: the old click decided "downbeat or not" once per
// tick, so when one tick crossed several beats (high tempo, big blocks) they
// all got the first beat's classification. Here every beat is an event of its
// own: beat k sounds at origin + round(k * 60 * rate / bpm), at its exact
// sample offset in whatever block contains it, and is a downbeat when
// k % beats_per_bar == 0 (beat 0 = bar 1 beat 1 = the origin frame).
//
// Rendering is a pure function of the timeline (the grid and the block's start
// frame), not of what was rendered before: the click that is sounding when a
// block starts is found from the last beat before the block. So any block
// size gives the same samples, a click cut by a block end goes on in the next
// block, and a seek needs no reset. Clicks do not overlap: a beat that comes
// before the previous click has died away cuts it (only above ~3000 bpm).
//
// Owned by the audio thread: setters and render() are called from it (control
// threads send the engine's kTempo / kClickOn commands). The click sounds are
// tables built in the constructor; nothing after it allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace jamnet::engine {

struct ClickEvent {
  std::uint32_t offset = 0;      // sample offset of the onset inside the block
  std::uint64_t beat_index = 0;  // beats since the origin (0 = bar 1 beat 1)
  bool downbeat = false;         // beat_index % beats_per_bar == 0: accented
};

class ClickTrack {
 public:
  static constexpr double kMinBpm = 1.0;
  static constexpr double kMaxBpm = 10'000.0;
  static constexpr double kDefaultBpm = 120.0;
  // The click: a sine burst with an exponential decay that a linear fade brings
  // to exactly zero at its end. Downbeats are higher and louder.
  static constexpr double kClickSeconds = 0.020;
  static constexpr double kDecaySeconds = 0.004;
  static constexpr double kAccentHz = 1500.0;
  static constexpr double kNormalHz = 1000.0;
  static constexpr float kAccentGain = 0.5f;
  static constexpr float kNormalGain = 0.3f;

  explicit ClickTrack(std::uint32_t sample_rate);

  // The grid keeps its anchor (the origin unless set_tempo_at moved it): beat
  // k moves to origin + round(k * 60 * rate / bpm). Clamped to [kMinBpm,
  // kMaxBpm]; NaN is ignored.
  void set_tempo(double bpm) noexcept;
  // A tempo change during play that keeps the bar position: the first beat at
  // or after `frame` keeps its frame and index, and later beats follow the new
  // tempo from there. A click sounding at `frame` rings on. `frame` is the
  // playhead, i.e. the start of the next block to be rendered.
  void set_tempo_at(double bpm, std::uint64_t frame) noexcept;
  // Clamped to at least 1 (every beat a downbeat).
  void set_meter(int beats_per_bar) noexcept;
  void set_enabled(bool enabled) noexcept { enabled_ = enabled; }
  // Bar 1 beat 1 is at `frame`; nothing clicks before it. Also forgets any
  // set_tempo_at anchor.
  void set_origin(std::uint64_t frame) noexcept;

  double tempo() const noexcept { return bpm_; }
  int meter() const noexcept { return beats_per_bar_; }
  bool enabled() const noexcept { return enabled_; }
  std::uint64_t origin() const noexcept { return origin_; }
  std::uint32_t sample_rate() const noexcept { return sample_rate_; }

  // The onset frame of beat `beat_index` (not before the current tempo's first
  // beat: the origin, or the anchor of the last set_tempo_at).
  std::uint64_t beat_frame(std::uint64_t beat_index) const noexcept;

  // The beats whose onsets lie in [start, start + frames), in order, at most
  // out.size() of them; returns how many were written. When it returns
  // out.size() there may be more: ask again from the last offset + 1.
  std::size_t beats_in(std::uint64_t start, std::uint32_t frames,
                       std::span<ClickEvent> out) const noexcept;

  // Renders the block whose first sample is timeline frame `block_start_frame`
  // into `out` (mono), adding to it (add) or replacing it. Disabled: adds
  // nothing, or writes silence when !add.
  void render(std::uint64_t block_start_frame, std::span<float> out, bool add = true) noexcept;

  // The click sounds, for tests and for anyone who mixes them elsewhere.
  std::span<const float> click_samples(bool downbeat) const noexcept {
    return downbeat ? accent_ : normal_;
  }

 private:
  // At most this many events are asked of beats_in at a time in render(): a
  // fixed array on the stack, any number of beats per block.
  static constexpr std::size_t kEventChunk = 8;

  bool is_downbeat(std::uint64_t beat_index) const noexcept {
    return beat_index % static_cast<std::uint64_t>(beats_per_bar_) == 0;
  }
  std::uint64_t first_beat_at_or_after(std::uint64_t frame) const noexcept;
  // The last beat with onset < frame (the one that may still sound at frame).
  bool last_beat_before(std::uint64_t frame, std::uint64_t* onset, bool* downbeat) const noexcept;
  void render_chunk(std::uint64_t start, std::span<float> out) const noexcept;

  std::uint32_t sample_rate_;
  double bpm_ = kDefaultBpm;
  int beats_per_bar_ = 4;
  bool enabled_ = true;
  std::uint64_t origin_ = 0;  // bar 1 beat 1
  // The grid: beat k (k >= anchor_beat_) is at anchor_frame_ + round((k -
  // anchor_beat_) * 60 * rate / bpm). The origin and beat 0 unless
  // set_tempo_at moved it.
  std::uint64_t anchor_frame_ = 0;
  std::uint64_t anchor_beat_ = 0;
  // The last beat of the tempo before a set_tempo_at: before origin_, so not
  // on the new grid, but its click may still be sounding after the change.
  bool has_tail_ = false;
  std::uint64_t tail_onset_ = 0;
  bool tail_downbeat_ = false;
  std::vector<float> accent_;
  std::vector<float> normal_;
};

}  // namespace jamnet::engine
