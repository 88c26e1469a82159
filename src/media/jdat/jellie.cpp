// JELLIE: E/O/P/Q streams of one mono signal (docs/jdat.md, "JELLIE").
#include "jamnet/media/jdat/jellie.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <utility>

#include "jamnet/media/pnbtr/lpc.hpp"

namespace jamnet::media::jdat {

namespace pj = protocol::jdat;

namespace {

// --- GF(2^8), polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d, as in RAID-6) ---

constexpr std::uint8_t gf_mul(std::uint8_t a, std::uint8_t b) noexcept {
  unsigned r = 0, x = a;
  for (; b != 0; b >>= 1) {
    if (b & 1) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  return static_cast<std::uint8_t>(r);
}

constexpr std::uint8_t gf_inverse(std::uint8_t a) noexcept {
  for (unsigned x = 1; x < 256; ++x)
    if (gf_mul(a, static_cast<std::uint8_t>(x)) == 1) return static_cast<std::uint8_t>(x);
  return 0;
}

// x / 3 for every byte x: P xor Q = O xor 2*O = 3*O.
constexpr std::array<std::uint8_t, 256> kDiv3 = [] {
  std::array<std::uint8_t, 256> t{};
  const std::uint8_t inv3 = gf_inverse(3);
  for (unsigned x = 0; x < 256; ++x) t[x] = gf_mul(static_cast<std::uint8_t>(x), inv3);
  return t;
}();
static_assert(gf_mul(3, gf_inverse(3)) == 1);
static_assert(gf_inverse(2) == 0x8e);

// 2*x for the four bytes of a word at once.
constexpr std::uint32_t mul2(std::uint32_t w) noexcept {
  return ((w & 0x7f7f7f7fu) << 1) ^ (((w >> 7) & 0x01010101u) * 0x1du);
}
// x/2 = x * 0x8e for the four bytes of a word at once.
constexpr std::uint32_t div2(std::uint32_t w) noexcept {
  return ((w >> 1) & 0x7f7f7f7fu) ^ ((w & 0x01010101u) * 0x8eu);
}
constexpr std::uint32_t div3(std::uint32_t w) noexcept {
  return std::uint32_t{kDiv3[w & 0xff]} | std::uint32_t{kDiv3[(w >> 8) & 0xff]} << 8 |
         std::uint32_t{kDiv3[(w >> 16) & 0xff]} << 16 | std::uint32_t{kDiv3[w >> 24]} << 24;
}
static_assert(div2(mul2(0x01804fffu)) == 0x01804fffu);
static_assert(div3(mul2(0x12345678u) ^ 0x12345678u) == 0x12345678u);

std::uint32_t word_mask(SampleFormat f) noexcept {
  const std::size_t bytes = pj::bytes_per_sample(f);
  return bytes >= 4 ? 0xFFFFFFFFu : (1u << (8 * bytes)) - 1u;
}

// Half-rate samples the linear predictor is fitted on, and how many new ones
// make it due for a refit.
constexpr int kMaxFit = 128;
constexpr int kRefit = 256;
// A cached predictor whose residual on new samples grew by more than this
// factor is refitted.
constexpr double kRefitGain = 4.0;
// The fit stops once the residual is negligible: a pure tone is predicted
// almost exactly by a low order, and fitting rounding noise helps nothing.
constexpr pnbtr::BurgLimits kBurgLimits{.min_power_rel = 1e-12, .min_power = 1e-30};

// Energies of the prediction error and of the signal over a[from, to), each
// sample predicted from the `order` before it.
std::pair<double, double> residual_energy(const double* ar, int order, const double* a, int from,
                                          int to) noexcept {
  double err = 0.0, sig = 0.0;
  for (int m = from; m < to; ++m) {
    const double e = a[m] - pnbtr::lpc_next(ar, order, a + m - 1, -1);
    err += e * e;
    sig += a[m] * a[m];
  }
  return {err, sig};
}

double bessel_i0(double x) noexcept {
  double sum = 1.0, term = 1.0;
  for (int k = 1; k < 64; ++k) {
    term *= (x / (2.0 * k)) * (x / (2.0 * k));
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

}  // namespace

void JellieEncoder::encode(std::span<const float> block,
                           std::array<std::span<std::uint32_t>, 4> streams) const noexcept {
  std::size_t n = block.size() / 2;
  for (const auto& s : streams) n = std::min(n, s.size());
  const std::uint32_t mask = word_mask(format_);
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint32_t e = pj::to_word(format_, block[2 * k]);
    const std::uint32_t o = pj::to_word(format_, block[2 * k + 1]);
    streams[0][k] = e;
    streams[1][k] = o;
    streams[2][k] = e ^ o;
    streams[3][k] = (e ^ mul2(o)) & mask;
  }
}

JellieDecoder::JellieDecoder(SampleFormat format, int max_frames)
    : format_(format), max_frames_(std::clamp(max_frames, 2, 1 << 16) & ~1) {
  const std::size_t half = static_cast<std::size_t>(max_frames_ / 2);
  history_.assign(kHistory, 0.0f);
  scratch_e_.assign(half, 0);
  scratch_o_.assign(half, 0);
  // Left edge (history or backward prediction), the block, the right edge.
  work_.assign(kHistory / 2 + (kTaps + 1) + half + (kTaps + 1), 0.0);
  fwd_.assign(kMaxFit, 0.0);
  bwd_.assign(kMaxFit, 0.0);
  // Half-band interpolator: the missing sample between two known ones is
  // sum_j taps_[j] * (left_j + right_j), left_j/right_j the known samples
  // 2j+1 full-rate samples away. Windowed sinc (Kaiser, beta 9: stopband
  // near -90 dB), normalised so DC passes exactly.
  constexpr double kBeta = 9.0;
  const double span = 2.0 * kTaps;
  double sum = 0.0;
  for (int j = 0; j < kTaps; ++j) {
    const double d = 2.0 * j + 1.0;
    const double x = d / 2.0;
    const double sinc = std::sin(std::numbers::pi * x) / (std::numbers::pi * x);
    const double r = d / span;
    const double w = bessel_i0(kBeta * std::sqrt(std::max(0.0, 1.0 - r * r))) / bessel_i0(kBeta);
    taps_[static_cast<std::size_t>(j)] = sinc * w;
    sum += 2.0 * sinc * w;
  }
  for (auto& t : taps_) t /= sum;
}

void JellieDecoder::remember(std::span<const float> block) noexcept {
  const std::size_t n = block.size();
  if (n >= history_.size()) {
    std::copy(block.end() - static_cast<std::ptrdiff_t>(history_.size()), block.end(),
              history_.begin());
  } else {
    std::copy(history_.begin() + static_cast<std::ptrdiff_t>(n), history_.end(), history_.begin());
    std::copy(block.begin(), block.end(), history_.end() - static_cast<std::ptrdiff_t>(n));
  }
}

void JellieDecoder::set_history(std::span<const float> played) noexcept {
  remember(played);
  history_valid_ = std::min<int>(kHistory, static_cast<int>(played.size()) & ~1);
}

JellieOutcome JellieDecoder::decode(std::array<std::span<const std::uint32_t>, 4> streams,
                                    std::array<bool, 4> present, std::span<float> out) noexcept {
  const std::size_t frames = out.size();
  const std::size_t n = frames / 2;
  auto lost = [&] {
    std::fill(out.begin(), out.end(), 0.0f);
    remember(out);
    history_valid_ = 0;
    model_age_ += static_cast<int>(frames / 2);
    return JellieOutcome::kLost;
  };
  if (frames % 2 != 0 || frames > static_cast<std::size_t>(max_frames_)) return lost();
  bool have[4];
  int count = 0;
  for (int i = 0; i < 4; ++i) {
    have[i] =
        present[static_cast<std::size_t>(i)] && streams[static_cast<std::size_t>(i)].size() >= n;
    count += have[i];
  }
  const auto& s_e = streams[0];
  const auto& s_o = streams[1];
  const auto& s_p = streams[2];
  const auto& s_q = streams[3];
  const std::uint32_t mask = word_mask(format_);

  if (count >= 2) {
    std::uint32_t* e = scratch_e_.data();
    std::uint32_t* o = scratch_o_.data();
    if (have[0] && have[1]) {
      for (std::size_t k = 0; k < n; ++k) e[k] = s_e[k], o[k] = s_o[k];
    } else if (have[0] && have[2]) {  // O = P ^ E
      for (std::size_t k = 0; k < n; ++k) e[k] = s_e[k], o[k] = s_p[k] ^ s_e[k];
    } else if (have[0]) {  // O = (Q ^ E) / 2
      for (std::size_t k = 0; k < n; ++k) e[k] = s_e[k], o[k] = div2(s_q[k] ^ s_e[k]);
    } else if (have[1] && have[2]) {  // E = P ^ O
      for (std::size_t k = 0; k < n; ++k) o[k] = s_o[k], e[k] = s_p[k] ^ s_o[k];
    } else if (have[1]) {  // E = Q ^ 2*O
      for (std::size_t k = 0; k < n; ++k) o[k] = s_o[k], e[k] = s_q[k] ^ mul2(s_o[k]);
    } else {  // P ^ Q = 3*O, E = P ^ O
      for (std::size_t k = 0; k < n; ++k) {
        o[k] = div3(s_p[k] ^ s_q[k]);
        e[k] = s_p[k] ^ o[k];
      }
    }
    for (std::size_t k = 0; k < n; ++k) {
      out[2 * k] = pj::from_word(format_, e[k] & mask);
      out[2 * k + 1] = pj::from_word(format_, o[k] & mask);
    }
    remember(out);
    history_valid_ = std::min<int>(kHistory, history_valid_ + static_cast<int>(frames));
    model_age_ += static_cast<int>(n);
    return JellieOutcome::kExact;
  }
  if (count == 1 && (have[0] || have[1])) {
    interpolate(have[0] ? 0 : 1, have[0] ? s_e.first(n) : s_o.first(n), out);
    remember(out);
    history_valid_ = std::min<int>(kHistory, history_valid_ + static_cast<int>(frames));
    model_age_ += static_cast<int>(n);
    return JellieOutcome::kInterpolated;
  }
  return lost();
}

// Burg's method on the newest known half-rate samples (at most kMaxFit of
// them: the right edge matters most, and the cost stays bounded), a[m] for
// m in [-context, n). Not refitted per block (interpolate() decides): the
// spectrum mostly changes slowly, and small blocks would pay a full fit each.
void JellieDecoder::fit(const double* a, int context, int n) noexcept {
  const int fit_begin = std::max(-context, n - kMaxFit);
  const int len = n - fit_begin;
  const int order = std::min(kOrder, len / 2);
  ar_.fill(0.0);
  std::array<double, kOrder + 1> tmp;
  pnbtr::burg(a + fit_begin, len, order, kBurgLimits, fwd_.data(), bwd_.data(), 1, ar_.data(),
              tmp.data());
  model_order_ = order;
  model_age_ = 0;
  // Residual power relative to signal power, over the samples with a full
  // predictor behind them.
  const auto [err, sig] = residual_energy(ar_.data(), order, a, fit_begin + order, n);
  model_residual_ = sig > 0.0 ? err / sig : 0.0;
}

// The known half a[m] = x[2m + parity] (m = 0..n-1) lies in work_ at base;
// the missing sample between a[m-1+(1-parity)] and its right neighbour is
//   y[m] = sum_j taps_[j] * (a[m - parity - j] + a[m + 1 - parity + j]).
// It needs kTaps known samples on either side of the block: on the left the
// same-parity half of the history (or, without history, a backward linear
// prediction), on the right a forward linear prediction (no lookahead).
// The predictor comes from fit().
void JellieDecoder::interpolate(int parity, std::span<const std::uint32_t> half,
                                std::span<float> out) noexcept {
  const int n = static_cast<int>(half.size());
  const int base = kHistory / 2 + kTaps + 1;
  double* a = work_.data() + base;
  auto finite_or_zero = [](float v) { return std::isfinite(v) ? static_cast<double>(v) : 0.0; };
  const std::uint32_t mask = word_mask(format_);
  for (int m = 0; m < n; ++m)
    a[m] = finite_or_zero(pj::from_word(format_, half[static_cast<std::size_t>(m)] & mask));
  // History position -j (j = 1..kHistory) is history_[kHistory - j]; a[m]
  // for m < 0 is x[2m + parity].
  const int context = history_valid_ / 2;
  for (int m = -context; m < 0; ++m)
    a[m] = finite_or_zero(history_[static_cast<std::size_t>(kHistory + 2 * m + parity)]);

  // A model fitted earlier is reused while it still predicts the new
  // samples about as well as it predicted those it was fitted on (a note
  // onset or a new sound makes it refit), unless it is stale or longer than
  // what is known now (after a loss) could feed.
  bool refit = model_order_ == 0 || model_age_ >= kRefit || model_order_ > (context + n) / 2;
  if (!refit) {
    const auto [err, sig] =
        residual_energy(ar_.data(), model_order_, a, std::max(0, model_order_ - context), n);
    refit = err > kRefitGain * model_residual_ * sig + 1e-9 * sig + 1e-30;
  }
  if (refit) fit(a, context, n);
  const int order = model_order_;
  // Right edge: a[n .. n + kTaps], predicted forward.
  for (int m = n; m <= n + kTaps; ++m) a[m] = pnbtr::lpc_next(ar_.data(), order, a + m - 1, -1);
  // Left edge where the history does not reach: predicted backward (Burg's
  // predictor serves both directions).
  for (int m = -context - 1; m >= -(kTaps + 1); --m)
    a[m] = pnbtr::lpc_next(ar_.data(), order, a + m + 1, 1);

  for (int m = 0; m < n; ++m) {
    double y = 0.0;
    const double* left = a + m - parity;
    const double* right = a + m + 1 - parity;
    for (int j = 0; j < kTaps; ++j) y += taps_[static_cast<std::size_t>(j)] * (left[-j] + right[j]);
    out[static_cast<std::size_t>(2 * m + parity)] =
        pj::from_word(format_, half[static_cast<std::size_t>(m)] & mask);
    out[static_cast<std::size_t>(2 * m + 1 - parity)] = static_cast<float>(y);
  }
}

}  // namespace jamnet::media::jdat
