#version 450
// N inputs into M outputs through an M x N gain matrix, one output sample per
// invocation, inputs summed in ascending order as in mix_reference().
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer Gains { float gains[]; };
layout(std430, set = 0, binding = 1) readonly buffer In { float inp[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float outp[]; };
layout(push_constant) uniform Params {
  uint inputs;
  uint outputs;
  uint frames;
} pc;

void main() {
  uint idx = flat_index(64u);
  if (idx >= pc.outputs * pc.frames) return;
  uint o = idx / pc.frames;
  uint f = idx - o * pc.frames;
  uint g = o * pc.inputs;
  precise float acc = 0.0;
  for (uint i = 0u; i < pc.inputs; ++i) {
    precise float p = gains[g + i] * inp[i * pc.frames + f];
    acc = acc + p;
  }
  outp[idx] = acc;
}
