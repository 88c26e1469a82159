#version 450
// PNBTR for many streams in one dispatch, one stream per invocation: the
// double-precision Burg fit and AR continuation of src/gpu/kernels_math.hpp,
// operation for operation (needs shaderFloat64; float in and out). `precise` forbids fused multiply-add, so results match the
// CPU reference bit for bit on IEEE hardware.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 32) in;
layout(std430, set = 0, binding = 0) readonly buffer History { float hist[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float outp[]; };
layout(std430, set = 0, binding = 2) buffer Scratch { double scratch[]; };
layout(push_constant) uniform Params {
  uint streams;
  uint history;
  uint order;
  uint frames;
} pc;

const int kMaxOrder = 32;
const double kFloorScale = 1.00001LF;
const double kMinPower = 1e-30LF;

void main() {
  uint st = flat_index(32u);
  if (st >= pc.streams) return;
  int n = int(pc.history);
  int order = int(pc.order);
  int frames = int(pc.frames);
  uint xb = st * pc.history;
  uint fb = st * pc.history * 2u;
  uint bb = fb + pc.history;
  uint ob = st * pc.frames;

  precise double a[kMaxOrder + 1];
  precise double tmp[kMaxOrder + 1];
  a[0] = 1.0LF;
  for (int i = 1; i <= kMaxOrder; ++i) a[i] = 0.0LF;
  precise double num = 0.0LF;
  precise double den = 0.0LF;
  for (int t = 1; t < n; ++t) {
    precise double ft = double(hist[xb + uint(t)]);
    precise double bt = double(hist[xb + uint(t - 1)]);
    scratch[fb + uint(t)] = ft;
    scratch[bb + uint(t)] = bt;
    precise double fbp = ft * bt;
    num = num + fbp;
    precise double ff = ft * ft;
    precise double bbp = bt * bt;
    precise double e = ff + bbp;
    den = den + e;
  }
  for (int m = 0; m < order && m + 2 < n; ++m) {
    if (!(den > kMinPower)) break;
    precise double dn = den * kFloorScale;
    precise double k = (-2.0LF * num) / dn;
    for (int i = 0; i <= m + 1; ++i) {
      precise double ka = k * a[m + 1 - i];
      tmp[i] = a[i] + ka;
    }
    for (int i = 0; i <= m + 1; ++i) a[i] = tmp[i];
    num = 0.0LF;
    den = 0.0LF;
    for (int t = n - 1; t >= m + 2; --t) {
      precise double fo = scratch[fb + uint(t)];
      precise double bo = scratch[bb + uint(t)];
      precise double fp = scratch[fb + uint(t - 1)];
      precise double bp = scratch[bb + uint(t - 1)];
      precise double kb = k * bo;
      precise double fa = fo + kb;
      precise double kf = k * fp;
      precise double ba = bp + kf;
      scratch[fb + uint(t)] = fa;
      scratch[bb + uint(t)] = ba;
      precise double fbp = fa * ba;
      num = num + fbp;
      precise double ff = fa * fa;
      precise double bbp = ba * ba;
      precise double e = ff + bbp;
      den = den + e;
    }
  }
  // w[j - 1] holds y(t - j): the history's newest samples, then predictions.
  precise double w[kMaxOrder];
  for (int j = 1; j <= order; ++j) w[j - 1] = double(hist[xb + uint(n - j)]);
  for (int i = 0; i < frames; ++i) {
    precise double s = 0.0LF;
    for (int j = 1; j <= order; ++j) {
      precise double p = a[j] * w[j - 1];
      s = s + p;
    }
    precise double y = -s;
    if (!(y <= 1.0LF && y >= -1.0LF)) y = (y > 1.0LF) ? 1.0LF : ((y < -1.0LF) ? -1.0LF : 0.0LF);
    for (int j = order - 1; j >= 1; --j) w[j] = w[j - 1];
    w[0] = y;
    outp[ob + uint(i)] = float(y);
  }
}
