#include "jamnet/core/published.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace jamnet {
namespace {

// A value whose parts must always agree: a torn or freed read would not.
struct Pair {
  std::vector<int> a;
  std::vector<int> b;
};

TEST(Published, ReadersAlwaysSeeAWholeValueWhileWritersReplaceIt) {
  Published<Pair> p(std::make_unique<const Pair>(Pair{{0}, {0}}));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        const auto v = p.read();
        if (v->a.size() != v->b.size() || v->a.back() != v->b.back()) torn.fetch_add(1);
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 1; i <= 2000; ++i) {
    if (i % 2) {
      auto next = std::make_unique<Pair>();
      next->a.assign(static_cast<std::size_t>(i % 50 + 1), i);
      next->b = next->a;
      p.publish(std::move(next));
    } else {
      p.update([i](Pair& v) {
        v.a.push_back(i);
        v.b.push_back(i);
      });
    }
  }
  while (reads.load() < 1000) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_TRUE(p.wait_for_readers(1'000'000'000));
  p.reclaim();
  EXPECT_EQ(p.read()->a.back(), 2000);
}

}  // namespace
}  // namespace jamnet
