// FloodGate on fake time: budgets per window, in total and per /24, with
// fixed-size state however many sources send.
#include "jamnet/net/flood_gate.hpp"

#include <gtest/gtest.h>

namespace jamnet::net {
namespace {

constexpr Nanos kT0 = 5'000'000'000;

std::uint32_t ip(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
  return a << 24 | b << 16 | c << 8 | d;
}

TEST(FloodGate, OnePrefixGetsItsShareAndNoMorePerWindow) {
  FloodGate gate({.total_per_s = 100'000, .prefix_per_s = 1000});  // 100 per window each /24
  int admitted = 0;
  for (int i = 0; i < 500; ++i) admitted += gate.admit(ip(10, 0, 0, i % 256), kT0) ? 1 : 0;
  EXPECT_EQ(admitted, 100);
  // Another /24 is not held back by the first one's flood.
  EXPECT_TRUE(gate.admit(ip(10, 0, 1, 1), kT0));
  // The next window starts afresh.
  EXPECT_TRUE(gate.admit(ip(10, 0, 0, 1), kT0 + FloodGate::kWindowNs));
}

TEST(FloodGate, TheTotalHoldsWhateverTheNumberOfSources) {
  FloodGate gate({.total_per_s = 2000, .prefix_per_s = 1000});  // 200 per window in all
  int admitted = 0;
  // 100,000 distinct sources across many /24s, all in one window.
  for (std::uint32_t i = 0; i < 100'000; ++i) admitted += gate.admit(ip(20, 0, 0, 0) + i * 7, kT0);
  EXPECT_EQ(admitted, 200);
  // State is fixed: the gate is a few pages whatever came.
  EXPECT_LE(sizeof(FloodGate), 20'000u);
}

TEST(FloodGate, ManyPrefixesCollidingInTheSketchAreNotAllStarved) {
  // The count-min sketch may overestimate a prefix that shares cells with
  // busy ones, never underestimate: a quiet prefix next to 500 busy ones
  // still mostly gets through.
  FloodGate gate({.total_per_s = 1e9, .prefix_per_s = 100});  // 10 per window per /24
  for (std::uint32_t p = 0; p < 500; ++p)
    for (int k = 0; k < 10; ++k) (void)gate.admit(ip(30, 0, 0, 0) + (p << 8), kT0);
  int quiet = 0;
  for (std::uint32_t p = 0; p < 100; ++p) quiet += gate.admit(ip(40, 0, 0, 0) + (p << 8), kT0);
  EXPECT_GE(quiet, 90);
}

}  // namespace
}  // namespace jamnet::net
