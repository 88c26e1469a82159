#include <gtest/gtest.h>

#include <cmath>
#include <string_view>
#include <unordered_set>

#include "jamnet/core/crc32.hpp"
#include "jamnet/core/sample_stats.hpp"
#include "jamnet/core/uuid.hpp"

namespace jamnet {
namespace {

TEST(Crc32, MatchesStandardCheckValue) {
  constexpr std::string_view kCheck = "123456789";
  const auto* p = reinterpret_cast<const std::uint8_t*>(kCheck.data());
  EXPECT_EQ(crc32({p, kCheck.size()}), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
}

TEST(Uuid, RoundTripsThroughText) {
  const Uuid id = Uuid::random();
  const auto text = id.to_string();
  ASSERT_EQ(text.size(), 36u);
  auto parsed = Uuid::parse(text);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(id.bytes[6] >> 4, 4);  // version 4
}

TEST(Uuid, RandomValuesDiffer) {
  std::unordered_set<Uuid, UuidHash> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(Uuid::random()).second);
}

TEST(Uuid, RejectsMalformedText) {
  EXPECT_FALSE(Uuid::parse("").has_value());
  EXPECT_FALSE(Uuid::parse("not-a-uuid").has_value());
  EXPECT_FALSE(Uuid::parse("0123456789abcdef0123456789abcdef0123").has_value());
  EXPECT_FALSE(Uuid::parse("0123456x-89ab-cdef-0123-456789abcdef").has_value());
  EXPECT_TRUE(Uuid::parse("01234567-89ab-cdef-0123-456789ABCDEF").has_value());
}

TEST(SampleWindow, PercentilesUseNearestRank) {
  SampleWindow w(100);
  EXPECT_TRUE(std::isnan(w.percentile(0.5)));
  for (int i = 1; i <= 100; ++i) w.add(i);
  EXPECT_EQ(w.percentile(0.5), 50);
  EXPECT_EQ(w.percentile(0.99), 99);
  EXPECT_EQ(w.percentile(1.0), 100);
  EXPECT_EQ(w.percentile(0.0), 1);
}

TEST(SampleWindow, KeepsOnlyTheNewestSamples) {
  SampleWindow w(10);
  for (int i = 0; i < 100; ++i) w.add(i);
  EXPECT_EQ(w.size(), 10u);
  EXPECT_EQ(w.total_added(), 100u);
  EXPECT_EQ(w.percentile(0.0), 90);
  EXPECT_EQ(w.last(), 99);
}

}  // namespace
}  // namespace jamnet
