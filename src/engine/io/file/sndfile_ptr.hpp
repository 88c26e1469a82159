// libsndfile handles that close themselves (file backend and WAV files).
#pragma once

#include <sndfile.h>

#include <memory>

namespace jamnet::engine::io {

struct SndfileCloser {
  void operator()(SNDFILE* f) const noexcept { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

}  // namespace jamnet::engine::io
