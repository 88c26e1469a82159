// Code that both the C++ compiler and nvcc compile (the LPC fit in
// media/pnbtr/lpc.hpp, the GPU kernels' per-thread math in
// src/gpu/kernels_math.hpp): JAMNET_HD marks a function __host__ __device__
// under nvcc and is empty elsewhere. Plain C++17, no standard library beyond
// what device code may use.
//
// The rounded operations below are one IEEE operation each, never fused with
// a neighbour: on the device the explicitly rounded intrinsics (which
// -fmad=false alone does not give for every expression), on the host the
// plain operator (the files that need bit-exact results are compiled with
// -ffp-contract=off). That is what makes the CPU reference, the CUDA kernels
// and the GLSL (`precise`) shaders agree bit for bit.
#pragma once

#if defined(__CUDACC__)
#define JAMNET_HD __host__ __device__
#else
#define JAMNET_HD
#endif

namespace jamnet::hd {

JAMNET_HD inline float mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
JAMNET_HD inline float add(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
JAMNET_HD inline double mul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
JAMNET_HD inline double add(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
JAMNET_HD inline double div(double a, double b) {
#ifdef __CUDA_ARCH__
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
JAMNET_HD inline float to_float(double d) {
#ifdef __CUDA_ARCH__
  return __double2float_rn(d);
#else
  return static_cast<float>(d);
#endif
}

}  // namespace jamnet::hd
