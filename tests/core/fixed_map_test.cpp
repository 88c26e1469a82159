#include "jamnet/core/fixed_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace jamnet {
namespace {

struct IdentityHash {
  std::size_t operator()(std::uint32_t k) const noexcept { return k; }
};

TEST(FixedMap, AgreesWithStdMapThroughRandomInsertsAndErasesAndStopsAtItsCap) {
  FixedMap<std::uint32_t, int, IdentityHash> m(64);
  std::map<std::uint32_t, int> ref;
  std::mt19937 rng(5);
  for (int step = 0; step < 20000; ++step) {
    // Few distinct keys in a narrow range: long probe runs, wrap-around and
    // backward shifts all happen.
    const std::uint32_t k = rng() % 200;
    switch (rng() % 3) {
      case 0:
      case 1: {
        int* v = m.try_emplace(k);
        if (ref.contains(k) || ref.size() < 64) {
          ASSERT_NE(v, nullptr) << "step " << step;
          *v = static_cast<int>(k) * 7;
          ref[k] = static_cast<int>(k) * 7;
        } else {
          EXPECT_EQ(v, nullptr) << "full at 64: a new key is refused";
        }
        break;
      }
      default:
        EXPECT_EQ(m.erase(k), ref.erase(k) == 1);
    }
    ASSERT_EQ(m.size(), ref.size());
  }
  for (const auto& [k, v] : ref) {
    const int* got = m.find(k);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(*got, v);
  }
  std::size_t seen = 0;
  m.for_each([&](std::uint32_t k, int v) {
    EXPECT_EQ(ref.at(k), v);
    ++seen;
  });
  EXPECT_EQ(seen, ref.size());
  const auto removed = m.erase_if([](std::uint32_t k, int) { return k % 2 == 0; });
  std::erase_if(ref, [](const auto& kv) { return kv.first % 2 == 0; });
  EXPECT_EQ(m.size(), ref.size());
  EXPECT_GT(removed, 0u);
  for (std::uint32_t k = 0; k < 200; ++k) EXPECT_EQ(m.find(k) != nullptr, ref.contains(k)) << k;
}

TEST(FixedMap, SampledEvictionRemovesTheOldestItLooksAtInBoundedSteps) {
  FixedMap<std::uint32_t, long, IdentityHash> m(16);
  for (std::uint32_t k = 0; k < 16; ++k) *m.try_emplace(k) = 100 + k;  // k = 0 is oldest
  ASSERT_TRUE(m.full());
  EXPECT_EQ(m.try_emplace(99), nullptr);
  // Looking at every entry finds the oldest.
  ASSERT_TRUE(m.evict_sampled(16, [](long age) { return age; }));
  EXPECT_EQ(m.find(0), nullptr);
  EXPECT_EQ(m.size(), 15u);
  ASSERT_NE(m.try_emplace(99), nullptr);
  // A flood: each new key evicts one entry and the map stays at its cap.
  for (std::uint32_t k = 1000; k < 1100; ++k) {
    if (m.try_emplace(k) == nullptr) {
      ASSERT_TRUE(m.evict_sampled(4, [](long age) { return age; }));
      ASSERT_NE(m.try_emplace(k), nullptr);
    }
    ASSERT_EQ(m.size(), 16u);
  }
  FixedMap<std::uint32_t, long, IdentityHash> empty(4);
  EXPECT_FALSE(empty.evict_sampled(4, [](long age) { return age; }));
}

}  // namespace
}  // namespace jamnet
