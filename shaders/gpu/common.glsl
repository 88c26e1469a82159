// Shared by the compute shaders (included with GL_GOOGLE_include_directive).
// Invocations are laid out 2-D so that more than 65535 workgroups fit:
// the flat index is y * (groups in x * local size) + x.
uint flat_index(uint local_size) {
  return gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * local_size) + gl_GlobalInvocationID.x;
}
