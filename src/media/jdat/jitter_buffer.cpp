#include "jamnet/media/jdat/jitter_buffer.hpp"

#include <samplerate.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>

namespace jamnet::media::jdat {

namespace {

// The resampler is fed in chunks this small so that it asks for a packet as
// late as possible: its look-ahead is its filter half-length plus one chunk.
constexpr int kFeedChunk = 16;
// Depth controller: correction = drift estimate + kKp * (depth - target),
// low-passed. The drift estimate carries the steady part, so the depth error
// is only ever a transient; it decays with a 1 / kKp time constant.
constexpr double kKp = 0.5;        // 1/s
constexpr double kSmoothS = 0.25;  // low-pass on the correction: the ratio only glides
// Errors this small are left alone: with matched clocks the correction stays
// exactly 0 and the resampler runs at ratio 1 (integer phase).
constexpr double kDeadbandS = 100e-6;
// Drift: the slope of the uncorrected depth (receiver time, less the
// earliest-arrival line, less the frames pulled), exponentially weighted
// least squares. Unlike an integral of the depth error it does not move with
// the depth transients (start, target steps, underruns, skips).
constexpr double kDriftTauS = 20.0;
constexpr double kDriftMinSpanS = 5.0;     // used once the fit spans this long
constexpr double kDriftSettleS = 0.5;      // after an anchor, the minimum is still settling
constexpr double kDriftDeadband = 0.5e-6;  // below this the clocks are taken as matched
// Jitter samples are counted in a histogram with bins growing by 3 % from
// 4 us (below 1 us counts as none): the quantile is then a scan of a few
// hundred counters per packet, and comes out at most 3 % high.
constexpr double kJitterBinLowNs = 4000.0;
constexpr double kJitterBinRatio = 1.03;
constexpr Nanos kJitterNoneNs = 1000;
// Rejected packets in a row that make the buffer follow the sender to a new
// timeline: far out (beyond the ring either way, or off the packet grid) ...
constexpr int kResyncFar = 2;
// ... or merely late (a sender restart that landed just behind playout).
constexpr int kResyncNear = 16;
constexpr std::size_t kHeldHistory = 4096;
constexpr std::int64_t kNoSeq = std::numeric_limits<std::int64_t>::min();

enum class SlotState : std::uint8_t { kEmpty, kFilled, kLost, kPlayedReal, kPlayedConcealed };

struct Slot {
  std::int64_t seq = kNoSeq;
  SlotState state = SlotState::kEmpty;
  Nanos arrival = 0;
};

struct Arrival {
  Nanos arrival = 0;
  Nanos d = 0;  // relative transit: arrival - send time of the first frame (+ unknown offset)
  int bin = 0;  // histogram bin of its jitter (d - min(d over the window) when it arrived)
};

// Least-squares line through (x, y) samples with exponentially decaying
// weights; x is re-based now and then so the sums stay well conditioned.
class DriftFit {
 public:
  void reset() noexcept { *this = DriftFit{}; }
  void add(double x, double y, double decay) noexcept {
    if (s0_ == 0.0) y0_ = y;
    y -= y0_;
    if (x - x0_ > 1000.0) rebase(x);
    x -= x0_;
    s0_ = s0_ * decay + 1.0;
    sx_ = sx_ * decay + x;
    sy_ = sy_ * decay + y;
    sxx_ = sxx_ * decay + x * x;
    sxy_ = sxy_ * decay + x * y;
  }
  double slope() const noexcept {
    const double den = s0_ * sxx_ - sx_ * sx_;
    return den > 0.0 ? (s0_ * sxy_ - sx_ * sy_) / den : 0.0;
  }

 private:
  void rebase(double x) noexcept {
    const double shift = x - x0_;
    sxx_ += -2.0 * shift * sx_ + shift * shift * s0_;
    sxy_ -= shift * sy_;
    sx_ -= shift * s0_;
    x0_ = x;
  }
  double s0_ = 0, sx_ = 0, sy_ = 0, sxx_ = 0, sxy_ = 0;
  double x0_ = 0, y0_ = 0;
};

int converter_type(ResamplerQuality q) {
  switch (q) {
    case ResamplerQuality::kSincBest:
      return SRC_SINC_BEST_QUALITY;
    case ResamplerQuality::kSincMedium:
      return SRC_SINC_MEDIUM_QUALITY;
    case ResamplerQuality::kSincFastest:
      break;
  }
  return SRC_SINC_FASTEST;
}

JitterBufferConfig sanitise(JitterBufferConfig c) {
  c.channels = std::clamp(c.channels, 1, 64);
  c.frames_per_packet = std::clamp(c.frames_per_packet, 1, 1 << 16);
  c.sample_rate = std::clamp(c.sample_rate, 1000, 1'000'000);
  c.output_rate = c.output_rate <= 0 ? c.sample_rate : std::clamp(c.output_rate, 1000, 1'000'000);
  c.max_pull_frames = std::clamp(c.max_pull_frames, 1, 1 << 16);
  c.capacity_packets = std::clamp(c.capacity_packets, 2, 1 << 16);
  if (!(c.quantile >= 0.0)) c.quantile = 0.0;  // also NaN
  c.quantile = std::min(c.quantile, 1.0);
  const Nanos period = static_cast<Nanos>(1e9 * c.frames_per_packet / c.sample_rate);
  c.window_ns = std::clamp<Nanos>(c.window_ns, period, 3600LL * 1'000'000'000);
  c.margin_ns = std::max<Nanos>(c.margin_ns, 0);
  c.min_target_ns = std::max<Nanos>(c.min_target_ns, 0);
  c.max_target_ns = std::max(c.max_target_ns, std::max(c.min_target_ns, period));
  c.fall_ns_per_s = std::max<Nanos>(c.fall_ns_per_s, 0);
  if (!(c.max_correction_ppm >= 0.0)) c.max_correction_ppm = 0.0;
  c.max_correction_ppm = std::min(c.max_correction_ppm, 100'000.0);
  const int block = std::max(c.frames_per_packet, kFeedChunk);
  c.pnbtr.max_block = std::max(c.pnbtr.max_block, block);
  c.concealer.max_block = std::max(c.concealer.max_block, block);
  return c;
}

// How far ahead of the output position (in input frames) the converter asks
// for input when fed in kFeedChunk pieces: measured, not assumed, since it
// depends on the converter and the library version.
int measure_lookahead(int type) {
  struct Probe {
    std::int64_t fed = 0;
    std::int64_t produced = 0;
    std::int64_t ahead = 0;
    float zeros[kFeedChunk] = {};
  } probe;
  auto cb = [](void* data, float** out) -> long {
    auto* p = static_cast<Probe*>(data);
    p->ahead = std::max(p->ahead, p->fed - p->produced);
    p->fed += kFeedChunk;
    *out = p->zeros;
    return kFeedChunk;
  };
  int error = 0;
  SRC_STATE* state = src_callback_new(cb, type, 1, &error, &probe);
  if (state == nullptr) return 0;
  float sample = 0.0f;
  for (int i = 0; i < 1024; ++i) {
    // Ratios on both sides of 1 so the worst case is seen.
    const double ratio = (i / 64) % 2 == 0 ? 1.001 : 0.999;
    probe.produced += src_callback_read(state, ratio, 1, &sample);
  }
  src_delete(state);
  return static_cast<int>(probe.ahead);
}

}  // namespace

struct JitterBuffer::Impl {
  explicit Impl(const JitterBufferConfig& config);
  ~Impl() {
    if (src_ != nullptr) src_delete(src_);
  }

  void push(std::uint64_t first_frame, std::span<const float> in, Nanos arrival) noexcept;
  void mark_lost(std::uint64_t first_frame) noexcept;
  void pull(float* out, int frames, Nanos now) noexcept;

  // --- packets -----------------------------------------------------------
  Slot& slot(std::int64_t seq) noexcept {
    const std::int64_t cap = cfg_.capacity_packets;
    return slots_[static_cast<std::size_t>(((seq % cap) + cap) % cap)];
  }
  float* slot_audio(std::int64_t seq) noexcept {
    const std::int64_t cap = cfg_.capacity_packets;
    const auto i = static_cast<std::size_t>(((seq % cap) + cap) % cap);
    return audio_.data() + i * static_cast<std::size_t>(n_ * c_);
  }
  void anchor(std::uint64_t first_frame) noexcept;
  void accept(std::int64_t seq, std::span<const float> in, Nanos arrival) noexcept;
  void reject(bool far, std::uint64_t first_frame, std::span<const float> in,
              Nanos arrival) noexcept;
  void unanchor() noexcept;

  // --- arrival statistics ------------------------------------------------
  void record_arrival(std::int64_t seq, Nanos arrival) noexcept;
  void clear_arrivals() noexcept;
  void evict_oldest() noexcept;
  Nanos dmin() const noexcept { return hist_[minq_[mq_begin_ % hcap_] % hcap_].d; }
  bool have_arrivals() const noexcept { return h_end_ > h_begin_; }
  void update_quantile() noexcept;
  int jitter_bin(Nanos j) const noexcept;
  Nanos seq_ns(std::int64_t seq) const noexcept {
    return std::llround(static_cast<double>(seq) * n_ * 1e9 / rate_);
  }

  // --- playout -----------------------------------------------------------
  void update_target(Nanos dt, Nanos now, int frames) noexcept;
  void try_start(Nanos now, int frames) noexcept;
  // Depth (s) at the current pull, from the output position. What an ongoing underrun inserted is
  // left out: it either stands in for a lost packet (and is absorbed) or becomes delay once real
  // audio follows.
  double depth_s(Nanos now) const noexcept {
    return (static_cast<double>(now - dmin()) -
            (out_pos_ - static_cast<double>(in_offset_ - stall_credit_)) * 1e9 / rate_) *
           1e-9;
  }
  void control(Nanos now, double dt_s) noexcept;
  void update_drift(Nanos now, double dt_s) noexcept;
  static long feed_cb(void* self, float** data) { return static_cast<Impl*>(self)->feed(data); }
  long feed(float** data) noexcept;
  void prepare_block() noexcept;
  void conceal_block(int frames) noexcept;
  void play_block(std::int64_t seq) noexcept;

  JitterBufferConfig cfg_;
  int c_ = 1;
  int n_ = 64;
  double rate_ = 48000;    // the stream's rate: input frames
  double orate_ = 48000;   // pull()'s rate: output frames
  double in_per_out_ = 1;  // rate_ / orate_
  Nanos period_ns_ = 0;
  int lookahead_ = 0;

  // Packet ring, indexed by packet sequence (relative to anchor_frame_).
  std::vector<Slot> slots_;
  std::vector<float> audio_;
  bool anchored_ = false;
  std::uint64_t anchor_frame_ = 0;
  std::int64_t read_seq_ = 0;  // next packet to play
  std::int64_t newest_ = -1;   // newest packet received
  int rejects_in_row_ = 0;
  int far_in_row_ = 0;

  // Arrivals over the window: ring [h_begin_, h_end_) plus a monotonic queue
  // of the indices of candidate minima of d.
  std::size_t hcap_ = 0;
  std::vector<Arrival> hist_;
  std::uint64_t h_begin_ = 0, h_end_ = 0;
  std::vector<std::uint64_t> minq_;
  std::uint64_t mq_begin_ = 0, mq_end_ = 0;
  std::vector<std::uint32_t> jitter_counts_;
  std::vector<Nanos> jitter_edges_;  // upper edge of each bin
  Nanos max_arrival_ = std::numeric_limits<Nanos>::min();
  Nanos jitter_q_ = 0;

  // Target.
  Nanos target_ = 0;
  Nanos last_pull_ = 0;
  bool have_last_pull_ = false;
  int max_pull_seen_ = 0;

  // Playout. Input index (frames handed to the resampler) of sender frame g
  // (relative to anchor_frame_) is g + in_offset_.
  SRC_STATE* src_ = nullptr;
  std::vector<std::unique_ptr<pnbtr::Concealer>> concealers_;
  std::vector<float> staging_;  // one block, interleaved, handed out in chunks
  int staging_len_ = 0, staging_pos_ = 0;
  std::vector<float> ch_in_, ch_out_;  // one channel of one block
  bool playing_ = false;
  bool ever_played_ = false;
  bool phase_known_ = false;       // aligned pulls: whole_pull_ has been chosen
  bool whole_pull_ = false;        // aligned pulls: wait a whole pull (phase near the edge)
  std::int64_t stall_credit_ = 0;  // frames inserted by the current underrun
  std::int64_t preroll_ = 0;       // frames of lead-in before the first packet after a start
  std::uint64_t fed_ = 0;          // frames handed to the resampler
  double out_pos_ = 0;             // input index at the start of the next output frame
  std::int64_t in_offset_ = 0;
  DriftFit drift_fit_;
  Nanos fit_origin_ = 0;  // pull time of the fit's first sample
  bool fit_started_ = false;
  Nanos anchor_arrival_ = 0;
  double pulled_ = 0;     // frames pulled since construction
  double drift_ = 0;      // drift estimate (rate, + = sender faster)
  int start_skip_ = 0;    // frames of the first packet not played at a fresh start
  double corr_ = 0;       // correction in use (rate, + = faster)
  double corr_prev_ = 0;  // ... in the previous pull
  Nanos stall_ns_ = 0;    // duration of the current underrun
  bool underrun_in_pull_ = false;
  Nanos pull_now_ = 0;
  double pull_out_pos_ = 0;

  std::vector<Nanos> held_;
  std::uint64_t held_count_ = 0;

  JitterBufferStats stats_;
};

JitterBuffer::Impl::Impl(const JitterBufferConfig& config)
    : cfg_(sanitise(config)),
      c_(cfg_.channels),
      n_(cfg_.frames_per_packet),
      rate_(cfg_.sample_rate),
      orate_(cfg_.output_rate),
      in_per_out_(rate_ / orate_),
      period_ns_(static_cast<Nanos>(1e9 * n_ / rate_)) {
  const int type = converter_type(cfg_.resampler);
  lookahead_ = measure_lookahead(type);
  int error = 0;
  src_ = src_callback_new(&Impl::feed_cb, type, c_, &error, this);
  if (src_ == nullptr) throw std::bad_alloc();  // config is sanitised: only memory can fail

  slots_.assign(static_cast<std::size_t>(cfg_.capacity_packets), Slot{});
  audio_.assign(slots_.size() * static_cast<std::size_t>(n_ * c_), 0.0f);
  // At one packet per period the window holds window/period arrivals; twice
  // that leaves room for bursts (beyond it the oldest leave early).
  hcap_ = static_cast<std::size_t>(2 * (cfg_.window_ns / std::max<Nanos>(period_ns_, 1)) + 64);
  hist_.assign(hcap_, Arrival{});
  minq_.assign(hcap_, 0);
  jitter_edges_.push_back(0);
  for (double edge = kJitterBinLowNs;; edge *= kJitterBinRatio) {
    jitter_edges_.push_back(std::llround(edge));
    if (edge >= static_cast<double>(cfg_.max_target_ns)) break;
  }
  jitter_counts_.assign(jitter_edges_.size(), 0);

  for (int ch = 0; ch < c_; ++ch) {
    concealers_.push_back(
        std::make_unique<pnbtr::Concealer>(pnbtr::make_lpc_predictor(cfg_.pnbtr), cfg_.concealer));
  }
  staging_.assign(static_cast<std::size_t>(std::max(n_, kFeedChunk) * c_), 0.0f);
  ch_in_.assign(static_cast<std::size_t>(std::max(n_, kFeedChunk)), 0.0f);
  ch_out_.assign(ch_in_.size(), 0.0f);
  held_.assign(kHeldHistory, 0);
  target_ = std::clamp<Nanos>(cfg_.margin_ns, std::max(cfg_.min_target_ns, period_ns_),
                              cfg_.max_target_ns);
  stats_.target_ns = target_;
}

// ---------------------------------------------------------------------------
// Packets

void JitterBuffer::Impl::anchor(std::uint64_t first_frame) noexcept {
  anchored_ = true;
  anchor_frame_ = first_frame;
  read_seq_ = 0;
  newest_ = -1;
  for (Slot& s : slots_) s = Slot{};
  clear_arrivals();
  rejects_in_row_ = 0;
  far_in_row_ = 0;
  drift_fit_.reset();
  fit_started_ = false;
  drift_ = 0.0;
}

void JitterBuffer::Impl::unanchor() noexcept {
  anchored_ = false;
  playing_ = false;
  preroll_ = 0;
  clear_arrivals();
}

void JitterBuffer::Impl::push(std::uint64_t first_frame, std::span<const float> in,
                              Nanos arrival) noexcept {
  if (in.size() != static_cast<std::size_t>(n_ * c_)) {
    ++stats_.malformed;
    return;
  }
  if (!anchored_) {
    anchor(first_frame);
    anchor_arrival_ = arrival;
  }
  // Unsigned difference, read as signed: a counter wrap is just a step.
  const auto rel = static_cast<std::int64_t>(first_frame - anchor_frame_);
  if (rel % n_ != 0) {
    ++stats_.misaligned;
    reject(true, first_frame, in, arrival);
    return;
  }
  const std::int64_t seq = rel / n_;
  const std::int64_t cap = cfg_.capacity_packets;
  // Before playout starts, an earlier packet (reordered at the start) moves
  // the start back, as long as the ring still spans everything received.
  if (!playing_ && seq < read_seq_ && newest_ - seq < cap && read_seq_ - seq < cap) {
    for (std::int64_t s = seq; s < read_seq_; ++s) slot(s) = Slot{};
    read_seq_ = seq;
  }
  if (seq < read_seq_) {
    const Slot& s = slot(seq);
    if (s.seq == seq && s.state == SlotState::kPlayedReal) {
      // A copy of audio already played. A long run of these with nothing new
      // is a sender that restarted just behind us, not the network.
      ++stats_.duplicates;
      reject(false, first_frame, in, arrival);
      return;
    }
    ++stats_.late;
    // Its lateness is what the target must learn: without it a buffer whose
    // history holds only the packets that made it in time (say, the first of
    // each period's sub-blocks) never grows, and the rest stay late forever.
    if (read_seq_ - seq <= cap) record_arrival(seq, arrival);
    reject(read_seq_ - seq > cap, first_frame, in, arrival);
    return;
  }
  if (seq >= read_seq_ + cap) {
    ++stats_.overflow;
    reject(true, first_frame, in, arrival);
    return;
  }
  const Slot& s = slot(seq);
  if (s.seq == seq && s.state == SlotState::kFilled) {
    ++stats_.duplicates;
    return;
  }
  accept(seq, in, arrival);
}

void JitterBuffer::Impl::accept(std::int64_t seq, std::span<const float> in,
                                Nanos arrival) noexcept {
  Slot& s = slot(seq);
  s.seq = seq;
  s.state = SlotState::kFilled;
  s.arrival = arrival;
  std::copy(in.begin(), in.end(), slot_audio(seq));
  newest_ = std::max(newest_, seq);
  ++stats_.packets;
  rejects_in_row_ = 0;
  far_in_row_ = 0;
  record_arrival(seq, arrival);
}

void JitterBuffer::Impl::reject(bool far, std::uint64_t first_frame, std::span<const float> in,
                                Nanos arrival) noexcept {
  ++rejects_in_row_;
  far_in_row_ = far ? far_in_row_ + 1 : 0;
  if (far_in_row_ < kResyncFar && rejects_in_row_ < kResyncNear) return;
  // The sender is on a new timeline (restart, jump): follow it. Playout holds
  // (concealment fading out) until the new stream reaches the target again.
  ++stats_.resyncs;
  playing_ = false;
  preroll_ = 0;
  anchor(first_frame);
  anchor_arrival_ = arrival;
  accept(0, in, arrival);
}

void JitterBuffer::Impl::mark_lost(std::uint64_t first_frame) noexcept {
  if (!anchored_) return;
  const auto rel = static_cast<std::int64_t>(first_frame - anchor_frame_);
  if (rel % n_ != 0) return;
  const std::int64_t seq = rel / n_;
  if (seq < read_seq_ || seq >= read_seq_ + cfg_.capacity_packets) return;
  Slot& s = slot(seq);
  if (s.seq == seq && s.state == SlotState::kFilled) return;
  s.seq = seq;
  s.state = SlotState::kLost;
}

// ---------------------------------------------------------------------------
// Arrival statistics

void JitterBuffer::Impl::clear_arrivals() noexcept {
  phase_known_ = false;  // a new arrival line: choose the pull phase afresh
  h_begin_ = h_end_ = 0;
  mq_begin_ = mq_end_ = 0;
  std::fill(jitter_counts_.begin(), jitter_counts_.end(), 0u);
  max_arrival_ = std::numeric_limits<Nanos>::min();
  // jitter_q_ and the target are kept: the target falls from where it was.
}

void JitterBuffer::Impl::evict_oldest() noexcept {
  if (mq_end_ > mq_begin_ && minq_[mq_begin_ % hcap_] == h_begin_) ++mq_begin_;
  --jitter_counts_[static_cast<std::size_t>(hist_[h_begin_ % hcap_].bin)];
  ++h_begin_;
}

void JitterBuffer::Impl::record_arrival(std::int64_t seq, Nanos arrival) noexcept {
  max_arrival_ = std::max(max_arrival_, arrival);
  while (h_end_ > h_begin_ && hist_[h_begin_ % hcap_].arrival < max_arrival_ - cfg_.window_ns) {
    evict_oldest();
  }
  if (h_end_ - h_begin_ == hcap_) evict_oldest();
  const Nanos d = arrival - seq_ns(seq);
  while (mq_end_ > mq_begin_ && hist_[minq_[(mq_end_ - 1) % hcap_] % hcap_].d >= d) --mq_end_;
  Arrival& a = hist_[h_end_ % hcap_];
  a.arrival = arrival;
  a.d = d;
  minq_[mq_end_ % hcap_] = h_end_;
  ++mq_end_;
  ++h_end_;
  a.bin = jitter_bin(d - dmin());
  ++jitter_counts_[static_cast<std::size_t>(a.bin)];
  update_quantile();
}

int JitterBuffer::Impl::jitter_bin(Nanos j) const noexcept {
  if (j <= kJitterNoneNs) return 0;
  const int last = static_cast<int>(jitter_edges_.size()) - 1;
  if (static_cast<double>(j) <= kJitterBinLowNs) return 1;
  const double steps =
      std::ceil(std::log(static_cast<double>(j) / kJitterBinLowNs) / std::log(kJitterBinRatio));
  int bin = 1 + static_cast<int>(std::min(steps, static_cast<double>(last)));
  // Rounding of the logarithm: make sure the bin's edge covers j.
  while (bin < last && jitter_edges_[static_cast<std::size_t>(bin)] < j) ++bin;
  return std::min(bin, last);
}

void JitterBuffer::Impl::update_quantile() noexcept {
  const auto n = static_cast<std::size_t>(h_end_ - h_begin_);
  if (n == 0) return;
  // Nearest rank (with few samples a high quantile is their maximum),
  // counted down from the top.
  const auto rank = static_cast<std::size_t>(std::ceil(cfg_.quantile * static_cast<double>(n)));
  const std::size_t above = n - std::clamp<std::size_t>(rank, 1, n) + 1;
  std::size_t seen = 0;
  for (std::size_t i = jitter_counts_.size(); i-- > 0;) {
    seen += jitter_counts_[i];
    if (seen >= above) {
      jitter_q_ = jitter_edges_[i];
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Playout

void JitterBuffer::Impl::update_target(Nanos dt, Nanos now, int frames) noexcept {
  // A packet must be in the buffer when the resampler first asks for it:
  // lookahead frames before its playout, and at the start of the pull that
  // covers that moment. Which pull that is depends on the phase between the
  // packets' arrivals and the pull grid: up to one pull earlier.
  const Nanos lookahead = std::llround(lookahead_ * 1e9 / rate_);
  Nanos wait = std::llround(max_pull_seen_ * 1e9 / orate_);
  Nanos floor = std::max(cfg_.min_target_ns, period_ns_);
  // A pull of several packets (a period sent as sub-blocks) needs packets of
  // more than one arrival burst: the phase-blind whole-pull wait.
  if (cfg_.aligned_pulls && have_arrivals() && frames * rate_ / orate_ <= n_) {
    // Pulls on a regular grid (a device clock) and packets at the same rate
    // keep one phase: a packet that is ready (jitter quantile + margin after
    // its earliest arrival) waits for the next pull, `wait` in [0, pull),
    // and playing it any earlier would make that pull miss it. Counting that
    // wait instead of a whole pull saves half a pull on average.
    // Clock drift slides that phase: when the next pull comes less than half
    // a margin after readiness, count a whole pull instead (the old, phase-
    // blind wait), so the target steps up while packets are still in time
    // and the depth can grow to it (by resampling) before they would be
    // late; it comes back once the next pull is 1.5 margins clear.
    // Hysteresis, so jitter-estimate steps near the edge do not toggle it.
    const Nanos pull = std::max<Nanos>(1, std::llround(frames * 1e9 / orate_));
    const Nanos ready = dmin() + seq_ns(read_seq_) + jitter_q_ + cfg_.margin_ns;
    const Nanos w = ((now - ready) % pull + pull) % pull;
    if (!phase_known_) {
      phase_known_ = true;
      whole_pull_ = w < cfg_.margin_ns;
    } else if (!whole_pull_ && w < cfg_.margin_ns / 2) {
      whole_pull_ = true;
    } else if (whole_pull_ && w > cfg_.margin_ns + cfg_.margin_ns / 2) {
      whole_pull_ = false;
    }
    wait = whole_pull_ ? pull : w;
    floor = cfg_.min_target_ns;
  }
  const Nanos want =
      std::clamp<Nanos>(jitter_q_ + cfg_.margin_ns + lookahead + wait, floor, cfg_.max_target_ns);
  if (want >= target_ || !ever_played_) {  // nothing played yet: no continuity to keep
    target_ = want;
  } else {
    const auto fall = static_cast<Nanos>(static_cast<double>(cfg_.fall_ns_per_s) * dt * 1e-9);
    target_ = std::max(want, target_ - fall);
  }
}

void JitterBuffer::Impl::try_start(Nanos now, int frames) noexcept {
  if (!anchored_ || !have_arrivals() || newest_ < read_seq_) return;
  Nanos depth = now - dmin() - seq_ns(read_seq_);
  // Start at the last pull before the depth would pass the target.
  if (depth + std::llround(frames * 1e9 / orate_) <= target_) return;
  // Packets that came so late (a backlog) that playing them would put us
  // over the target are skipped: we start from silence, so nothing clicks.
  while (depth - period_ns_ >= target_ && read_seq_ < newest_) {
    Slot& s = slot(read_seq_);
    if (s.seq == read_seq_ && s.state == SlotState::kFilled) {
      ++stats_.stale;
      s.state = SlotState::kPlayedConcealed;
    }
    ++read_seq_;
    depth -= period_ns_;
  }
  // Start exactly on target: the frames already on their way through the
  // resampler play first, then a lead-in (silence, or the concealment that
  // is running) makes up the rest; when we are past the target, a fresh
  // start begins inside the first packet instead.
  const double queued = static_cast<double>(fed_) + (staging_len_ - staging_pos_) - out_pos_;
  const double lead = static_cast<double>(target_ - depth) * rate_ * 1e-9 - queued;
  preroll_ = std::max<std::int64_t>(0, std::llround(lead));
  start_skip_ =
      ever_played_ ? 0 : static_cast<int>(std::clamp<double>(std::round(-lead), 0, n_ - 1));
  in_offset_ = static_cast<std::int64_t>(fed_) + (staging_len_ - staging_pos_) + preroll_ -
               (read_seq_ * n_ + start_skip_);
  playing_ = true;
  stall_ns_ = 0;
  stall_credit_ = 0;
}

void JitterBuffer::Impl::update_drift(Nanos now, double dt_s) noexcept {
  if (!anchored_ || !have_arrivals() ||
      static_cast<double>(now - anchor_arrival_) * 1e-9 < kDriftSettleS) {
    return;
  }
  if (!fit_started_) {
    fit_started_ = true;
    fit_origin_ = now;
  }
  // Uncorrected depth: what the depth would be had every pull consumed
  // exactly its own frame count. Its slope is the sender's sample rate
  // relative to our pulls, whatever the buffer did meanwhile.
  const double u = static_cast<double>(now - dmin()) * 1e-9 - pulled_ / orate_;
  const double x = static_cast<double>(now - fit_origin_) * 1e-9;
  drift_fit_.add(x, u, std::exp(-dt_s / kDriftTauS));
  drift_ = x >= kDriftMinSpanS ? drift_fit_.slope() : 0.0;
}

void JitterBuffer::Impl::control(Nanos now, double dt_s) noexcept {
  const double maxc = cfg_.max_correction_ppm * 1e-6;
  const double err = depth_s(now) - static_cast<double>(target_) * 1e-9;
  double e = 0.0;
  if (err > kDeadbandS) e = err - kDeadbandS;
  if (err < -kDeadbandS) e = err + kDeadbandS;
  const double drift = std::abs(drift_) < kDriftDeadband ? 0.0 : drift_;
  const double want = std::clamp(drift + kKp * e, -maxc, maxc);
  corr_ += (want - corr_) * std::min(1.0, dt_s / kSmoothS);
  if (std::abs(want - corr_) < 1e-10) corr_ = want;
}

void JitterBuffer::Impl::pull(float* out, int frames, Nanos now) noexcept {
  const std::size_t samples = static_cast<std::size_t>(frames) * static_cast<std::size_t>(c_);
  const Nanos nominal = std::llround(frames * 1e9 / orate_);
  Nanos dt = have_last_pull_ ? now - last_pull_ : nominal;
  if (dt <= 0 || dt > 100 * nominal) dt = nominal;  // clock jumps: assume one pull
  have_last_pull_ = true;
  last_pull_ = now;
  max_pull_seen_ = std::max(max_pull_seen_, frames);
  update_target(dt, now, frames);
  stats_.target_ns = target_;
  stats_.jitter_ns = jitter_q_;

  update_drift(now, static_cast<double>(dt) * 1e-9);
  pulled_ += frames;
  if (!playing_) try_start(now, frames);
  if (!playing_ && !ever_played_) {
    std::fill(out, out + samples, 0.0f);
  } else {
    if (playing_ && have_arrivals()) control(now, static_cast<double>(dt) * 1e-9);
    pull_now_ = now;
    pull_out_pos_ = out_pos_;
    underrun_in_pull_ = false;
    const long got = src_callback_read(src_, 1.0 / (in_per_out_ * (1.0 + corr_)), frames, out);
    const long made = std::max(got, 0L);
    if (made < frames) std::fill(out + made * c_, out + samples, 0.0f);
    // libsamplerate glides from the last ratio to this one across the block.
    out_pos_ += static_cast<double>(made) * in_per_out_ * (1.0 + 0.5 * (corr_ + corr_prev_));
    corr_prev_ = corr_;
    if (underrun_in_pull_) {
      ++stats_.underruns;
      stall_ns_ += nominal;
      if (stall_ns_ > cfg_.max_target_ns) {
        // The sender went quiet: start over from its next packet.
        ++stats_.reanchors;
        unanchor();
      }
    }
  }

  stats_.playing = playing_;
  stats_.correction_ppm = corr_ * 1e6;
  stats_.drift_ppm = drift_ * 1e6;
  if (anchored_ && have_arrivals()) {
    // At now: the position at the start of this pull.
    const double pos = playing_ ? pull_out_pos_ - static_cast<double>(in_offset_)
                                : static_cast<double>(read_seq_ * n_);
    stats_.depth_ns = std::llround(static_cast<double>(now - dmin()) - pos * 1e9 / rate_);
    stats_.buffered_ns = std::max<Nanos>(
        0, std::llround((static_cast<double>((newest_ + 1) * n_) - pos) * 1e9 / rate_));
  } else {
    stats_.depth_ns = 0;
    stats_.buffered_ns = 0;
  }
}

long JitterBuffer::Impl::feed(float** data) noexcept {
  if (staging_pos_ >= staging_len_) prepare_block();
  const int n = std::min(kFeedChunk, staging_len_ - staging_pos_);
  *data = staging_.data() + static_cast<std::size_t>(staging_pos_ * c_);
  staging_pos_ += n;
  fed_ += static_cast<std::uint64_t>(n);
  return n;
}

void JitterBuffer::Impl::conceal_block(int frames) noexcept {
  for (int ch = 0; ch < c_; ++ch) {
    concealers_[static_cast<std::size_t>(ch)]->lost(
        std::span<float>(ch_out_.data(), static_cast<std::size_t>(frames)));
    for (int i = 0; i < frames; ++i) staging_[static_cast<std::size_t>(i * c_ + ch)] = ch_out_[i];
  }
  staging_len_ = frames;
  staging_pos_ = 0;
  stats_.concealed_frames += static_cast<std::uint64_t>(frames);
}

void JitterBuffer::Impl::play_block(std::int64_t seq) noexcept {
  Slot& s = slot(seq);
  const float* in = slot_audio(seq);
  for (int ch = 0; ch < c_; ++ch) {
    for (int i = 0; i < n_; ++i) ch_in_[static_cast<std::size_t>(i)] = in[i * c_ + ch];
    concealers_[static_cast<std::size_t>(ch)]->good(
        std::span<const float>(ch_in_.data(), static_cast<std::size_t>(n_)),
        std::span<float>(ch_out_.data(), static_cast<std::size_t>(n_)));
    for (int i = 0; i < n_; ++i) staging_[static_cast<std::size_t>(i * c_ + ch)] = ch_out_[i];
  }
  staging_len_ = n_;
  staging_pos_ = start_skip_;
  // Its first frame is input index fed_ (less what a start skips): heard that
  // many input frames after the output position at the start of this pull.
  const double ahead = (static_cast<double>(fed_) - start_skip_ - pull_out_pos_) / (1.0 + corr_);
  start_skip_ = 0;
  ever_played_ = true;
  const Nanos play_at = pull_now_ + std::llround(ahead * 1e9 / rate_);
  held_[held_count_ % kHeldHistory] = play_at - s.arrival;
  ++held_count_;
  s.state = SlotState::kPlayedReal;
  ++stats_.played;
  stall_ns_ = 0;
  // What the underrun inserted stays: it is now delay, which the controller
  // winds back.
  stall_credit_ = 0;
}

void JitterBuffer::Impl::prepare_block() noexcept {
  if (preroll_ > 0) {
    const int n = static_cast<int>(std::min<std::int64_t>(preroll_, kFeedChunk));
    preroll_ -= n;
    if (ever_played_) {
      conceal_block(n);
    } else {
      std::fill(staging_.begin(), staging_.begin() + n * c_, 0.0f);
      staging_len_ = n;
      staging_pos_ = 0;
    }
    return;
  }
  if (!playing_) {
    // Holding after a resync or re-anchor: the concealment runs on (fading
    // to silence) until the new stream starts.
    conceal_block(kFeedChunk);
    return;
  }
  for (;;) {
    Slot& s = slot(read_seq_);
    const bool here = s.seq == read_seq_;
    if (here && s.state == SlotState::kFilled) {
      play_block(read_seq_);
      ++read_seq_;
      return;
    }
    const bool known_lost = (here && s.state == SlotState::kLost) || newest_ > read_seq_;
    if (!known_lost) underrun_in_pull_ = true;
    if (!known_lost && cfg_.hold_on_underrun) {
      // Underrun: nothing to play and nothing behind it. Conceal a little and
      // hold the position, so a packet that is only delayed still plays.
      conceal_block(kFeedChunk);
      in_offset_ += kFeedChunk;
      stall_credit_ += kFeedChunk;
      stats_.inserted_frames += kFeedChunk;
      return;
    }
    // A hole: the packet is lost or late (or an underrun that does not hold).
    // Its frames are concealed, less what an underrun just before it already
    // inserted (that concealment stands in for them), so the playout keeps
    // its place in the stream.
    s.seq = read_seq_;
    s.state = SlotState::kPlayedConcealed;
    ++stats_.missing_packets;
    ++read_seq_;
    // (A fresh start that landed on a hole skips into it as into a packet.)
    const int skip = start_skip_;
    start_skip_ = 0;
    const std::int64_t absorbed = std::min<std::int64_t>(stall_credit_, n_ - skip);
    stall_credit_ -= absorbed;
    in_offset_ -= absorbed;
    const int rest = n_ - skip - static_cast<int>(absorbed);
    if (rest == 0) continue;
    conceal_block(rest);
    return;
  }
}

// ---------------------------------------------------------------------------

JitterBuffer::JitterBuffer(const JitterBufferConfig& config)
    : impl_(std::make_unique<Impl>(config)) {}
JitterBuffer::~JitterBuffer() = default;

void JitterBuffer::push(std::uint64_t first_frame, std::span<const float> interleaved,
                        Nanos arrival_ns) noexcept {
  impl_->push(first_frame, interleaved, arrival_ns);
}

void JitterBuffer::mark_lost(std::uint64_t first_frame) noexcept {
  impl_->mark_lost(first_frame);
}

void JitterBuffer::pull(std::span<float> out, Nanos now_ns) noexcept {
  const int c = impl_->c_;
  const std::size_t frames = out.size() / static_cast<std::size_t>(c);
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(frames * c), out.end(), 0.0f);
  std::size_t done = 0;
  while (done < frames) {
    const int n = static_cast<int>(std::min<std::size_t>(
        frames - done, static_cast<std::size_t>(impl_->cfg_.max_pull_frames)));
    const Nanos at = now_ns + std::llround(static_cast<double>(done) * 1e9 / impl_->orate_);
    impl_->pull(out.data() + done * static_cast<std::size_t>(c), n, at);
    done += static_cast<std::size_t>(n);
  }
}

const JitterBufferStats& JitterBuffer::stats() const noexcept {
  return impl_->stats_;
}

std::vector<Nanos> JitterBuffer::held_ns_history() const {
  const std::uint64_t n = std::min<std::uint64_t>(impl_->held_count_, kHeldHistory);
  std::vector<Nanos> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = impl_->held_count_ - n; i < impl_->held_count_; ++i) {
    out.push_back(impl_->held_[i % kHeldHistory]);
  }
  return out;
}

int JitterBuffer::resampler_lookahead_frames() const noexcept {
  return impl_->lookahead_;
}

}  // namespace jamnet::media::jdat
