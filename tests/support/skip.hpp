// Skips that a clean `make test` machine must not take.
//
// A test that cannot run says "skipped", never "passed". Under
// JAMNET_REQUIRE_ALL=1 (set by `make test`, whose install step puts jackd,
// lavapipe, fluidsynth and the rest on the machine), a skip for a part this
// machine is expected to have fails the test instead, so a broken install
// cannot turn the suite green by skipping. Parts a machine may lack for good
// (a CUDA GPU, a device extension) keep plain GTEST_SKIP.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace jamnet::testing {

inline bool require_all() {
  const char* v = std::getenv("JAMNET_REQUIRE_ALL");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace jamnet::testing

// Skips with `why`, or fails with it under JAMNET_REQUIRE_ALL=1.
#define JAMNET_SKIP_UNLESS_REQUIRED(why)                                          \
  do {                                                                            \
    const std::string jamnet_skip_why_ = (why);                                   \
    if (::jamnet::testing::require_all()) {                                       \
      GTEST_FAIL() << jamnet_skip_why_                                            \
                   << " (JAMNET_REQUIRE_ALL=1: this machine should have it; run " \
                      "scripts/install-deps.sh)";                                 \
    } else {                                                                      \
      GTEST_SKIP() << jamnet_skip_why_;                                           \
    }                                                                             \
  } while (0)
