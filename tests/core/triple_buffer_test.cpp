#include "jamnet/core/triple_buffer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

namespace jamnet {
namespace {

struct Pair {
  std::uint64_t a = 0;
  std::uint64_t b = 0;  // always 3 * a in a whole value
};

TEST(TripleBuffer, ReadsDefaultBeforeTheFirstWrite) {
  TripleBuffer<Pair> tb;
  EXPECT_EQ(tb.read().a, 0u);
  EXPECT_EQ(tb.read().b, 0u);
}

TEST(TripleBuffer, ReaderGetsTheLatestValueAndKeepsItUntilTheNext) {
  TripleBuffer<Pair> tb;
  for (std::uint64_t i = 1; i <= 5; ++i) tb.write({i, 3 * i});
  EXPECT_EQ(tb.read().a, 5u);
  EXPECT_EQ(tb.read().a, 5u);  // nothing new: the same value again
  tb.write({6, 18});
  EXPECT_EQ(tb.read().a, 6u);
  tb.write({7, 21});
  tb.write({8, 24});
  EXPECT_EQ(tb.read().b, 24u);
}

TEST(TripleBuffer, ConcurrentReaderNeverSeesATornOrOlderValue) {
  TripleBuffer<Pair> tb;
  std::atomic<bool> done{false};
  constexpr std::uint64_t kWrites = 200'000;
  std::thread writer([&] {
    for (std::uint64_t i = 1; i <= kWrites; ++i) tb.write({i, 3 * i});
    done = true;
  });
  std::uint64_t last = 0, torn = 0, backwards = 0;
  while (!done.load()) {
    const Pair p = tb.read();
    torn += p.b != 3 * p.a;
    backwards += p.a < last;
    last = p.a;
  }
  writer.join();
  EXPECT_EQ(torn, 0u);
  EXPECT_EQ(backwards, 0u);
  EXPECT_EQ(tb.read().a, kWrites);
}

}  // namespace
}  // namespace jamnet
