#include "jamnet/sync/clock_source.hpp"

#include "jamnet/core/cpu_relax.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace jamnet::sync {

namespace {

constexpr long double kNsPerSec = 1e9L;
constexpr std::int64_t kNsPerSecInt = 1'000'000'000;

__extension__ using i128 = __int128;

// Floor and ceiling of n / d for d > 0, any sign of n.
i128 floor_div(i128 n, i128 d) noexcept {
  i128 q = n / d;
  if ((n % d != 0) && (n < 0)) --q;
  return q;
}
i128 ceil_div(i128 n, i128 d) noexcept {
  i128 q = n / d;
  if ((n % d != 0) && (n > 0)) ++q;
  return q;
}

// Seqlock writer: odd while writing. Only one writer at a time.
inline std::uint64_t write_begin(std::atomic<std::uint64_t>& seq) noexcept {
  const std::uint64_t s = seq.load(std::memory_order_relaxed);
  seq.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  return s;
}
inline void write_end(std::atomic<std::uint64_t>& seq, std::uint64_t s) noexcept {
  seq.store(s + 2, std::memory_order_release);
}

}  // namespace

std::string_view to_string(ClockKind k) noexcept {
  switch (k) {
    case ClockKind::kMonotonic:
      return "monotonic";
    case ClockKind::kAudioDevice:
      return "audio";
    case ClockKind::kGpu:
      return "gpu";
    case ClockKind::kTest:
      return "test";
  }
  return "unknown";
}

// ---------------------------------------------------------------- TestClock

TestClock::TestClock(Nanos offset_ns, double skew_ppm, Nanos origin_mono) noexcept
    : offset_(offset_ns), skew_ppm_(skew_ppm), origin_(origin_mono) {}

Nanos TestClock::from_monotonic(Nanos mono) const noexcept {
  // reading = mono + offset + round(d * k), d = mono - origin, k = skew * 1e-6.
  const Nanos d = mono - origin_;
  const long double gain = static_cast<long double>(d) * static_cast<long double>(skew_ppm_) / 1e6L;
  return mono + offset_ + static_cast<Nanos>(std::llroundl(gain));
}

Nanos TestClock::to_monotonic(Nanos t) const noexcept {
  // Solve u = d * (1 + k) for d (u = t - origin - offset) and round to the
  // nearest ns. For k >= 0 this inverts from_monotonic exactly; for k < 0 the
  // clock has fewer readings than monotonic ns, and from_monotonic inverts
  // to_monotonic exactly instead.
  const Nanos u = t - origin_ - offset_;
  const long double k = static_cast<long double>(skew_ppm_) / 1e6L;
  // d = u - u * k / (1 + k): the correction term is small, keeping precision.
  const long double corr = static_cast<long double>(u) * k / (1.0L + k);
  return origin_ + u - static_cast<Nanos>(std::llroundl(corr));
}

// ---------------------------------------------------------- AudioDeviceClock

AudioDeviceClock::AudioDeviceClock(std::uint32_t sample_rate) noexcept
    : rate_(sample_rate == 0 ? 1 : sample_rate) {}

void AudioDeviceClock::on_cycle(std::uint64_t frame, Nanos mono_at_frame) noexcept {
  const std::uint64_t s = write_begin(seq_);
  frame_.store(frame, std::memory_order_relaxed);
  mono_.store(mono_at_frame, std::memory_order_relaxed);
  started_.store(true, std::memory_order_relaxed);
  write_end(seq_, s);
}

namespace {
struct AudioSnapshot {
  std::uint64_t frame;
  Nanos mono;
  bool started;
};

AudioSnapshot read_audio(const std::atomic<std::uint64_t>& seq,
                         const std::atomic<std::uint64_t>& frame, const std::atomic<Nanos>& mono,
                         const std::atomic<bool>& started) noexcept {
  for (;;) {
    const std::uint64_t s1 = seq.load(std::memory_order_acquire);
    if (s1 & 1U) {
      cpu_relax();
      continue;
    }
    AudioSnapshot snap{frame.load(std::memory_order_relaxed), mono.load(std::memory_order_relaxed),
                       started.load(std::memory_order_relaxed)};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) == s1) return snap;
  }
}

}  // namespace

Nanos AudioDeviceClock::from_monotonic(Nanos mono) const noexcept {
  const AudioSnapshot s = read_audio(seq_, frame_, mono_, started_);
  if (!s.started) return mono;
  const Nanos frame_ns = time_of_sample(static_cast<std::int64_t>(s.frame));
  return frame_ns + (mono - s.mono);
}

Nanos AudioDeviceClock::to_monotonic(Nanos t) const noexcept {
  const AudioSnapshot s = read_audio(seq_, frame_, mono_, started_);
  if (!s.started) return t;
  const Nanos frame_ns = time_of_sample(static_cast<std::int64_t>(s.frame));
  return s.mono + (t - frame_ns);
}

std::int64_t AudioDeviceClock::sample_at_or_after(Nanos t) const noexcept {
  return static_cast<std::int64_t>(ceil_div(static_cast<i128>(t) * rate_, kNsPerSecInt));
}

Nanos AudioDeviceClock::time_of_sample(std::int64_t sample) const noexcept {
  return static_cast<Nanos>(floor_div(static_cast<i128>(sample) * kNsPerSecInt, rate_));
}

// ------------------------------------------------------------------ GpuClock

struct GpuClock::History {
  static constexpr std::size_t kMax = 16;
  std::vector<CalibratedPair> pairs;  // oldest first
};

GpuClock::GpuClock(Sampler sampler, double tick_period_ns)
    : sampler_(std::move(sampler)),
      period_ns_(tick_period_ns > 0 ? tick_period_ns : 1.0),
      history_(std::make_shared<History>()) {
  history_->pairs.reserve(History::kMax + 1);
}

Nanos GpuClock::ticks_to_ns(std::uint64_t ticks) const noexcept {
  return static_cast<Nanos>(
      std::llroundl(static_cast<long double>(ticks) * static_cast<long double>(period_ns_)));
}

namespace {
struct GpuFit {
  Nanos ref, a_int;
  double a, b;
};
GpuFit read_fit(const std::atomic<std::uint64_t>& seq, const std::atomic<Nanos>& ref,
                const std::atomic<Nanos>& a_int, const std::atomic<double>& a,
                const std::atomic<double>& b) noexcept {
  for (;;) {
    const std::uint64_t s1 = seq.load(std::memory_order_acquire);
    if (s1 & 1U) {
      cpu_relax();
      continue;
    }
    GpuFit f{ref.load(std::memory_order_relaxed), a_int.load(std::memory_order_relaxed),
             a.load(std::memory_order_relaxed), b.load(std::memory_order_relaxed)};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) == s1) return f;
  }
}
}  // namespace

Nanos GpuClock::from_monotonic(Nanos mono) const noexcept {
  const GpuFit f = read_fit(seq_, ref_, a_int_, a_, b_);
  const long double frac = static_cast<long double>(f.a) +
                           static_cast<long double>(f.b) * static_cast<long double>(mono - f.ref);
  return mono + f.a_int + static_cast<Nanos>(std::llroundl(frac));
}

Nanos GpuClock::to_monotonic(Nanos t) const noexcept {
  // t = m + a_int + a + b (m - ref)  =>  m - ref = (t - ref - a_int - a) / (1 + b)
  const GpuFit f = read_fit(seq_, ref_, a_int_, a_, b_);
  const Nanos u = t - f.ref - f.a_int;
  const long double v = static_cast<long double>(u) - static_cast<long double>(f.a);
  const long double b = f.b;
  // v / (1 + b) = v - v * b / (1 + b)
  const long double corr = v * b / (1.0L + b);
  return f.ref + static_cast<Nanos>(std::llroundl(v - corr));
}

bool GpuClock::calibrate() {
  if (!sampler_) return false;
  const std::optional<CalibratedPair> p = sampler_();
  if (!p) return false;
  auto& pairs = history_->pairs;
  pairs.push_back(*p);
  if (pairs.size() > History::kMax) pairs.erase(pairs.begin());

  // Drop pairs whose read was much less certain than the best one.
  Nanos best = pairs.front().max_deviation_ns;
  for (const auto& q : pairs) best = std::min(best, q.max_deviation_ns);
  const Nanos limit = std::max<Nanos>(best, 0) * 4 + 1000;
  std::vector<const CalibratedPair*> kept;
  kept.reserve(pairs.size());
  for (const auto& q : pairs) {
    if (q.max_deviation_ns <= limit) kept.push_back(&q);
  }

  // Fit y = gpu_ns - mono against x = mono - ref, ref the newest kept pair.
  const CalibratedPair& newest = *kept.back();
  const Nanos ref = newest.mono;
  const Nanos y0 = ticks_to_ns(newest.ticks) - newest.mono;
  long double sx = 0, sy = 0;
  const auto n = static_cast<long double>(kept.size());
  std::vector<long double> xs, ys;
  xs.reserve(kept.size());
  ys.reserve(kept.size());
  for (const auto* q : kept) {
    const long double gpu =
        static_cast<long double>(q->ticks) * static_cast<long double>(period_ns_);
    const long double x = static_cast<long double>(q->mono - ref);
    // y relative to y0, computed without losing the integer part's precision
    const long double y = (gpu - static_cast<long double>(ticks_to_ns(q->ticks))) +
                          static_cast<long double>((ticks_to_ns(q->ticks) - q->mono) - y0);
    xs.push_back(x);
    ys.push_back(y);
    sx += x;
    sy += y;
  }
  const long double mx = sx / n, my = sy / n;
  long double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    sxx += (xs[i] - mx) * (xs[i] - mx);
    sxy += (xs[i] - mx) * (ys[i] - my);
  }
  long double b = 0;
  if (kept.size() >= 2 && sxx > 0) b = sxy / sxx;
  const long double a = my - b * mx;  // fit value at x = 0 (ref)

  const std::uint64_t s = write_begin(seq_);
  ref_.store(ref, std::memory_order_relaxed);
  a_int_.store(y0, std::memory_order_relaxed);
  a_.store(static_cast<double>(a), std::memory_order_relaxed);
  b_.store(static_cast<double>(b), std::memory_order_relaxed);
  write_end(seq_, s);
  return true;
}

}  // namespace jamnet::sync
