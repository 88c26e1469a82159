#include "jamnet/sync/clock_estimator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace jamnet::sync {

namespace {

constexpr double kAdaptivePercentile = 0.20;    // adaptive min-RTT margin
constexpr long double kWeightFloorNs = 50'000;  // LS weight 1 / (excess + this)^2
constexpr double kNoDriftInfoPpm = 1e6;         // drift_sd_ppm when the LS slope is unknown
// A floor fit steeper than this (0.2 %) is no clock's drift: the samples are
// inconsistent (e.g. the remote timeline stepped inside the window).
constexpr long double kMaxFloorSlope = 2e-3L;

struct Pt {
  long double x, v;
};

// z-component of (a - o) x (b - o)
long double cross(const Pt& o, const Pt& a, const Pt& b) {
  return (a.x - o.x) * (b.v - o.v) - (a.v - o.v) * (b.x - o.x);
}

// Lower convex hull (keep_upper false) or upper hull of points sorted by x;
// of equal x only the lowest (highest) point is kept.
std::vector<Pt> hull(const std::vector<Pt>& pts, bool keep_upper) {
  std::vector<Pt> h;
  h.reserve(pts.size());
  for (const Pt& p : pts) {
    if (!h.empty() && h.back().x == p.x) {
      if (keep_upper ? p.v <= h.back().v : p.v >= h.back().v) continue;
      h.pop_back();
    }
    while (h.size() >= 2) {
      const long double c = cross(h[h.size() - 2], h.back(), p);
      if (keep_upper ? c >= 0 : c <= 0) {
        h.pop_back();
      } else {
        break;
      }
    }
    h.push_back(p);
  }
  return h;
}

struct Line {
  long double a, b;  // v = a + b x
};

// The delay-floor fit (see the header): maximise
//   gap(b) = min_i(u_i - b xu_i) - max_j(l_j - b xl_j)
// (concave, piecewise linear). Its slope is -x(argmin) + x(argmax), so walking
// the breakpoints (the hull edges' slopes) in increasing order finds the
// maximum exactly. nullopt when gap has no maximum or the band is empty.
std::optional<Line> floor_fit(std::vector<Pt> up, std::vector<Pt> lo) {
  const auto by_x = [](const Pt& p, const Pt& q) { return p.x < q.x || (p.x == q.x && p.v < q.v); };
  // Samples arrive in t1 order, so these are usually sorted already.
  if (!std::is_sorted(up.begin(), up.end(), by_x)) std::sort(up.begin(), up.end(), by_x);
  if (!std::is_sorted(lo.begin(), lo.end(), by_x)) std::sort(lo.begin(), lo.end(), by_x);
  const std::vector<Pt> hu = hull(up, false);  // theta lies below these
  const std::vector<Pt> hl = hull(lo, true);   // and above these
  if (hu.empty() || hl.empty()) return std::nullopt;
  std::size_t i = 0;              // argmin vertex of the upper set: moves right as b grows
  std::size_t j = hl.size() - 1;  // argmax vertex of the lower set: moves left as b grows
  constexpr long double kInf = std::numeric_limits<long double>::infinity();
  long double b = 0;
  bool have_b = false;
  for (;;) {
    if (hl[j].x - hu[i].x <= 0) break;  // gap no longer increases: b is the maximum
    const long double next_u =
        i + 1 < hu.size() ? (hu[i + 1].v - hu[i].v) / (hu[i + 1].x - hu[i].x) : kInf;
    const long double next_l = j > 0 ? (hl[j].v - hl[j - 1].v) / (hl[j].x - hl[j - 1].x) : kInf;
    if (next_u == kInf && next_l == kInf) return std::nullopt;  // unbounded
    if (next_u <= next_l) {
      b = next_u;
      ++i;
    } else {
      b = next_l;
      --j;
    }
    have_b = true;
  }
  if (!have_b || std::abs(b) > kMaxFloorSlope) return std::nullopt;
  long double a_hi = kInf, a_lo = -kInf;
  for (const Pt& p : hu) a_hi = std::min(a_hi, p.v - b * p.x);
  for (const Pt& p : hl) a_lo = std::max(a_lo, p.v - b * p.x);
  if (a_hi < a_lo) return std::nullopt;  // no band: inconsistent samples
  return Line{(a_hi + a_lo) / 2, b};
}

}  // namespace

ClockEstimator::ClockEstimator(ClockEstimatorConfig config) : config_(config) {
  config_.min_samples = std::max<std::size_t>(config_.min_samples, 1);
  config_.max_samples = std::max(config_.max_samples, config_.min_samples);
}

bool ClockEstimator::add(const SyncSample& s) {
  // t2 and t3 come from the wire: all four in [0, 2^60] keep every sum and
  // difference below (offsets, delays, the fit's sums of two) in range.
  if (!plausible_ns(s.t1) || !plausible_ns(s.t2) || !plausible_ns(s.t3) || !plausible_ns(s.t4))
    return false;
  if (s.t4 < s.t1 || s.t3 < s.t2) return false;
  const Nanos d = s.delay();
  if (d < 0 || d > config_.max_delay_ns) return false;
  if (!samples_.empty() && s.t1 <= samples_.back().t1) return false;
  samples_.push_back(s);
  const Nanos newest = s.local_mid();
  while (samples_.front().local_mid() < newest - config_.window_ns) samples_.pop_front();
  while (samples_.size() > config_.max_samples) samples_.pop_front();
  cached_.reset();
  cache_valid_ = false;
  return true;
}

void ClockEstimator::reset() {
  samples_.clear();
  cached_.reset();
  cache_valid_ = false;
}

std::optional<ClockEstimate> ClockEstimator::estimate() const {
  if (cache_valid_) return cached_;
  cache_valid_ = true;
  cached_.reset();
  const std::size_t n = samples_.size();
  if (n < config_.min_samples) return cached_;

  // Min-RTT filter.
  std::vector<Nanos> delays;
  delays.reserve(n);
  for (const auto& s : samples_) delays.push_back(s.delay());
  const Nanos min_delay = *std::min_element(delays.begin(), delays.end());
  const auto k = static_cast<std::size_t>(kAdaptivePercentile * static_cast<double>(n - 1));
  std::nth_element(delays.begin(), delays.begin() + static_cast<std::ptrdiff_t>(k), delays.end());
  const Nanos margin = std::max(config_.delay_margin_ns, delays[k] - min_delay);
  const Nanos limit = min_delay + margin;

  // Everything relative to the newest sample, so that long doubles hold the
  // small differences exactly.
  const SyncSample& newest = samples_.back();
  const Nanos ref = newest.local_mid();
  const Nanos y_base = newest.offset();
  struct Kept {
    long double x, y, w;
  };
  std::vector<Kept> kept;
  kept.reserve(n);
  std::vector<Pt> up, lo;
  up.reserve(n);
  lo.reserve(n);
  for (const auto& s : samples_) {
    up.push_back(
        {static_cast<long double>(s.t1 - ref), static_cast<long double>((s.t2 - s.t1) - y_base)});
    lo.push_back(
        {static_cast<long double>(s.t4 - ref), static_cast<long double>((s.t3 - s.t4) - y_base)});
    const Nanos d = s.delay();
    if (d > limit) continue;
    // theta without integer halving, relative to y_base
    const long double y =
        static_cast<long double>((s.t2 - s.t1) + (s.t3 - s.t4) - 2 * y_base) / 2.0L;
    const long double excess = static_cast<long double>(d - min_delay) + kWeightFloorNs;
    kept.push_back({static_cast<long double>(s.local_mid() - ref), y, 1.0L / (excess * excess)});
  }
  if (kept.size() < config_.min_samples) return cached_;

  // Weighted least squares over the kept samples.
  long double sw = 0, swx = 0, swy = 0;
  for (const auto& p : kept) {
    sw += p.w;
    swx += p.w * p.x;
    swy += p.w * p.y;
  }
  const long double mx = swx / sw, my = swy / sw;
  long double sxx = 0, sxy = 0;
  for (const auto& p : kept) {
    sxx += p.w * (p.x - mx) * (p.x - mx);
    sxy += p.w * (p.x - mx) * (p.y - my);
  }
  const bool has_slope = kept.size() >= 2 && sxx > 0;
  const long double ls_b = has_slope ? sxy / sxx : 0.0L;
  const long double ls_a = my - ls_b * mx;
  long double swr2 = 0;
  for (const auto& p : kept) {
    const long double r = p.y - (ls_a + ls_b * p.x);
    swr2 += p.w * r * r;
  }

  Line fit{ls_a, ls_b};
  if (const auto ff = floor_fit(std::move(up), std::move(lo))) fit = *ff;

  long double sr2 = 0;
  for (const auto& p : kept) {
    const long double r = p.y - (fit.a + fit.b * p.x);
    sr2 += r * r;
  }

  ClockEstimate e;
  e.ref_local = ref;
  e.offset_ns = static_cast<double>(static_cast<long double>(y_base) + fit.a);
  e.drift_ppm = static_cast<double>(fit.b * 1e6L);
  e.residual_ns = static_cast<double>(std::sqrt(sr2 / static_cast<long double>(kept.size())));
  e.min_delay_ns = min_delay;
  e.used = kept.size();
  if (has_slope && kept.size() > 2) {
    // The weights are inverse variances up to a scale, estimated from the
    // weighted residuals.
    const long double sigma0_2 = swr2 / static_cast<long double>(kept.size() - 2);
    e.drift_sd_ppm = static_cast<double>(std::sqrt(sigma0_2 / sxx) * 1e6L);
    if (!(e.drift_sd_ppm > 0)) e.drift_sd_ppm = 1e-6;  // a perfect fit, still not "unknown"
  } else {
    e.drift_sd_ppm = kNoDriftInfoPpm;
  }
  // How good the estimate is, not how noisy the samples are: the offset's
  // standard error (spread / sqrt(samples)) on a 25 us scale and the drift's on
  // a 2 ppm scale, each 0.5 at its scale.
  const double se_ns =
      e.residual_ns / std::sqrt(static_cast<double>(std::max<std::size_t>(1, e.used)));
  const double se_q = se_ns / 25'000.0, drift_q = e.drift_sd_ppm / 2.0;
  e.quality = std::min(1.0, static_cast<double>(e.used) / 32.0) / (1.0 + se_q * se_q) /
              (1.0 + drift_q * drift_q) / (1.0 + static_cast<double>(min_delay) / 50'000'000.0);
  cached_ = e;
  return cached_;
}

}  // namespace jamnet::sync
