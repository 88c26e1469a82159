// Burg linear prediction plus pitch-period extension (docs/pnbtr.md).
//
// Everything that sizes memory happens in the constructor; observe() and
// predict() only touch preallocated arrays. The expensive part (Burg fit,
// pitch search, backtest) runs once per gap, on the first predict() after an
// observe().
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "jamnet/media/pnbtr/lpc.hpp"
#include "jamnet/media/pnbtr/predictor.hpp"

namespace jamnet::media::pnbtr {
namespace {

// Samples over which a pitch continuation takes over from the AR one at the
// gap start, and over which the total gain moves from 1 to the backtest's.
constexpr int kPitchBlend = 32;
constexpr int kGainRamp = kPitchBlend;
// Pitch search: decimation factor, template length (full-rate samples) and
// how many candidate lags go on to the backtest.
constexpr int kDecimate = 8;
constexpr int kTemplate = 256;
constexpr int kPitchCandidates = 3;
// Lags whose normalised correlation is below this are not worth a backtest.
constexpr double kMinPitchScore = 0.3;
// Longest backtest (samples predicted from older history to judge a method).
constexpr int kMaxBacktest = 256;
// The Burg fit's white-noise floor (relative to each stage's error power), and
// the residual, relative to the signal, at which it stops.
constexpr BurgLimits kBurgLimits{
    .floor_scale = 1.0 + 1e-9, .min_power_rel = 1e-30, .min_power = 1e-300};
// Shrinks the mixing weights a little toward zero (ridge regression).
constexpr double kRidge = 0.02;
// History below this peak level is treated as silence (about -240 dBFS).
constexpr double kSilence = 1e-12;

// Two doubles: SSE2 on every x86-64, NEON on arm64; GCC lowers it elsewhere.
using V2 = double __attribute__((vector_size(16)));
inline V2 load2(const double* p) noexcept {
  V2 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline double sum2(V2 v) noexcept {
  return v[0] + v[1];
}

// Dot product with independent partial sums (fixed order, so results do not
// depend on the compiler's vectoriser).
double dot(const double* a, const double* b, int n) noexcept {
  V2 s0 = {0, 0}, s1 = {0, 0};
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += load2(a + i) * load2(b + i);
    s1 += load2(a + i + 2) * load2(b + i + 2);
  }
  double s = sum2(s0 + s1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

double raised_cosine(int i, int n) noexcept {
  return 0.5 - 0.5 * std::cos(std::numbers::pi * (i + 0.5) / n);
}

// Non-negative least squares for a handful of unknowns: w >= 0 minimising
// |target - sum w_i c_i|^2 + ridge * sum w_i^2 |c_i|^2, given the Gram matrix
// g (row stride kMax) and r_i = <c_i, target>. Active-set: solve, drop the
// most negative weight, repeat. Returns the residual energy (xx = |target|^2).
constexpr int kMaxMix = 1 + kPitchCandidates;
double nnls(const double (&g)[kMaxMix][kMaxMix], const double* r, int n, double ridge, double xx,
            double* w) noexcept {
  bool active[kMaxMix];
  for (int i = 0; i < n; ++i) active[i] = g[i][i] > 0 && r[i] > 0;
  for (int round = 0; round < n; ++round) {
    int idx[kMaxMix];
    int m = 0;
    for (int i = 0; i < n; ++i) {
      if (active[i]) idx[m++] = i;
    }
    double a[kMaxMix][kMaxMix + 1];
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < m; ++j) a[i][j] = g[idx[i]][idx[j]];
      a[i][i] *= 1.0 + ridge;
      a[i][m] = r[idx[i]];
    }
    // Gaussian elimination with partial pivoting.
    bool singular = false;
    for (int c = 0; c < m && !singular; ++c) {
      int piv = c;
      for (int i = c + 1; i < m; ++i) {
        if (std::abs(a[i][c]) > std::abs(a[piv][c])) piv = i;
      }
      if (!(std::abs(a[piv][c]) > 1e-300)) {
        singular = true;
        break;
      }
      for (int j = 0; j <= m; ++j) std::swap(a[c][j], a[piv][j]);
      for (int i = c + 1; i < m; ++i) {
        const double q = a[i][c] / a[c][c];
        for (int j = c; j <= m; ++j) a[i][j] -= q * a[c][j];
      }
    }
    double sol[kMaxMix] = {};
    if (!singular) {
      for (int i = m - 1; i >= 0; --i) {
        double s = a[i][m];
        for (int j = i + 1; j < m; ++j) s -= a[i][j] * sol[j];
        sol[i] = s / a[i][i];
      }
    }
    int worst = -1;
    for (int i = 0; i < m; ++i) {
      if (singular || sol[i] < 0) {
        if (worst < 0 || sol[i] < sol[worst]) worst = i;
      }
    }
    if (worst >= 0) {
      active[idx[singular ? m - 1 : worst]] = false;
      continue;
    }
    for (int i = 0; i < n; ++i) w[i] = 0;
    for (int i = 0; i < m; ++i) w[idx[i]] = std::min(sol[i], 1.0);
    break;
  }
  double e = xx;
  for (int i = 0; i < n; ++i) {
    e -= 2 * w[i] * r[i];
    for (int j = 0; j < n; ++j) e += w[i] * w[j] * g[i][j];
  }
  return e;
}

class LpcPredictor final : public Predictor {
 public:
  explicit LpcPredictor(const LpcConfig& config) : cfg_(sanitise(config)) {
    hist_ = cfg_.history;
    const int p = cfg_.order;
    const int fw = cfg_.fit_window;
    ring_.assign(2 * static_cast<std::size_t>(hist_), 0.0f);
    work_.assign(work_size(cfg_), 0.0);
    for (auto* v : {&f_, &b_}) v->assign(fw, 0.0);
    a_.assign(p + 1, 0.0);
    a_tmp_.assign(p + 1, 0.0);
    // AR state (the last `order` samples) followed by room for a block.
    ar_.assign(p + std::max(cfg_.max_block, kMaxBacktest), 0.0);
    peek_ar_.assign(ar_.size(), 0.0);
    bt_.assign(static_cast<std::size_t>(kMaxMix) * kMaxBacktest, 0.0);
    dec_.assign((kTemplate + cfg_.max_pitch) / kDecimate + 1, 0.0);
    for (int i = 0; i < kPitchBlend; ++i) ramp_[i] = raised_cosine(i, kPitchBlend);
  }

  std::string_view name() const noexcept override { return "pnbtr-lpc"; }

  void reset() noexcept override {
    std::fill(ring_.begin(), ring_.end(), 0.0f);
    pos_ = 0;
    count_ = 0;
    in_gap_ = false;
    silent_ = true;
  }

  void observe(std::span<const float> block) noexcept override {
    in_gap_ = false;
    push(block.data(), static_cast<int>(block.size()));
  }

  void predict(std::span<float> out) noexcept override {
    std::size_t done = 0;
    while (done < out.size()) {
      const int n = static_cast<int>(std::min<std::size_t>(out.size() - done, cfg_.max_block));
      if (!in_gap_) {
        in_gap_ = true;
        start_gap(n);
      }
      generate(out.data() + done, n, ar_.data());
      std::memmove(ar_.data(), ar_.data() + n, sizeof(double) * order_);
      gap_pos_ += n;
      // A gap of hours (the Concealer has long faded it out) ends in silence
      // rather than letting the index overflow.
      if (gap_pos_ > (1 << 30)) silent_ = true;
      // The prediction stands in for the missing samples in the history, so
      // the next gap's fit sees a continuous signal.
      push(out.data() + done, n);
      done += n;
    }
  }

  void peek(std::span<float> out) noexcept override {
    const int n = static_cast<int>(std::min<std::size_t>(out.size(), cfg_.max_block));
    if (!in_gap_) {
      in_gap_ = true;
      start_gap(n);
    }
    // The same continuation, run on a copy of the AR state.
    std::copy(ar_.begin(), ar_.begin() + order_, peek_ar_.begin());
    generate(out.data(), n, peek_ar_.data());
    std::fill(out.begin() + n, out.end(), 0.0f);
  }

 private:
  // A continuation that repeats the last `lag` samples before `end` of the
  // work buffer (which stays untouched for the whole gap).
  struct PitchCandidate {
    int lag = 0;
    int end = 0;
    double weight = 0;
  };

  // History the fit and the pitch search read, with the backtest block.
  static int work_size(const LpcConfig& c) {
    return std::max(c.fit_window, c.max_pitch + kTemplate + kPitchBlend) + kMaxBacktest;
  }

  static LpcConfig sanitise(LpcConfig c) {
    c.max_block = std::clamp(c.max_block, 1, 1 << 16);
    c.order = std::clamp(c.order, 1, 1024);
    c.fit_window = std::max(c.fit_window, 2 * c.order + 4);
    c.min_pitch = std::max(c.min_pitch, 2 * kDecimate);
    c.max_pitch = std::max(c.max_pitch, c.min_pitch + kDecimate);
    // Room for the fit and the backtest, and for the pitch search.
    c.history = std::max(c.history, work_size(c));
    return c;
  }

  // Appends samples to the history ring. Each sample is written twice, so the
  // newest hist_ samples are always contiguous at ring_[pos_ .. pos_ + hist_).
  void push(const float* x, int n) noexcept {
    if (n > hist_) {
      x += n - hist_;
      n = hist_;
    }
    for (int i = 0; i < n; ++i) {
      ring_[pos_] = x[i];
      ring_[pos_ + hist_] = x[i];
      if (++pos_ == hist_) pos_ = 0;
    }
    count_ = std::min(count_ + n, hist_);
  }

  double* bt(int i) noexcept { return bt_.data() + static_cast<std::size_t>(i) * kMaxBacktest; }

  void start_gap(int first_block) noexcept {
    silent_ = true;
    gap_pos_ = 0;
    n_pitch_ = 0;
    w_ar_ = 0;
    // Backtest horizon: the block that starts the gap.
    const int h = std::clamp(first_block, 16, kMaxBacktest);
    const int nfit = std::min(count_ - h, cfg_.fit_window);
    if (nfit < 16) return;

    // Only what the fit and the pitch search need, as doubles, oldest first:
    // x[n-1] is the newest sample.
    const int n = std::min(count_, work_size(cfg_));
    const float* src = ring_.data() + pos_ + hist_ - n;
    double* x = work_.data();
    for (int i = 0; i < n; ++i) x[i] = src[i];
    double peak = 0;
    for (int i = n - h - nfit; i < n; ++i) peak = std::max(peak, std::abs(x[i]));
    if (!(peak > kSilence)) return;
    limit_ = 2.0 * peak;
    silent_ = false;

    // Fit on the history before the backtest block, so the backtest is an
    // honest out-of-sample test. The model is then h samples older than the
    // gap, which costs little with a fit window of many blocks.
    const int order_cap = std::min(cfg_.order, nfit / 2 - 1);
    order_ = burg(x + n - h - nfit, nfit, order_cap, kBurgLimits, f_.data(), b_.data(), 1,
                  a_.data(), a_tmp_.data());
    const double* target = x + n - h;
    const double xx = dot(target, target, h);

    // Candidate 0: the AR continuation of the history before the backtest block.
    std::copy(x + n - h - order_, x + n - h, peek_ar_.begin());
    run_ar(peek_ar_.data(), h);
    double* ar = bt(0);
    std::copy(peek_ar_.begin() + order_, peek_ar_.begin() + order_ + h, ar);
    // Candidates 1..: pitch continuations, AR for the first samples.
    int lags[kPitchCandidates];
    const int nlags = find_pitch(x, n - h, lags);
    for (int c = 0; c < nlags; ++c) {
      PitchCandidate& pc = pitch_[c];
      pc.lag = lags[c];
      pc.end = n - h;
      double* q = bt(1 + c);
      for (int t = 0; t < h; ++t) q[t] = pitch_sample(pc, t, ar[t]);
    }
    // The mix of candidates that best predicted the backtest block. A
    // prediction that does not correlate with the truth costs more than
    // silence, so weak ones get small weights.
    const int nc = 1 + nlags;
    double g[kMaxMix][kMaxMix] = {};
    double r[kMaxMix] = {};
    for (int i = 0; i < nc; ++i) {
      r[i] = dot(bt(i), target, h);
      for (int j = 0; j <= i; ++j) g[i][j] = g[j][i] = dot(bt(i), bt(j), h);
    }
    double w[kMaxMix] = {};
    nnls(g, r, nc, kRidge, xx, w);
    w_ar_ = w[0];
    for (int c = 0; c < nlags; ++c) {
      if (w[1 + c] <= 0) continue;
      pitch_[n_pitch_] = pitch_[c];
      pitch_[n_pitch_].weight = w[1 + c];
      pitch_[n_pitch_].end = n;  // the real continuation repeats from the history end
      ++n_pitch_;
    }

    // The real continuation starts from the history's end.
    std::copy(x + n - order_, x + n, ar_.begin());
  }

  // Runs the AR filter on: s[0..order) is its state (oldest first); writes
  // s[order .. order + n), each sample within the limiter.
  void run_ar(double* s, int n) const noexcept {
    for (int i = 0; i < n; ++i)
      s[order_ + i] =
          std::clamp(lpc_next(a_.data(), order_, s + order_ + i - 1, -1), -limit_, limit_);
  }

  // Sample i of a pitch continuation: x[end - T + (i mod T)], taking over
  // from the AR continuation over the first samples. Each repeated period's
  // last samples are blended into the ones that really preceded its start,
  // so that the period wraps without a step.
  double pitch_sample(const PitchCandidate& pc, int i, double ar) const noexcept {
    const double* x = work_.data();
    const int t = pc.lag;
    const int j = i % t;
    const int l = std::min(kPitchBlend, t / 2);
    double p = x[pc.end - t + j];
    if (j >= t - l) {
      const int u = j - (t - l);
      const double w = l == kPitchBlend ? ramp_[u] : raised_cosine(u, l);
      p += w * (x[pc.end - t - l + (j - (t - l))] - p);
    }
    if (i >= kPitchBlend) return p;
    return ar + ramp_[i] * (p - ar);
  }

  // The next n samples of the mixed continuation, from the AR state in
  // s[0..order) (which it extends by n samples). Does not move the gap on.
  void generate(float* out, int n, double* s) noexcept {
    if (silent_) {
      std::fill(out, out + n, 0.0f);
      return;
    }
    run_ar(s, n);
    double wsum = w_ar_;
    for (int c = 0; c < n_pitch_; ++c) wsum += pitch_[c].weight;
    double ar_peak = 0;
    for (int i = 0; i < n; ++i) {
      const double ar = s[order_ + i];
      const int g = gap_pos_ + i;
      double y = w_ar_ * ar;
      for (int c = 0; c < n_pitch_; ++c) y += pitch_[c].weight * pitch_sample(pitch_[c], g, ar);
      if (g < kGainRamp) {
        // Start at unity total gain, where the signal was, and move to the
        // backtest's gain.
        const double r = ramp_[g];
        y = wsum > 1e-9 ? y * ((1.0 - r) / wsum + r) : (1.0 - r) * ar;
      }
      out[i] = static_cast<float>(std::clamp(y, -limit_, limit_));
      ar_peak = std::max(ar_peak, std::abs(ar));
    }
    // An AR continuation that has died away is zeroed before it sinks into
    // subnormal numbers, which are slow on many CPUs.
    if (ar_peak < kSilence * limit_) std::fill(s + n, s + n + order_, 0.0);
  }

  // Candidate periods (normalised autocorrelation) of the history ending at
  // x[end]: a coarse search at 1/kDecimate rate over [min_pitch, max_pitch],
  // refined at full rate around the best coarse local maxima. Returns how
  // many were written to lags (best first).
  int find_pitch(const double* x, int end, int* lags) noexcept {
    const int tl = kTemplate;
    const int maxp = std::min(cfg_.max_pitch, end - tl - kPitchBlend);
    const int minp = cfg_.min_pitch;
    const int ncand = kPitchCandidates;
    if (maxp < minp || ncand <= 0) return 0;
    // Coarse: box-filter decimation of the last tl + maxp samples.
    const int span = (tl + maxp) / kDecimate;
    const int start = end - span * kDecimate;
    double* d = dec_.data();
    for (int i = 0; i < span; ++i) {
      const double* s = x + start + i * kDecimate;
      double acc = 0;
      for (int j = 0; j < kDecimate; ++j) acc += s[j];
      d[i] = acc;
    }
    const int dtl = tl / kDecimate;
    const double* tmpl = d + span - dtl;
    const double e0 = dot(tmpl, tmpl, dtl);
    if (!(e0 > 0)) return 0;
    const int lo = (minp + kDecimate - 1) / kDecimate, hi = maxp / kDecimate;
    std::array<int, kPitchCandidates> cand{};
    std::array<double, kPitchCandidates> cscore{};
    cscore.fill(-1.0);
    auto insert = [&](int lag, double s) {
      int i = ncand - 1;
      if (s <= cscore[i]) return;
      while (i > 0 && cscore[i - 1] < s) {
        cand[i] = cand[i - 1];
        cscore[i] = cscore[i - 1];
        --i;
      }
      cand[i] = lag;
      cscore[i] = s;
    };
    // Energy of the lagged window, updated as the lag grows.
    double el = dot(tmpl - lo, tmpl - lo, dtl);
    double prev2 = -2, prev1 = -2;
    for (int lag = lo; lag <= hi; ++lag) {
      if (lag > lo) {
        const double in = tmpl[-lag], outv = tmpl[dtl - lag];
        el += in * in - outv * outv;
      }
      const double c = dot(tmpl, tmpl - lag, dtl);
      const double score = c > 0 ? c / std::sqrt(e0 * std::max(el, 1e-300)) : -1;
      // Keep local maxima (checked one lag late).
      if (lag > lo + 1 && prev1 >= prev2 && prev1 >= score) insert(lag - 1, prev1);
      prev2 = prev1;
      prev1 = score;
    }
    insert(hi, prev1);
    // Fine: full rate around each candidate.
    const double* ft = x + end - tl;
    const double fe0 = dot(ft, ft, tl);
    int found = 0;
    for (int c = 0; c < ncand; ++c) {
      if (cand[c] == 0) continue;
      const int centre = cand[c] * kDecimate;
      int best = 0;
      double best_score = kMinPitchScore;
      const int t0 = std::max(minp, centre - kDecimate);
      const int t1 = std::min(maxp, centre + kDecimate);
      // Energy of the lagged window x[end-tl-t .. end-t), slid along with t.
      double et = dot(ft - t0, ft - t0, tl);
      for (int t = t0; t <= t1; ++t) {
        if (t > t0) et += ft[-t] * ft[-t] - ft[tl - t] * ft[tl - t];
        const double cc = dot(ft, ft - t, tl);
        if (cc <= 0) continue;
        const double s = cc / std::sqrt(fe0 * std::max(et, 1e-300));
        if (s > best_score) {
          best_score = s;
          best = t;
        }
      }
      bool dup = false;
      for (int i = 0; i < found; ++i) dup = dup || lags[i] == best;
      if (best > 0 && !dup) lags[found++] = best;
    }
    return found;
  }

  LpcConfig cfg_;
  int hist_ = 0;
  std::vector<float> ring_;
  int pos_ = 0;
  int count_ = 0;

  bool in_gap_ = false;
  bool silent_ = true;
  int gap_pos_ = 0;
  int order_ = 0;
  double limit_ = 0;
  double w_ar_ = 0;
  std::array<PitchCandidate, kPitchCandidates> pitch_;
  std::array<double, kPitchBlend> ramp_{};  // raised cosine 0 -> 1
  int n_pitch_ = 0;

  std::vector<double> work_, f_, b_, a_, a_tmp_, ar_, peek_ar_, bt_, dec_;
};

}  // namespace

std::unique_ptr<Predictor> make_lpc_predictor(const LpcConfig& config) {
  return std::make_unique<LpcPredictor>(config);
}

}  // namespace jamnet::media::pnbtr
