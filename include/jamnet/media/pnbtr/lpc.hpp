// Linear prediction, once for the whole tree: Burg's fit and the one-sample
// prediction it gives. The PNBTR predictor (lpc_predictor.cpp), JELLIE's
// interpolator (media/jdat) and the GPU kernels (gpu/kernels_math.hpp, which
// nvcc compiles into device code as well) all call these.
//
// Each multiply, add and divide is one rounded operation (core/host_device.hpp),
// in a fixed order: the GPU kernels' CPU reference, CUDA and GLSL
// (shaders/gpu/pnbtr.comp) versions agree bit for bit only while that order
// is the one the shader follows. Change the shader with it.
#pragma once

#include <cstddef>

#include "jamnet/core/host_device.hpp"

namespace jamnet::media::pnbtr {

// When a Burg fit ends, and how far each stage stays from |k| = 1.
struct BurgLimits {
  // Each stage's reflection coefficient is -2 num / (den * floor_scale). Above
  // 1 it is a white-noise floor relative to the stage's own error power: it
  // keeps |k| strictly below 1 without the bias an absolute floor (relative
  // to the signal) causes once the residual of a tonal signal is far below
  // the signal itself; such a bias costs tones most of their predictability.
  double floor_scale = 1.0;
  // The fit ends at the first stage whose error power is not above
  // min_power_rel * (the signal's power) + min_power: the residual has
  // vanished, and fitting rounding noise helps nothing.
  double min_power_rel = 0.0;
  double min_power = 1e-30;
};

// One time step of a Burg stage's sums: num += f b, den += f^2 + b^2.
JAMNET_HD inline void burg_sums(double f, double b, double& num, double& den) {
  num = hd::add(num, hd::mul(f, b));
  const double e = hd::add(hd::mul(f, f), hd::mul(b, b));
  den = hd::add(den, e);
}

// Burg's method: each reflection coefficient k minimises the sum of forward
// and backward prediction error powers, so |k| <= 1 and the all-pole filter
// is stable by construction. x[0..n) -> a[0..order] with a[0] = 1, the
// predictor x(t) ~ -sum_{j>=1} a[j] x(t-j), which also serves backwards:
// x(t) ~ -sum_{j>=1} a[j] x(t+j). Returns the order reached (lower when the
// residual vanishes first; the coefficients above it are 0).
//
// f and b: scratch of n doubles each, element t at f[t * stride] (the CUDA
// kernel interleaves its threads' scratch so that neighbours touch
// neighbouring words). tmp: scratch of order + 1 doubles. After stage m,
// f[t] holds the forward error f_{m+1}(t) and b[t] the backward error
// b_{m+1}(t-1), for t in [m+2, n); each stage updates them in place, newest
// first, so that f[t-1] and b[t-1] are still the previous stage's.
template <class Sample>
JAMNET_HD int burg(const Sample* x, int n, int order, BurgLimits lim, double* f, double* b,
                   std::size_t stride, double* a, double* tmp) {
  a[0] = 1.0;
  for (int i = 1; i <= order; ++i) a[i] = 0.0;
  double num = 0.0, den = 0.0;
  for (int t = 1; t < n; ++t) {
    const double ft = x[t];
    const double bt = x[t - 1];
    f[t * stride] = ft;
    b[t * stride] = bt;
    burg_sums(ft, bt, num, den);
  }
  const double tiny =
      lim.min_power_rel > 0.0 ? lim.min_power_rel * den + lim.min_power : lim.min_power;
  int reached = 0;
  for (int m = 0; m < order && m + 2 < n; ++m) {
    if (!(den > tiny)) break;
    const double dn = hd::mul(den, lim.floor_scale);
    const double k = hd::div(hd::mul(-2.0, num), dn);
    // Step-up (Levinson) recursion to the direct form.
    for (int i = 0; i <= m + 1; ++i) {
      const double ka = hd::mul(k, a[m + 1 - i]);
      tmp[i] = hd::add(a[i], ka);
    }
    for (int i = 0; i <= m + 1; ++i) a[i] = tmp[i];
    reached = m + 1;
    num = 0.0;
    den = 0.0;
    for (int t = n - 1; t >= m + 2; --t) {
      const std::size_t ti = t * stride, pi = (t - 1) * stride;
      const double kb = hd::mul(k, b[ti]);
      const double fa = hd::add(f[ti], kb);
      const double kf = hd::mul(k, f[pi]);
      const double ba = hd::add(b[pi], kf);
      f[ti] = fa;
      b[ti] = ba;
      burg_sums(fa, ba, num, den);
    }
  }
  return reached;
}

// The prediction of one sample from the `order` samples beside it:
// -sum_{j=1..order} a[j] * near[(j - 1) * step], near[0] the closest. step -1
// walks back through a history stored oldest first (near = its newest
// sample), +1 through one stored newest first, or forward from a gap's right
// edge for a backward prediction.
JAMNET_HD inline double lpc_next(const double* a, int order, const double* near,
                                 std::ptrdiff_t step) {
  double s = 0.0;
  for (int j = 1; j <= order; ++j) {
    const double p = hd::mul(a[j], near[(j - 1) * step]);
    s = hd::add(s, p);
  }
  return -s;
}

}  // namespace jamnet::media::pnbtr
