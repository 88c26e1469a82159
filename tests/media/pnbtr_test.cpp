#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <numbers>
#include <random>
#include <vector>

#include "jamnet/media/pnbtr/concealer.hpp"
#include "jamnet/media/pnbtr/predictor.hpp"

// Allocation counting for the real-time check below. Replacing the global
// operator new affects the whole media_tests binary, so it only counts while
// a test on this thread has switched it on, and otherwise behaves like the
// default. Every form that pairs with the plain operator delete is replaced
// (nothrow included), so allocation and release always match (ASan checks).
namespace {
thread_local bool g_count_allocations = false;
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t n) noexcept {
  if (g_count_allocations) g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* counted_alloc_or_throw(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) {
  return counted_alloc_or_throw(n);
}
void* operator new[](std::size_t n) {
  return counted_alloc_or_throw(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace jamnet::media::pnbtr {
namespace {

constexpr double kRate = 48000.0;
constexpr double kPi = std::numbers::pi;

std::vector<float> sine(double hz, int n, double amp = 0.5, double phase = 0.3) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i)
    x[i] = static_cast<float>(amp * std::sin(2 * kPi * hz * i / kRate + phase));
  return x;
}

// A held chord: three notes with four harmonics each.
std::vector<float> chord(int n) {
  std::vector<float> x(n, 0.0f);
  for (double f0 : {261.63, 329.63, 392.0}) {
    for (int h = 1; h <= 4; ++h) {
      for (int i = 0; i < n; ++i) {
        x[i] += static_cast<float>(0.12 / h * std::sin(2 * kPi * f0 * h * i / kRate + h + f0));
      }
    }
  }
  return x;
}

// Music-like: notes with harmonics, sharp onsets and decays, over a bed of
// low-level noise, so the signal has transients and is never exactly
// periodic.
std::vector<float> music_like(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::uniform_int_distribution<int> key(40, 80);
  std::vector<double> acc(n, 0.0);
  for (int start = 0; start < n; start += 6000) {
    const double f0 = 440.0 * std::pow(2.0, (key(rng) - 69) / 12.0);
    const double amp = 0.1 + 0.1 * std::uniform_real_distribution<double>(0, 1)(rng);
    for (int i = start; i < std::min(n, start + 40000); ++i) {
      const double t = (i - start) / kRate;
      double v = 0;
      for (int h = 1; h <= 6; ++h)
        v += std::sin(2 * kPi * f0 * h * t + h) * std::exp(-t * (2 + h)) / h;
      acc[i] += amp * v * std::min(1.0, t * 1000);  // 1 ms attack: an onset
    }
  }
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(acc[i] + 0.002 * noise(rng));
  return x;
}

double snr_db(std::span<const float> ref, std::span<const float> y) {
  double e = 0, d = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    e += double(ref[i]) * ref[i];
    d += (double(ref[i]) - y[i]) * (double(ref[i]) - y[i]);
  }
  return 10 * std::log10(e / std::max(d, 1e-30));
}

// Feeds x[0, upto) to the predictor in blocks, then predicts n samples.
std::vector<float> predict_after(Predictor& p, const std::vector<float>& x, int upto, int n,
                                 int block = 64) {
  for (int s = 0; s + block <= upto; s += block) {
    p.observe(std::span<const float>(x.data() + s, block));
  }
  std::vector<float> y(n);
  p.predict(y);
  return y;
}

TEST(PnbtrLpc, PredictsASineFarAboveTwentyDb) {
  const auto x = sine(440.0, 20000);
  auto p = make_lpc_predictor();
  const int at = 64 * 200;
  const auto y = predict_after(*p, x, at, 64);
  EXPECT_GT(snr_db(std::span(x).subspan(at, 64), y), 30.0);
}

TEST(PnbtrLpc, PredictsAChord) {
  // Twelve partials below 1.6 kHz, two of them 0.9 Hz apart, and no common
  // period (equal temperament): much harder than a sine. Zero-fill scores
  // 0 dB here.
  const auto x = chord(20000);
  double sum = 0, worst = 1e9;
  const int starts[] = {100, 130, 170, 200, 220, 250, 290};
  for (int b : starts) {
    auto p = make_lpc_predictor();
    const auto y = predict_after(*p, x, 64 * b, 64);
    const double snr = snr_db(std::span(x).subspan(64 * b, 64), y);
    sum += snr;
    worst = std::min(worst, snr);
  }
  EXPECT_GT(sum / std::size(starts), 12.0);
  EXPECT_GT(worst, 6.0);
}

TEST(PnbtrLpc, ContinuedCallsContinueTheSameExtrapolation) {
  const auto x = sine(330.0, 20000);
  auto a = make_lpc_predictor();
  auto b = make_lpc_predictor();
  const int at = 64 * 150;
  // Same history and first block; the next 192 samples in one call or three.
  const auto first_a = predict_after(*a, x, at, 64);
  std::vector<float> rest_a(192), rest_b(192);
  a->predict(rest_a);
  const auto first_b = predict_after(*b, x, at, 64);
  for (int i = 0; i < 3; ++i) b->predict(std::span<float>(rest_b).subspan(64 * i, 64));
  for (int i = 0; i < 64; ++i) EXPECT_EQ(first_a[i], first_b[i]);
  for (int i = 0; i < 192; ++i) EXPECT_EQ(rest_a[i], rest_b[i]);
  // The extrapolation holds up over the four blocks.
  EXPECT_GT(snr_db(std::span(x).subspan(at + 64, 192), rest_a), 25.0);
}

TEST(PnbtrLpc, PeekShowsWhatPredictWillReturnWithoutConsumingIt) {
  const auto x = sine(523.25, 20000);
  auto p = make_lpc_predictor();
  const int at = 64 * 150;
  const auto y = predict_after(*p, x, at, 64);
  std::vector<float> peeked(48), next(48);
  p->peek(peeked);
  p->peek(peeked);  // twice: still the same samples
  p->predict(next);
  for (int i = 0; i < 48; ++i) EXPECT_FLOAT_EQ(peeked[i], next[i]);
  EXPECT_GT(snr_db(std::span(x).subspan(at + 64, 48), next), 25.0);
}

TEST(PnbtrLpc, PeekedSamplesDoNotShiftTheHistory) {
  // Gap, peek (as the Concealer does for its crossfade), then the real block:
  // the history must stay aligned, so the next gap is predicted as well as
  // the first one.
  const auto x = sine(440.0, 30000);
  auto p = make_lpc_predictor();
  int s = 0;
  for (; s < 64 * 150; s += 64) p->observe(std::span<const float>(x.data() + s, 64));
  std::vector<float> y(64), look(48);
  p->predict(y);  // block s is lost
  s += 64;
  p->peek(look);
  p->observe(std::span<const float>(x.data() + s, 64));
  s += 64;
  for (int i = 0; i < 10; ++i, s += 64) p->observe(std::span<const float>(x.data() + s, 64));
  p->predict(y);
  EXPECT_GT(snr_db(std::span(x).subspan(s, 64), y), 30.0);
}

TEST(PnbtrLpc, StaysBoundedAndFiniteOnHardSignals) {
  std::mt19937 rng(5);
  std::normal_distribution<float> gauss(0.0f, 0.3f);
  struct Case {
    const char* name;
    std::vector<float> x;
  };
  std::vector<Case> cases;
  const int n = 24000;
  {
    std::vector<float> v(n);
    for (auto& s : v) s = std::clamp(gauss(rng), -1.0f, 1.0f);
    cases.push_back({"white noise", v});
  }
  cases.push_back({"silence", std::vector<float>(n, 0.0f)});
  cases.push_back({"dc", std::vector<float>(n, 0.7f)});
  {
    std::vector<float> v(n);
    for (int i = 0; i < n; ++i) v[i] = (i / 55) % 2 ? 1.0f : -1.0f;  // full-scale square
    cases.push_back({"square", v});
  }
  {
    auto v = sine(1000.0, n, 1e-38);  // below the smallest normal float
    cases.push_back({"denormal", v});
  }
  {
    std::vector<float> v(n);
    for (int i = 0; i < n; ++i) v[i] = (i % 4000) == 0 ? 1.0f : 0.0f;  // clicks
    cases.push_back({"impulses", v});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto p = make_lpc_predictor();
    float peak = 0;
    int s = 0;
    for (int gap = 0; gap < 30; ++gap) {
      // Real blocks, then a gap of 1..8 blocks, then one very long gap.
      for (int k = 0; k < 10 && s + 64 <= n; ++k, s += 64) {
        p->observe(std::span<const float>(c.x.data() + s, 64));
        for (int i = 0; i < 64; ++i) peak = std::max(peak, std::abs(c.x[s + i]));
      }
      const int len = gap == 29 ? 48000 / 64 : 1 + gap % 8;
      std::vector<float> y(64);
      for (int b = 0; b < len; ++b) {
        p->predict(y);
        for (float v : y) {
          ASSERT_TRUE(std::isfinite(v));
          ASSERT_LE(std::abs(v), 4.0f * peak);
        }
      }
    }
  }
}

TEST(PnbtrLpc, SilenceGivesExactSilence) {
  auto p = make_lpc_predictor();
  const std::vector<float> zeros(64, 0.0f);
  for (int i = 0; i < 100; ++i) p->observe(zeros);
  std::vector<float> y(64, 1.0f);
  p->predict(y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(PnbtrLpc, OddConfigurationsWork) {
  // Sizes are clamped to something workable instead of failing.
  for (LpcConfig cfg : {LpcConfig{.max_block = 1, .history = 1, .order = 1, .fit_window = 1},
                        LpcConfig{.max_block = 7,
                        .history = 100,
                        .order = 300,
                        .fit_window = 64,
                        .min_pitch = 1,
                        .max_pitch = 2},
                        LpcConfig{.max_block = 2048, .order = 8, .fit_window = 4096}}) {
    auto p = make_lpc_predictor(cfg);
    const auto x = sine(200.0, 9000);
    for (int s = 0; s + 7 <= 9000; s += 7) p->observe(std::span<const float>(x.data() + s, 7));
    std::vector<float> y(cfg.max_block > 1 ? 512 : 1);
    for (int i = 0; i < 5; ++i) p->predict(y);
    for (float v : y) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(PnbtrBaselines, ZeroPredictsSilence) {
  auto p = make_zero_predictor();
  const auto x = sine(440.0, 640);
  for (int s = 0; s < 640; s += 64) p->observe(std::span<const float>(x.data() + s, 64));
  std::vector<float> y(64, 1.0f);
  p->predict(y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(PnbtrBaselines, RepeatRepeatsTheLastBlock) {
  auto p = make_repeat_predictor(128);
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i);
  p->observe(std::span<const float>(x.data(), 64));
  p->observe(std::span<const float>(x.data() + 64, 64));
  std::vector<float> y(64), peeked(64);
  p->peek(peeked);
  p->predict(y);
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(y[i], 64.0f + i);
    EXPECT_EQ(peeked[i], y[i]);
  }
  p->predict(y);  // and again
  for (int i = 0; i < 64; ++i) EXPECT_EQ(y[i], 64.0f + i);
}

TEST(PnbtrBaselines, RepeatCyclesTheLastMaxBlockSamplesForOtherSizes) {
  auto p = make_repeat_predictor(128);
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i);
  for (int s = 0; s < 256; s += 64) p->observe(std::span<const float>(x.data() + s, 64));
  std::vector<float> y(96);
  p->predict(y);  // 96 != 64: the last 128 samples, cyclically
  for (int i = 0; i < 96; ++i) EXPECT_EQ(y[i], 128.0f + i);
  p->predict(y);
  for (int i = 0; i < 96; ++i) EXPECT_EQ(y[i], 128.0f + (96 + i) % 128);
}

// The sample-to-sample steps around every splice: the gap start (the first
// concealed sample against the last real one) and the gap end (the first real
// block, including its crossfade). Reports the largest step relative to what
// is allowed there: `bound`, or the real signal's own step at that sample
// where that is bigger (a splice may step as far as the music itself does).
struct SpliceResult {
  double worst_ratio = 0;
  int splices = 0;
};

SpliceResult worst_splice_step(const std::vector<float>& x, std::unique_ptr<Predictor> predictor,
                               unsigned seed, double bound, int block = 64) {
  ConcealerConfig cfg;
  Concealer c(std::move(predictor), cfg);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> y(x.size());
  std::vector<bool> lost(x.size() / block);
  for (std::size_t b = 0; b < lost.size(); ++b) lost[b] = b > 40 && u(rng) < 0.1;
  for (std::size_t b = 0; b < lost.size(); ++b) {
    std::span<float> out(y.data() + b * block, block);
    if (lost[b]) {
      c.lost(out);
    } else {
      c.good(std::span<const float>(x.data() + b * block, block), out);
    }
  }
  SpliceResult r;
  for (std::size_t b = 1; b < lost.size(); ++b) {
    if (lost[b] == lost[b - 1]) continue;
    ++r.splices;
    const std::size_t at = b * block;
    // The splice sample and, after a gap, the whole crossfade.
    const std::size_t until = at + (lost[b] ? 1 : cfg.crossfade + 1);
    for (std::size_t n = at; n < until && n < y.size(); ++n) {
      const double allowed = std::max(bound, std::abs(double(x[n]) - x[n - 1]));
      r.worst_ratio = std::max(r.worst_ratio, std::abs(double(y[n]) - y[n - 1]) / allowed);
    }
  }
  return r;
}

double step_percentile(const std::vector<float>& x, double q) {
  std::vector<double> d(x.size() - 1);
  for (std::size_t i = 1; i < x.size(); ++i) d[i - 1] = std::abs(double(x[i]) - x[i - 1]);
  std::sort(d.begin(), d.end());
  return d[static_cast<std::size_t>(q * (d.size() - 1))];
}

TEST(PnbtrConcealer, SplicesAreAsSmoothAsTheSignalItself) {
  // Bound: three times the 99th percentile of the signal's own
  // sample-to-sample steps. A splice that stays within it cannot be heard as
  // a click; zero-fill breaks it by far (below), so the check can fail.
  for (unsigned seed : {1u, 2u, 3u}) {
    const auto x = music_like(48000 * 2, seed);
    const double bound = 3.0 * step_percentile(x, 0.99);
    const auto r = worst_splice_step(x, make_lpc_predictor(), seed, bound);
    EXPECT_GT(r.splices, 100);
    EXPECT_LE(r.worst_ratio, 1.0) << "seed " << seed;

    const auto z = worst_splice_step(x, make_zero_predictor(), seed, bound);
    EXPECT_GT(z.worst_ratio, 1.5) << "zero-fill should click, seed " << seed;
    const auto rep = worst_splice_step(x, make_repeat_predictor(512), seed, bound);
    EXPECT_GT(rep.worst_ratio, 1.5) << "repetition should click, seed " << seed;
  }
}

TEST(PnbtrConcealer, PassesRealBlocksThroughAndCrossfadesAfterAGap) {
  const auto x = sine(440.0, 64 * 40);
  Concealer c(make_lpc_predictor(), ConcealerConfig{.crossfade = 48});
  std::vector<float> y(x.size());
  for (int b = 0; b < 40; ++b) {
    std::span<float> out(y.data() + b * 64, 64);
    if (b == 30) {
      c.lost(out);
    } else {
      c.good(std::span<const float>(x.data() + b * 64, 64), out);
    }
  }
  for (int i = 0; i < 30 * 64; ++i) ASSERT_EQ(y[i], x[i]);
  // After the crossfade, the real signal exactly; during it, close to it.
  for (int i = 31 * 64 + 48; i < 40 * 64; ++i) ASSERT_EQ(y[i], x[i]);
  EXPECT_GT(snr_db(std::span(x).subspan(30 * 64, 112), std::span(y).subspan(30 * 64, 112)), 30.0);
}

TEST(PnbtrConcealer, GoodMayWorkInPlace) {
  const auto x = sine(440.0, 64 * 20);
  Concealer a(make_lpc_predictor()), b(make_lpc_predictor());
  std::vector<float> ya(64), inplace(64);
  for (int k = 0; k < 20; ++k) {
    std::span<const float> in(x.data() + k * 64, 64);
    if (k == 12) {
      a.lost(ya);
      b.lost(inplace);
      continue;
    }
    a.good(in, ya);
    std::copy(in.begin(), in.end(), inplace.begin());
    b.good(inplace, inplace);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(ya[i], inplace[i]);
  }
}

TEST(PnbtrConcealer, LongGapsFadeToExactSilence) {
  const ConcealerConfig cfg{
      .max_block = 64, .crossfade = 48, .fade_after = 960, .fade_length = 1920};
  Concealer c(make_lpc_predictor(), cfg);
  const auto x = sine(440.0, 64 * 100);
  std::vector<float> y(64);
  for (int b = 0; b < 100; ++b) c.good(std::span<const float>(x.data() + b * 64, 64), y);
  std::vector<float> gap;
  for (int b = 0; b < 100; ++b) {
    c.lost(y);
    gap.insert(gap.end(), y.begin(), y.end());
  }
  const int silent_from = cfg.fade_after + cfg.fade_length;
  // Full level first (a sine continues at its amplitude) ...
  float early = 0;
  for (int i = 0; i < cfg.fade_after; ++i) early = std::max(early, std::abs(gap[i]));
  EXPECT_GT(early, 0.4f);
  // ... a fade that only goes down ...
  float fading = 0;
  for (int i = cfg.fade_after + cfg.fade_length / 2; i < silent_from; ++i) {
    fading = std::max(fading, std::abs(gap[i]));
  }
  EXPECT_LT(fading, 0.5f * early);
  // ... and exact zeros after it.
  for (std::size_t i = silent_from; i < gap.size(); ++i) ASSERT_EQ(gap[i], 0.0f) << i;
  // 2880 samples = 45 blocks; blocks 45..99 are silent.
  EXPECT_EQ(c.stats().silent_blocks, 55u);
}

TEST(PnbtrConcealer, CountsBlocksGapsAndSilence) {
  const ConcealerConfig cfg{.max_block = 64, .crossfade = 16, .fade_after = 64, .fade_length = 64};
  Concealer c(make_repeat_predictor(64), cfg);
  const auto x = sine(440.0, 64);
  std::vector<float> y(64);
  // good x3, lost x1, good, lost x5 (silent after 2 blocks), good x2, lost x2
  const char* pattern = "GGGLGLLLLLGGLL";
  for (const char* p = pattern; *p; ++p) {
    if (*p == 'G') {
      c.good(x, y);
    } else {
      c.lost(y);
    }
  }
  EXPECT_EQ(c.stats().blocks, 14u);
  EXPECT_EQ(c.stats().concealed_blocks, 8u);
  EXPECT_EQ(c.stats().gaps, 3u);
  EXPECT_EQ(c.stats().silent_blocks, 3u);
}

TEST(PnbtrConcealer, NoAllocationAfterConstruction) {
  const auto x = music_like(48000, 9);
  for (auto make : {+[] { return make_lpc_predictor(); }, +[] { return make_zero_predictor(); },
                    +[] { return make_repeat_predictor(512); }}) {
    Concealer c(make());
    std::vector<float> y(128);
    std::mt19937 rng(3);
    g_allocations = 0;
    g_count_allocations = true;
    for (std::size_t s = 0; s + 128 <= x.size(); s += 128) {
      if (rng() % 5 == 0) {
        c.lost(y);
      } else {
        c.good(std::span<const float>(x.data() + s, 128), y);
      }
    }
    g_count_allocations = false;
    EXPECT_EQ(g_allocations.load(), 0) << c.predictor().name();
    EXPECT_GT(c.stats().gaps, 10u);
  }
}

TEST(PnbtrConcealer, BeatsZeroFillAndRepeatOnMusicLikeAudio) {
  // Error energy over the concealed blocks and their crossfades, at 10% loss.
  const auto x = music_like(48000 * 4, 21);
  auto error = [&](std::unique_ptr<Predictor> p) {
    Concealer c(std::move(p));
    std::mt19937 rng(8);
    std::vector<float> y(64);
    double err = 0;
    for (std::size_t s = 0; s + 64 <= x.size(); s += 64) {
      const bool lost = s > 64 * 40 && rng() % 10 == 0;
      if (lost) {
        c.lost(y);
      } else {
        c.good(std::span<const float>(x.data() + s, 64), y);
      }
      for (int i = 0; i < 64; ++i) err += (double(y[i]) - x[s + i]) * (double(y[i]) - x[s + i]);
    }
    return err;
  };
  const double lpc = error(make_lpc_predictor());
  const double zero = error(make_zero_predictor());
  const double repeat = error(make_repeat_predictor(512));
  EXPECT_LT(lpc, 0.5 * zero);  // at least 3 dB better
  EXPECT_LT(lpc, 0.5 * repeat);
}

}  // namespace
}  // namespace jamnet::media::pnbtr
