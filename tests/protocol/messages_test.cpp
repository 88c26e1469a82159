#include <gtest/gtest.h>

#include "jamnet/protocol/discovery_message.hpp"
#include "jamnet/protocol/topic.hpp"

namespace jamnet::protocol {
namespace {

TEST(DiscoveryMessages, RoundTripAndRejectWrongSizes) {
  const Announce a{Uuid::random(), 42, "keys"};
  auto bytes = encode(a);
  auto back = decode_announce(bytes);
  ASSERT_TRUE(back.has_value()) << back.error().message;
  EXPECT_EQ(back->peer_id, a.peer_id);
  EXPECT_EQ(back->incarnation, 42u);
  EXPECT_EQ(back->name, "keys");
  bytes.push_back(0);
  EXPECT_FALSE(decode_announce(bytes).has_value());
  EXPECT_FALSE(decode_announce({}).has_value());

  const Pong p{Uuid::random(), 7, 1, 2, 3};
  auto pb = encode(p);
  auto pback = decode_pong(pb);
  ASSERT_TRUE(pback.has_value());
  EXPECT_EQ(pback->t3_ns, 3);
  pb.pop_back();
  EXPECT_FALSE(decode_pong(pb).has_value());
  EXPECT_FALSE(decode_ping(pb).has_value());
  EXPECT_TRUE(decode_ping(encode(Ping{Uuid::random(), 1, 5})).has_value());
  EXPECT_TRUE(decode_bye(encode(Bye{Uuid::random(), 9})).has_value());
}

TEST(DiscoveryMessages, NoAnswerIsLargerThanWhatAskedForIt) {
  // A pong answers a ping: the ping is padded to the pong's size.
  EXPECT_EQ(encode(Ping{Uuid::random(), 1, 5}).size(),
            encode(Pong{Uuid::random(), 1, 2, 3, 4}).size());
  // A challenge answers an announce, padded to its size (and no smaller
  // than its own fields); an announce answers a challenge of that size.
  Announce a{Uuid::random(), 3, "drums"};
  a.cookie.fill(7);
  const auto ab = encode(a);
  EXPECT_EQ(ab.size(), announce_size(5));
  const auto back = decode_announce(ab);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cookie, a.cookie);
  Challenge c{Uuid::random(), {}, ab.size()};
  c.cookie.fill(9);
  const auto cb = encode(c);
  EXPECT_EQ(cb.size(), ab.size());
  const auto cback = decode_challenge(cb);
  ASSERT_TRUE(cback.has_value());
  EXPECT_EQ(cback->cookie, c.cookie);
  EXPECT_EQ(cback->peer_id, c.peer_id);
  EXPECT_EQ(cback->size, ab.size());
  EXPECT_EQ(encode(Challenge{Uuid::random(), {}, 1}).size(), kChallengeMin);
  EXPECT_FALSE(decode_challenge(std::vector<std::uint8_t>(kChallengeMin - 1)).has_value());
  EXPECT_FALSE(decode_challenge(std::vector<std::uint8_t>(announce_size(kMaxPeerNameBytes) + 1))
                   .has_value());
}

TEST(DiscoveryMessages, NamesAreSanitisedAndBounded) {
  std::vector<std::uint8_t> bytes = encode(Announce{Uuid::random(), 1, "ab"});
  bytes[25] = 0x1B;  // ESC: would drive a terminal
  EXPECT_EQ(decode_announce(bytes)->name, "?b");
  const Announce long_name{Uuid::random(), 1, std::string(200, 'x')};
  EXPECT_EQ(decode_announce(encode(long_name))->name.size(), kMaxPeerNameBytes);
}

TEST(Topic, UrisRoundTripAndRejectNonsense) {
  const Uuid s = Uuid::random();
  EXPECT_EQ(topic_uri(s, {StreamType::kMidi, 0}), "midi://" + s.to_string());
  EXPECT_EQ(topic_uri(s, {StreamType::kAudio, 2}), "audio://" + s.to_string() + "/2");
  auto p = parse_topic_uri("audio://" + s.to_string() + "/2");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->matches(s, {StreamType::kAudio, 2}));
  EXPECT_FALSE(p->matches(s, {StreamType::kAudio, 3}));
  auto any = parse_topic_uri("audio://" + s.to_string() + "/*");
  EXPECT_TRUE(any->matches(s, {StreamType::kAudio, 9}));
  EXPECT_TRUE(parse_topic_uri("control://" + s.to_string())->matches(s, {StreamType::kControl, 0}));
  for (const char* bad :
       {"", "midi:/x", "foo://01234567-89ab-cdef-0123-456789abcdef", "audio://not-a-uuid/1",
        "audio://01234567-89ab-cdef-0123-456789abcdef/70000"}) {
    EXPECT_FALSE(parse_topic_uri(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace jamnet::protocol
