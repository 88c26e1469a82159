#include "jamnet/net/endpoint.hpp"

#include <gtest/gtest.h>

namespace jamnet::net {
namespace {

TEST(Endpoint, ParsesHostPortAndNamesTheProblem) {
  auto e = Endpoint::parse("127.0.0.1:47700");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->addr, 0x7F000001u);
  EXPECT_EQ(e->to_string(), "127.0.0.1:47700");
  EXPECT_EQ(Endpoint::parse("localhost:1")->addr, 0x7F000001u);
  EXPECT_TRUE(Endpoint::parse("239.255.74.77:47700")->is_multicast());
  EXPECT_EQ(Endpoint::parse(":5")->addr, 0u);
  EXPECT_NE(Endpoint::parse("1.2.3.4").error().message.find("HOST:PORT"), std::string::npos);
  EXPECT_NE(Endpoint::parse("1.2.3.4:99999").error().message.find("port"), std::string::npos);
  EXPECT_NE(Endpoint::parse("example.com:80").error().message.find("IPv4"), std::string::npos);
  EXPECT_FALSE(Endpoint::parse("1.2.3.4:").has_value());
  EXPECT_FALSE(Endpoint::parse("1.2.3.4:8x").has_value());
}

}  // namespace
}  // namespace jamnet::net
