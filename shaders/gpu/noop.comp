#version 450
// An empty dispatch: what a call costs before any work.
layout(local_size_x = 1) in;
void main() {}
