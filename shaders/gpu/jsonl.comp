#version 450
// JMID line field extraction, one line per invocation: the rules of
// math::extract_line() in src/gpu/kernels_math.hpp, step for step. A line the
// rules do not cover is marked for the CPU parser (status 1).
#extension GL_GOOGLE_include_directive : require
#extension GL_ARB_gpu_shader_int64 : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Blob { uint blob[]; };
layout(std430, set = 0, binding = 1) readonly buffer Offsets { uint offs[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Fields { uint fields[]; };
layout(push_constant) uniform Params {
  uint lines;
  uint blob_size;
} pc;

const uint kMaxLine = 256u;
// jmid::Kind order, each name packed little-endian.
const uint64_t kTags[18] = uint64_t[18](
    0x2B6Eul, 0x2D6Eul, 0x7070ul, 0x6363ul, 0x6370ul, 0x7063ul, 0x6270ul, 0x63746Dul,
    0x707073ul, 0x7373ul, 0x7274ul, 0x6B6C63ul, 0x7472617473ul, 0x746E6F63ul, 0x706F7473ul,
    0x7361ul, 0x747372ul, 0x7873ul);
// 0 c,n,v  1 c,v  2 c,v(bend)  3 v(0..127)  4 v(0..16383)  5 none  6 SysEx
const int kShape[18] = int[18](0, 0, 0, 0, 1, 1, 2, 3, 4, 3, 5, 5, 5, 5, 5, 5, 5, 6);
const uint kT = 1u, kC = 2u, kN = 4u, kV = 8u, kTs = 16u, kSeq = 32u;

uint g_pos;
uint g_end;
uint R[10];

uint byte_at(uint i) { return (blob[i >> 2] >> ((i & 3u) * 8u)) & 0xFFu; }
uint at() { return g_pos < g_end ? byte_at(g_pos) : 0u; }
bool is_digit(uint c) { return c >= 48u && c <= 57u; }

bool read_int(int max_digits, bool allow_minus, out bool neg, out uint64_t mag) {
  neg = false;
  if (allow_minus && at() == 45u) {
    neg = true;
    ++g_pos;
  }
  mag = 0ul;
  int digits = 0;
  uint start = g_pos;
  while (is_digit(at())) {
    uint64_t d = uint64_t(at() - 48u);
    if (digits == max_digits || mag > (0xFFFFFFFFFFFFFFFFul - d) / 10ul) return false;
    mag = mag * 10ul + d;
    ++digits;
    ++g_pos;
  }
  if (digits == 0) return false;
  if (digits > 1 && byte_at(start) == 48u) return false;
  if (neg && mag == 0ul) return false;
  return true;
}

bool extract(uint a, uint e) {
  uint len = e - a;
  if (len < 2u || len > kMaxLine) return false;
  if (byte_at(a) != 123u || byte_at(e - 1u) != 125u) return false;  // { }
  g_pos = a + 1u;
  g_end = e;
  uint seen = 0u;
  int kind = -1;
  int64_t c = 0l, n = 0l, v = 0l;
  uint64_t ts = 0ul, seq = 0ul;
  for (;;) {
    if (at() != 34u) return false;  // "
    ++g_pos;
    uint64_t key = 0ul;
    uint klen = 0u;
    while (g_pos < g_end && at() != 34u) {
      // A NUL would vanish from the packed key: refuse control characters.
      if (klen == 3u || at() < 32u || at() == 92u || at() >= 128u) return false;
      key |= uint64_t(at()) << (8u * klen);
      ++klen;
      ++g_pos;
    }
    if (at() != 34u) return false;
    ++g_pos;
    if (at() != 58u) return false;  // :
    ++g_pos;
    uint bit = 0u;
    if (key == 0x74ul) {  // t
      bit = kT;
      if (at() != 34u) return false;
      ++g_pos;
      uint64_t name = 0ul;
      uint nlen = 0u;
      while (g_pos < g_end && at() != 34u) {
        uint ch = at();
        if (nlen == 5u || ch < 32u || ch == 92u || ch >= 128u) return false;
        name |= uint64_t(ch) << (8u * nlen);
        ++nlen;
        ++g_pos;
      }
      if (at() != 34u || nlen == 0u) return false;
      ++g_pos;
      kind = -1;
      for (int k = 0; k < 18; ++k) {
        if (kTags[k] == name) kind = k;
      }
      if (kind < 0 || kind == 17) return false;
    } else if (key == 0x63ul || key == 0x6Eul || key == 0x76ul) {  // c n v
      bit = key == 0x63ul ? kC : (key == 0x6Eul ? kN : kV);
      bool neg;
      uint64_t mag;
      if (!read_int(9, true, neg, mag)) return false;
      int64_t val = neg ? -int64_t(mag) : int64_t(mag);
      if (bit == kC) c = val;
      else if (bit == kN) n = val;
      else v = val;
    } else if (key == 0x7374ul) {  // ts
      bit = kTs;
      bool neg;
      uint64_t mag;
      if (!read_int(19, true, neg, mag)) return false;
      if (mag > (neg ? 0x8000000000000000ul : 0x7FFFFFFFFFFFFFFFul)) return false;
      ts = neg ? 0ul - mag : mag;
    } else if (key == 0x716573ul) {  // seq
      bit = kSeq;
      bool neg;
      if (!read_int(20, false, neg, seq)) return false;
    } else {
      return false;
    }
    if ((seen & bit) != 0u) return false;
    seen |= bit;
    if (at() == 44u) {  // ,
      ++g_pos;
      continue;
    }
    if (at() == 125u && g_pos == g_end - 1u) break;
    return false;
  }
  if ((seen & kT) == 0u) return false;
  int shape = kShape[kind];
  bool chan = shape <= 2;
  if (chan && ((seen & kC) == 0u || c < 1l || c > 16l)) return false;
  if (shape == 0 && ((seen & kN) == 0u || n < 0l || n > 127l)) return false;
  if (shape <= 4) {
    int64_t lo = shape == 2 ? -8192l : 0l;
    int64_t hi = shape == 2 ? 8191l : (shape == 4 ? 16383l : 127l);
    if ((seen & kV) == 0u || v < lo || v > hi) return false;
  }
  R[1] = uint(kind);
  if (chan) R[2] = uint(c - 1l);
  if (shape == 0) {
    R[3] = uint(n);
    R[4] = uint(v);
  } else if (shape == 1 || shape == 3) {
    R[3] = uint(v);
  } else if (shape == 2 || shape == 4) {
    R[5] = uint(int(v));
  }
  R[6] = uint(ts);
  R[7] = uint(ts >> 32);
  R[8] = uint(seq);
  R[9] = uint(seq >> 32);
  R[0] = 0u;
  return true;
}

void main() {
  uint line = flat_index(64u);
  if (line >= pc.lines) return;
  for (int i = 0; i < 10; ++i) R[i] = 0u;
  uint a = offs[line];
  uint e = offs[line + 1u];
  bool ok = false;
  if (e <= pc.blob_size && a <= e) {
    if (e > a && byte_at(e - 1u) == 10u) --e;
    ok = extract(a, e);
  }
  if (!ok) {
    for (int i = 0; i < 10; ++i) R[i] = 0u;
    R[0] = 1u;
  }
  uint base = line * 10u;
  for (int i = 0; i < 10; ++i) fields[base + uint(i)] = R[i];
}
